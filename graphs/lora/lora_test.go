package lora

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	onnx "github.com/yalue/onnxruntime_go"

	"google.golang.org/protobuf/proto"

	"github.com/panacea-go/toolkit/graphs"
	"github.com/panacea-go/toolkit/graphs/onnxpb"
	"github.com/panacea-go/toolkit/internal/testutil"
	"github.com/panacea-go/toolkit/ort"
)

const (
	dIn, dOut = 4, 6
	batch     = 2
	seq       = 3
)

// layerKind is how a test graph applies its weight.
type layerKind int

const (
	plainMatMul layerKind = iota // MatMul(x, W), x (batch, seq, d_in), W (d_in, d_out)
	halfMatMul                   // MatMul(x, Cast(W16)), W16 float16
	gemmTransB                   // Gemm(x2, W, C, transB=1), x2 (batch·seq, d_in), W (d_out, d_in)
	transposed                   // MatMul(x, Transpose(W)), W (d_out, d_in)
)

// testModel builds a one-layer model y = f(x) + 0 (the Add keeps y an inner value) and
// returns it with the weight in (d_in, d_out) layout for the reference computation.
func testModel(kind layerKind, rng *rand.Rand) (*onnxpb.ModelProto, [][]float64) {
	b := graphs.NewBuilder("test")
	w := make([][]float64, dIn)
	flat := make([]float32, 0, dIn*dOut)
	for i := range w {
		w[i] = make([]float64, dOut)
		for j := range w[i] {
			w[i][j] = float64(float32(rng.NormFloat64()))
		}
	}
	stored := func(transpose bool) []float32 {
		flat = flat[:0]
		if transpose {
			for j := range dOut {
				for i := range dIn {
					flat = append(flat, float32(w[i][j]))
				}
			}
			return flat
		}
		for i := range dIn {
			for j := range dOut {
				flat = append(flat, float32(w[i][j]))
			}
		}
		return flat
	}
	name := "model.layers.0.self_attn.q_proj.weight"
	var y string
	switch kind {
	case plainMatMul, halfMatMul, transposed:
		x := b.Input("x", graphs.Float, "batch", "seq", dIn)
		var wv string
		switch kind {
		case plainMatMul:
			wv = b.Initializer(graphs.FloatTensor(name, []int64{dIn, dOut}, stored(false)))
		case halfMatMul:
			v := stored(false)
			raw := make([]byte, 2*len(v))
			for i, f := range v {
				h := graphs.FloatToHalf(f)
				raw[2*i], raw[2*i+1] = byte(h), byte(h>>8)
				// The reference uses the value the model really holds.
				w[i/dOut][i%dOut] = float64(graphs.HalfToFloat(h))
			}
			b.Initializer(graphs.RawTensor(name, graphs.Float16, []int64{dIn, dOut}, raw))
			wv = b.Node("Cast", []string{name}, graphs.AttrInt("to", int64(graphs.Float)))
		case transposed:
			b.Initializer(graphs.FloatTensor(name, []int64{dOut, dIn}, stored(true)))
			wv = b.Node("Transpose", []string{name}, graphs.AttrInts("perm", 1, 0))
		}
		y = b.Op("MatMul", x, wv)
	case gemmTransB:
		x := b.Input("x", graphs.Float, "batch", "seq", dIn)
		x2 := b.Op("Reshape", x, b.ConstInt64(-1, dIn))
		wv := b.Initializer(graphs.FloatTensor(name, []int64{dOut, dIn}, stored(true)))
		c := b.Initializer(graphs.FloatTensor("bias", []int64{dOut}, make([]float32, dOut)))
		y2 := b.Node("Gemm", []string{x2, wv, c}, graphs.AttrInt("transB", 1))
		y = b.Op("Reshape", y2, b.ConstInt64(batch, seq, dOut))
	}
	out := b.Op("Add", y, b.ScalarFloat(0, graphs.Float))
	b.Output(out, "y", graphs.Float, "batch", "seq", dOut)
	return b.Model("test"), w
}

