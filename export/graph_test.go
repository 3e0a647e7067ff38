package export

import (
	"encoding/json"
	"fmt"
	"math"
	"path/filepath"
	"regexp"
	"slices"
	"testing"

	"github.com/panacea-go/toolkit/export/safetensors"
	"github.com/panacea-go/toolkit/graphs"
	"github.com/panacea-go/toolkit/graphs/onnxpb"
)

// allowedOps is the operator set the exported graphs may use: ordinary ops the toolkit's
// autodiff can differentiate, and integer/boolean helpers on the mask and position paths.
var allowedOps = map[string]bool{
	"MatMul": true, "Add": true, "Sub": true, "Mul": true, "Div": true, "Neg": true,
	"Sqrt": true, "Reciprocal": true, "Sigmoid": true, "Tanh": true, "Erf": true,
	"Softmax": true, "ReduceMean": true, "Reshape": true, "Transpose": true, "Concat": true,
	"Split": true, "Slice": true, "Gather": true, "Where": true, "Cast": true,
	"Squeeze": true, "Unsqueeze": true, "Shape": true, "CumSum": true, "Max": true,
	"Range": true, "LessOrEqual": true, "Less": true, "And": true, "Cos": true, "Sin": true,
	"LayerNormalization": true, "Identity": true,
}

// TestGraphContract exports one model per family in both dtypes and checks what graph
// passes rely on: only allowed ops; each projection is one MatMul whose second input is
// the (in, out) initializer named by its HF name (through one Cast for f16); metadata;
// input and output names.
func TestGraphContract(t *testing.T) {
	cases := []struct {
		fixture  string
		linear   *regexp.Regexp
		perLayer int
	}{
		{"qwen2_bias", regexp.MustCompile(`\.(q|k|v|o|gate|up|down)_proj\.weight$`), 7},
		{"mistral_sliding", regexp.MustCompile(`\.(q|k|v|o|gate|up|down)_proj\.weight$`), 7},
		{"gpt2", regexp.MustCompile(`\.(c_attn|c_proj|c_fc)\.weight$`), 4},
	}
	for _, c := range cases {
		for _, dtype := range []string{"f32", "f16"} {
			t.Run(c.fixture+"/"+dtype, func(t *testing.T) {
				src, dst := fixtureDir(t, c.fixture), t.TempDir()
				m, err := Export(src, dst, Options{DType: dtype, WithPast: true})
				if err != nil {
					t.Fatal(err)
				}
				model, err := graphs.Load(filepath.Join(dst, ModelFile))
				if err != nil {
					t.Fatal(err)
				}
				checkGraph(t, model, m, c.linear, c.perLayer*m.NumLayers, src)
			})
		}
	}
}

