package passes

import (
	"math"
	"os"
	"path/filepath"
	"testing"

	onnx "github.com/yalue/onnxruntime_go"

	"github.com/panacea-go/toolkit/graphs"
	"github.com/panacea-go/toolkit/graphs/onnxpb"
	"github.com/panacea-go/toolkit/internal/testutil"
	"github.com/panacea-go/toolkit/ort"
)

// run feeds x to a one-input, one-output model and returns the output as float64.
func run(t *testing.T, m *onnxpb.ModelProto, dir string, x []float64) []float64 {
	t.Helper()
	data, err := graphs.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ort.NewSession("", data, []string{"x"}, []string{"y"},
		ort.Options{Threads: 1, ExternalDataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var in onnx.Value
	if m.GetGraph().GetInput()[0].GetType().GetTensorType().GetElemType() == graphs.Double {
		in, err = onnx.NewTensor(onnx.NewShape(int64(len(x))), x)
	} else {
		f := make([]float32, len(x))
		for i, v := range x {
			f[i] = float32(v)
		}
		in, err = onnx.NewTensor(onnx.NewShape(int64(len(x))), f)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer in.Destroy()
	outs := []onnx.Value{nil}
	if err := s.Run([]onnx.Value{in}, outs); err != nil {
		t.Fatal(err)
	}
	defer outs[0].Destroy()
	switch o := outs[0].(type) {
	case *onnx.Tensor[float64]:
		return append([]float64(nil), o.GetData()...)
	case *onnx.Tensor[float32]:
		v := make([]float64, len(o.GetData()))
		for i, f := range o.GetData() {
			v[i] = float64(f)
		}
		return v
	}
	t.Fatalf("output of type %T", outs[0])
	return nil
}

// TestToDouble converts float32 graphs (with float16 and external weights, constants, casts
// and ops that have no float64 kernel) and checks that they run in float64 and agree with
// the float32 originals.
func TestToDouble(t *testing.T) {
	testutil.InitORT(t)
	xs := []float64{-3.5, -1.2, -0.3, 0, 0.2, 0.9, 2.7, 4.1}
	cases := []struct {
		name  string
		build func(b *graphs.Builder, x string) string
	}{
		{"Erf", func(b *graphs.Builder, x string) string { return b.Op("Erf", x) }},
		{"Gelu", func(b *graphs.Builder, x string) string { return b.Op("Gelu", x) }},
		{"Gelu/tanh", func(b *graphs.Builder, x string) string {
			return b.Node("Gelu", []string{x}, graphs.AttrString("approximate", "tanh"))
		}},
		{"LeakyRelu", func(b *graphs.Builder, x string) string {
			return b.Node("LeakyRelu", []string{x}, graphs.AttrFloat("alpha", 0.1))
		}},
		{"Softplus", func(b *graphs.Builder, x string) string { return b.Op("Softplus", x) }},
		{"Mean", func(b *graphs.Builder, x string) string {
			return b.Op("Mean", x, b.Op("Neg", x), b.ScalarFloat(3, graphs.Float))
		}},
		{"Elu", func(b *graphs.Builder, x string) string { return b.Op("Elu", x) }},
		{"HardSigmoid", func(b *graphs.Builder, x string) string { return b.Op("HardSigmoid", x) }},
		{"constants and casts", func(b *graphs.Builder, x string) string {
			c := b.Node("Constant", nil, graphs.AttrFloat("value_float", 1.5))
			z := b.Node("ConstantOfShape", []string{b.Op("Shape", x)},
				graphs.AttrTensor("value", graphs.FloatTensor("", []int64{1}, []float32{0.25})))
			i := b.Node("Cast", []string{b.Op("Shape", x)}, graphs.AttrInt("to", int64(graphs.Float)))
			return b.Op("Add", b.Op("Mul", x, c), b.Op("Add", z, i))
		}},
		{"f16 weight", func(b *graphs.Builder, x string) string {
			raw := []byte{0, 0, 0, 0}
			h := graphs.FloatToHalf(0.75)
			raw[0], raw[1] = byte(h), byte(h>>8)
			h = graphs.FloatToHalf(-2)
			raw[2], raw[3] = byte(h), byte(h>>8)
			w := b.Initializer(graphs.RawTensor("w16", graphs.Float16, []int64{2}, raw))
			wf := b.Node("Cast", []string{w}, graphs.AttrInt("to", int64(graphs.Float)))
			return b.Op("Mul", b.Op("Unsqueeze", x, b.ConstInt64(-1)), wf)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := graphs.NewBuilder("t")
			x := b.Input("x", graphs.Float, "n")
			b.Output(tc.build(b, x), "y", graphs.Float)
			m := b.Model("t")
			m.OpsetImport[0].Version = 21
			want := run(t, m, "", xs)
			if err := ToDouble(m, ""); err != nil {
				t.Fatal(err)
			}
			got := run(t, m, "", xs)
			if len(got) != len(want) {
				t.Fatalf("%d outputs, want %d", len(got), len(want))
			}
			for i := range want {
				if math.Abs(got[i]-want[i]) > 2e-6*(1+math.Abs(want[i])) {
					t.Errorf("y[%d] = %.9g in float64, %.9g in float32", i, got[i], want[i])
				}
			}
			for _, n := range m.GetGraph().GetNode() {
				if _, bad := noDoubleKernel[n.GetOpType()]; bad {
					t.Errorf("%s node %q left in the float64 graph", n.GetOpType(), n.GetName())
				}
			}
		})
	}
}

// TestErfDouble checks the float64 erf against math.Erf, far into the tails.
func TestErfDouble(t *testing.T) {
	testutil.InitORT(t)
	var xs []float64
	for x := -6.0; x <= 6; x += 0.01 {
		xs = append(xs, x)
	}
	xs = append(xs, -1e3, 1e3, 2.5, -2.5, 30)
	b := graphs.NewBuilder("erf")
	x := b.Input("x", graphs.Double, "n")
	b.Output(b.Op("Erf", x), "y", graphs.Double)
	m := b.Model("erf")
	if err := decomposeForDouble(m.GetGraph()); err != nil {
		t.Fatal(err)
	}
	got := run(t, m, "", xs)
	worst := 0.0
	for i, x := range xs {
		worst = math.Max(worst, math.Abs(got[i]-math.Erf(x)))
	}
	if worst > 1e-13 || math.IsNaN(worst) {
		t.Errorf("max |erf − math.Erf| = %g, want ≤ 1e-13", worst)
	}
}

// TestToDoubleExternal converts a model whose weight lives in a side file.
func TestToDoubleExternal(t *testing.T) {
	testutil.InitORT(t)
	dir := t.TempDir()
	b := graphs.NewBuilder("t")
	x := b.Input("x", graphs.Float, 3)
	w := graphs.FloatTensor("w", []int64{3}, []float32{1, -2, 0.5})
	ew, err := graphs.NewExternalWriter(dir, "model.onnx.data")
	if err != nil {
		t.Fatal(err)
	}
	if err := ew.Add(w, w.GetRawData()); err != nil {
		t.Fatal(err)
	}
	if err := ew.Close(); err != nil {
		t.Fatal(err)
	}
	b.Initializer(w)
	b.Output(b.Op("Mul", x, "w"), "y", graphs.Float, 3)
	m := b.Model("t")
	if err := ToDouble(m, dir); err != nil {
		t.Fatal(err)
	}
	// The side file is no longer needed: remove it to prove it.
	if err := os.Remove(filepath.Join(dir, "model.onnx.data")); err != nil {
		t.Fatal(err)
	}
	got := run(t, m, "", []float64{1, 1, 2})
	want := []float64{1, -2, 1}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("y = %v, want %v", got, want)
		}
	}
}