func TestApplyMatchesFormula(t *testing.T) {
	testutil.InitORT(t)
	kinds := []struct {
		name string
		kind layerKind
	}{{"MatMul", plainMatMul}, {"MatMul/f16-weight", halfMatMul}, {"Gemm/transB", gemmTransB},
		{"MatMul/transposed-weight", transposed}}
	for _, tc := range kinds {
		for _, asInputs := range []bool{true, false} {
			name := tc.name + map[bool]string{true: "/inputs", false: "/initializers"}[asInputs]
			t.Run(name, func(t *testing.T) {
				rng := rand.New(rand.NewPCG(1, 2))
				m, w := testModel(tc.kind, rng)
				base := proto.Clone(m).(*onnxpb.ModelProto)
				cfg := Config{Targets: mustTargets(t, "llama"), Rank: 3, Dims: 2, Alpha: 6,
					Seed: 9, AsInputs: asInputs}
				rep, err := Apply(m, cfg)
				if err != nil {
					t.Fatal(err)
				}
				if len(rep.Layers) != 1 || rep.Layers[0].DIn != dIn || rep.Layers[0].DOut != dOut {
					t.Fatalf("layers %+v, want one %d→%d layer", rep.Layers, dIn, dOut)
				}
				if want := int64((dIn+dOut)*(3+2) + 3 + 1); rep.Params != want {
					t.Errorf("params %d, want %d", rep.Params, want)
				}
				checkForward(t, m, base, rep, w, asInputs, rng)
			})
		}
	}
}

func mustTargets(t *testing.T, family string) []string {
	t.Helper()
	tg, err := DefaultTargets(family)
	if err != nil {
		t.Fatal(err)
	}
	return tg
}

// checkForward runs the adapted model twice: with the initial values (σ = s = 0), where it
// must equal the base layer exactly, and (when the adapter is fed) with random σ and s,
// where it must equal the formula computed in Go.
func checkForward(t *testing.T, m, base *onnxpb.ModelProto, rep *Report, w [][]float64,
	asInputs bool, rng *rand.Rand) {
	t.Helper()
	x := randSlice(rng, batch*seq*dIn)
	lambda := []float32{0.25, 0.75, 1, 0}
	params := map[string][]float32{}
	for k, v := range rep.Init {
		params[k] = slices.Clone(v)
	}
	got := runModel(t, m, rep, x, lambda, params, asInputs)
	baseOut := runModel(t, base, nil, x, nil, nil, false)
	if !slices.Equal(got, baseOut) {
		t.Fatalf("σ = s = 0: adapted output %v differs from the base model's %v", got, baseOut)
	}
	want := reference(x, w, lambda, rep, params)
	for i := range want {
		if math.Abs(want[i]-float64(got[i])) > 1e-5 {
			t.Fatalf("σ = s = 0: y[%d] = %g, base layer gives %g", i, got[i], want[i])
		}
	}
	if !asInputs {
		return
	}
	l := rep.Layers[0]
	params[l.Sigma.Name] = randSlice(rng, 3)
	params[l.S.Name] = []float32{0.7}
	got = runModel(t, m, rep, x, lambda, params, true)
	want = reference(x, w, lambda, rep, params)
	for i := range want {
		if math.Abs(want[i]-float64(got[i])) > 1e-4*(1+math.Abs(want[i])) {
			t.Fatalf("y[%d] = %g, formula gives %g", i, got[i], want[i])
		}
	}
}

func randSlice(rng *rand.Rand, n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(rng.NormFloat64())
	}
	return v
}