func checkGraph(t *testing.T, model *onnxpb.ModelProto, m *Manifest, linear *regexp.Regexp,
	wantLinear int, src string) {
	t.Helper()
	g := model.GetGraph()
	inits := map[string]*onnxpb.TensorProto{}
	for _, init := range g.GetInitializer() {
		inits[init.GetName()] = init
	}
	producer := map[string]*onnxpb.NodeProto{}
	for _, n := range g.GetNode() {
		if !allowedOps[n.GetOpType()] {
			t.Errorf("node %s uses op %s, outside the differentiable set", n.GetName(), n.GetOpType())
		}
		if n.GetDomain() != "" {
			t.Errorf("node %s is in domain %q", n.GetName(), n.GetDomain())
		}
		for _, o := range n.GetOutput() {
			producer[o] = n
		}
	}
	st, err := safetensors.OpenDir(src)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()

	// Every projection: MatMul(x, W) with W the initializer (f32) or Cast(initializer) (f16).
	found := 0
	for _, n := range g.GetNode() {
		if n.GetOpType() != "MatMul" {
			continue
		}
		w := n.GetInput()[1]
		name := w
		if m.DType == "f16" {
			cast := producer[w]
			if cast == nil || cast.GetOpType() != "Cast" {
				continue
			}
			name = cast.GetInput()[0]
			if cast.GetName() != name+".cast" || w != name+".f32" {
				t.Errorf("cast of %s is node %s output %s", name, cast.GetName(), w)
			}
		}
		init, ok := inits[name]
		if !ok || !linear.MatchString(name) {
			continue
		}
		found++
		info, err := st.Info(name)
		if err != nil {
			t.Fatal(err)
		}
		want := info.Shape // GPT-2 Conv1D: already (in, out)
		if m.Family == "llama" {
			want = []int64{info.Shape[1], info.Shape[0]}
		}
		if !slices.Equal(init.GetDims(), want) {
			t.Errorf("%s stored as %v, want (in, out) %v", name, init.GetDims(), want)
		}
		wantType := map[string]int32{"f32": graphs.Float, "f16": graphs.Float16}[m.DType]
		if init.GetDataType() != wantType {
			t.Errorf("%s has element type %d, want %d", name, init.GetDataType(), wantType)
		}
		if !graphs.IsExternal(init) {
			t.Errorf("%s is not external data", name)
		}
	}
	if found != wantLinear {
		t.Errorf("found %d projection MatMuls on named initializers, want %d", found, wantLinear)
	}

	for key, want := range map[string]string{"family": m.Family, "model_type": m.ModelType,
		"with_past": "true", "dtype": m.DType, "weight_layout": WeightLayoutInOut} {
		if got, _ := graphs.Metadata(model, key); got != want {
			t.Errorf("metadata %s = %q, want %q", key, got, want)
		}
	}
	var ins, outs []string
	for _, v := range g.GetInput() {
		ins = append(ins, v.GetName())
	}
	for _, v := range g.GetOutput() {
		outs = append(outs, v.GetName())
	}
	if fmt.Sprint(ins) != fmt.Sprint(m.InputNames()) {
		t.Errorf("graph inputs %v, manifest %v", ins, m.InputNames())
	}
	if fmt.Sprint(outs) != fmt.Sprint(m.OutputNames()) {
		t.Errorf("graph outputs %v, manifest %v", outs, m.OutputNames())
	}
	if model.GetOpsetImport()[0].GetVersion() != graphs.Opset {
		t.Errorf("opset %d, want %d", model.GetOpsetImport()[0].GetVersion(), graphs.Opset)
	}
}

// TestStoredWeightsMatchCheckpoint reads initializers back from model.onnx.data and checks
// them against the checkpoint: transposed projections, untouched norms and embeddings,
// F16 and BF16 sources widened exactly, and f16 storage rounded to nearest even.
func TestStoredWeightsMatchCheckpoint(t *testing.T) {
	cases := []struct {
		fixture, dtype, tensor string
		transposed             bool
	}{
		{"llama_gqa_tied", "f32", "model.layers.1.self_attn.k_proj.weight", true},
		{"llama_gqa_tied", "f16", "model.layers.0.mlp.down_proj.weight", true},
		{"llama_gqa_tied", "f32", "model.embed_tokens.weight", false},
		{"llama_rope_linear_f16", "f32", "model.layers.0.mlp.gate_proj.weight", true},
		{"llama_rope_linear_f16", "f16", "model.norm.weight", false},
		{"llama_bf16_sharded", "f32", "lm_head.weight", true},
		{"llama_bf16_sharded", "f16", "model.layers.1.self_attn.o_proj.weight", true},
		{"gpt2", "f32", "transformer.h.1.attn.c_attn.weight", false},
		{"gpt2", "f16", "transformer.wpe.weight", false},
	}
	for _, c := range cases {
		t.Run(c.fixture+"/"+c.dtype+"/"+c.tensor, func(t *testing.T) {
			src, dst := fixtureDir(t, c.fixture), t.TempDir()
			if _, err := Export(src, dst, Options{DType: c.dtype}); err != nil {
				t.Fatal(err)
			}
			model, err := graphs.Load(filepath.Join(dst, ModelFile))
			if err != nil {
				t.Fatal(err)
			}
			var init *onnxpb.TensorProto
			for _, x := range model.GetGraph().GetInitializer() {
				if x.GetName() == c.tensor {
					init = x
				}
			}
			if init == nil {
				t.Fatalf("no initializer %s", c.tensor)
			}
			got, err := graphs.TensorFloats(init, dst)
			if err != nil {
				t.Fatal(err)
			}
			st, err := safetensors.OpenDir(src)
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			info, _ := st.Info(c.tensor)
			want, err := st.Float32(c.tensor)
			if err != nil {
				t.Fatal(err)
			}
			rows, cols := int(info.Shape[0]), 1
			if len(info.Shape) == 2 {
				cols = int(info.Shape[1])
			}
			for r := range rows {
				for col := range cols {
					w := want[r*cols+col]
					if c.dtype == "f16" {
						w = safetensors.F16ToF32(safetensors.F32ToF16(w))
					}
					k := r*cols + col
					if c.transposed {
						k = col*rows + r
					}
					if got[k] != w {
						t.Fatalf("element (%d, %d) = %g, want %g", r, col, got[k], w)
					}
				}
			}
		})
	}
}