func runModel(t *testing.T, m *onnxpb.ModelProto, rep *Report, x, lambda []float32,
	params map[string][]float32, asInputs bool) []float32 {
	t.Helper()
	data, err := graphs.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	names := []string{"x"}
	vals := [][]float32{x}
	shapes := [][]int64{{batch, seq, dIn}}
	if rep != nil {
		names = append(names, rep.Lambda)
		vals = append(vals, lambda)
		shapes = append(shapes, []int64{batch, 2})
	}
	if asInputs {
		for _, p := range rep.Layers[0].Params() {
			names = append(names, p.Name)
			vals = append(vals, params[p.Name])
			shapes = append(shapes, p.Shape)
		}
	}
	s, err := ort.NewSession("", data, names, []string{"y"}, ort.Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ins := make([]onnx.Value, len(names))
	for i := range names {
		v, err := onnx.NewTensor(onnx.NewShape(shapes[i]...), vals[i])
		if err != nil {
			t.Fatal(err)
		}
		ins[i] = v
	}
	defer ort.DestroyAll(ins...)
	outs := []onnx.Value{nil}
	if err := s.Run(ins, outs); err != nil {
		t.Fatal(err)
	}
	defer ort.DestroyAll(outs...)
	return slices.Clone(outs[0].(*onnx.Tensor[float32]).GetData())
}

// reference computes y = x·W + (α/k)·((x·V) ⊙ [σ, s·λ_b])·Uᵀ in float64.
func reference(x []float32, w [][]float64, lambda []float32, rep *Report,
	params map[string][]float32) []float64 {
	l := rep.Layers[0]
	const k, m, alpha = 3, 2, 6.0
	u, v := params[l.U.Name], params[l.V.Name]
	sigma, s := params[l.Sigma.Name], params[l.S.Name][0]
	out := make([]float64, batch*seq*dOut)
	for bi := range batch {
		diag := make([]float64, k+m)
		for j := range k {
			diag[j] = float64(sigma[j])
		}
		for j := range m {
			diag[k+j] = float64(s) * float64(lambda[bi*m+j])
		}
		for si := range seq {
			row := x[(bi*seq+si)*dIn:][:dIn]
			h := make([]float64, k+m)
			for r := range k + m {
				for i := range dIn {
					h[r] += float64(row[i]) * float64(v[i*(k+m)+r])
				}
				h[r] *= diag[r] * alpha / k
			}
			for o := range dOut {
				acc := 0.0
				for i := range dIn {
					acc += float64(row[i]) * w[i][o]
				}
				for r := range k + m {
					acc += h[r] * float64(u[o*(k+m)+r])
				}
				out[(bi*seq+si)*dOut+o] = acc
			}
		}
	}
	return out
}

func TestApplyErrors(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	cases := []struct {
		name string
		cfg  Config
		want string
	}{
		{"no match", Config{Targets: []string{`mlp\.nothing`}, Rank: 2, Dims: 2, Alpha: 1},
			"match none of the 1 linear layers"},
		{"bad pattern", Config{Targets: []string{`(`}, Rank: 2, Dims: 2}, "target"},
		{"zero rank", Config{Targets: []string{`q_proj`}, Rank: 0, Dims: 2}, "rank 0"},
		{"no targets", Config{Rank: 2, Dims: 2}, "no target patterns"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m, _ := testModel(plainMatMul, rng)
			_, err := Apply(m, tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
	t.Run("twice", func(t *testing.T) {
		m, _ := testModel(plainMatMul, rng)
		cfg := Config{Targets: []string{`q_proj`}, Rank: 2, Dims: 2, Alpha: 1}
		if _, err := Apply(m, cfg); err != nil {
			t.Fatal(err)
		}
		if _, err := Apply(m, cfg); err == nil || !strings.Contains(err.Error(), "twice") {
			t.Fatalf("second Apply: error %v, want one about applying twice", err)
		}
	})
}

func TestDefaultTargets(t *testing.T) {
	cases := []struct {
		family string
		name   string
		want   bool
	}{
		{"llama", "model.layers.0.self_attn.q_proj.weight", true},
		{"llama", "model.layers.11.mlp.down_proj.weight", true},
		{"mistral", "/model/layers.3/mlp/gate_proj/MatMul", true},
		{"llama", "model.layers.0.self_attn.rotary_emb.inv_freq", false},
		{"llama", "lm_head.weight", false},
		{"llama", "model.layers.0.self_attn.xq_proj.weight", false},
		{"gpt2", "transformer.h.0.attn.c_attn.weight", true},
		{"gpt2", "transformer.h.5.mlp.c_proj.weight", true},
		{"gpt2", "/transformer/h.0/mlp/c_fc/MatMul", true},
		{"gpt2", "transformer.wte.weight", false},
		{"", "transformer.h.0.attn.c_proj.weight", true},
		{"", "model.layers.0.mlp.up_proj.weight", true},
	}
	for _, tc := range cases {
		tg := mustTargets(t, tc.family)
		got := false
		for _, p := range tg {
			got = got || regexpMatch(t, p, tc.name)
		}
		if got != tc.want {
			t.Errorf("family %q, %q: matched %v, want %v", tc.family, tc.name, got, tc.want)
		}
	}
	if _, err := DefaultTargets("bert"); err == nil || !strings.Contains(err.Error(), "llama") {
		t.Errorf("unknown family: error %v, want one listing the known families", err)
	}
}

func regexpMatch(t *testing.T, pattern, s string) bool {
	t.Helper()
	res, err := (&Config{Targets: []string{pattern}, Rank: 1, Dims: 1}).check()
	if err != nil {
		t.Fatal(err)
	}
	return res[0].MatchString(s)
}