// TestWeightDigests reads every exported initializer back from model.onnx.data and checks
// it against the fixture's weight_digests ([Σ x, Σ x_i·(i mod 7 + 1)] in the checkpoint's
// row-major order), so every element of every tensor, and its position after the
// transposition, is verified. f16 storage is checked on the 16-bit fixtures, whose values
// f16 holds exactly.
func TestWeightDigests(t *testing.T) {
	for _, name := range fixtureCases(t) {
		src := fixtureDir(t, name)
		ref := readReference(t, src)
		var digests map[string][2]float64
		if err := json.Unmarshal(ref.WeightDigests, &digests); err != nil || len(digests) == 0 {
			t.Fatalf("%s: weight_digests: %v", name, err)
		}
		dtypes := []string{"f32"}
		if ref.WeightsDType == "F16" {
			dtypes = append(dtypes, "f16")
		}
		for _, dtype := range dtypes {
			dst := t.TempDir()
			m, err := Export(src, dst, Options{DType: dtype})
			if err != nil {
				t.Fatal(err)
			}
			model, err := graphs.Load(filepath.Join(dst, ModelFile))
			if err != nil {
				t.Fatal(err)
			}
			seen := 0
			for _, init := range model.GetGraph().GetInitializer() {
				want, ok := digests[init.GetName()]
				if !ok {
					continue
				}
				seen++
				vals, err := graphs.TensorFloats(init, dst)
				if err != nil {
					t.Fatal(err)
				}
				dims := init.GetDims()
				transposed := len(dims) == 2 && (m.Family == "llama" &&
					init.GetName() != "model.embed_tokens.weight" || init.GetName() == "lm_head.weight")
				var sum, weighted float64
				for i := range vals {
					v := vals[i]
					if transposed { // stored (in, out); i walks the checkpoint's (out, in)
						out, in := i/int(dims[0]), i%int(dims[0])
						v = vals[in*int(dims[1])+out]
					}
					sum += float64(v)
					weighted += float64(v) * float64(i%7+1)
				}
				for k, got := range []float64{sum, weighted} {
					if math.Abs(got-want[k]) > 1e-9*math.Max(1, math.Abs(want[k])) {
						t.Errorf("%s/%s: %s digest %d = %.12g, want %.12g", name, dtype,
							init.GetName(), k, got, want[k])
					}
				}
			}
			if seen != len(digests) {
				t.Errorf("%s/%s: %d of %d checkpoint tensors exported", name, dtype, seen,
					len(digests))
			}
		}
	}
}
