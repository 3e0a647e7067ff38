package export

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/panacea-go/toolkit/export/safetensors"
	"github.com/panacea-go/toolkit/graphs"
)

// TestConvert checks convert for every dtype pair, with and without transposition, on
// shapes around the block size and in both sizes of work (serial and parallel), against
// the safetensors package's own conversions.
func TestConvert(t *testing.T) {
	dtypes := []safetensors.DType{safetensors.F32, safetensors.F16, safetensors.BF16,
		safetensors.F64}
	shapes := [][2]int{{1, 1}, {3, 5}, {32, 32}, {33, 70}, {70, 33}, {1, 100}, {64, 1},
		{600, 520}} // the last one is over parallelBytes in every dtype
	for _, dt := range dtypes {
		for _, elem := range []int32{graphs.Float, graphs.Float16} {
			for _, sh := range shapes {
				for _, tr := range []bool{false, true} {
					rows, cols := sh[0], sh[1]
					vals := make([]float32, rows*cols)
					for i := range vals {
						vals[i] = float32(math.Sin(float64(i)*0.37)) * float32(math.Pow(10, float64(i%9-5)))
					}
					tensor, err := safetensors.FromFloat32("x", dt, []int64{int64(rows), int64(cols)}, vals)
					if err != nil {
						t.Fatal(err)
					}
					dst := make([]byte, rows*cols*graphs.ElemSize(elem))
					if err := convert(dst, tensor.Data, dt, elem, rows, cols, tr); err != nil {
						t.Fatal(err)
					}
					got, err := graphs.TensorFloats(graphs.RawTensor("x", elem, []int64{int64(len(vals))}, dst), "")
					if err != nil {
						t.Fatal(err)
					}
					f, err := safetensors.OpenBytes("x", mustEncode(t, tensor))
					if err != nil {
						t.Fatal(err)
					}
					exact, _ := f.Float32("x") // the stored values, widened exactly
					for r := range rows {
						for c := range cols {
							want := exact[r*cols+c]
							if elem == graphs.Float16 {
								want = safetensors.F16ToF32(safetensors.F32ToF16(want))
							}
							k := r*cols + c
							if tr {
								k = c*rows + r
							}
							if got[k] != want {
								t.Fatalf("%s→%d %dx%d transpose=%v: (%d, %d) = %g, want %g",
									dt, elem, rows, cols, tr, r, c, got[k], want)
							}
						}
					}
				}
			}
		}
	}
	if err := convert(make([]byte, 4), make([]byte, 4), safetensors.I32, graphs.Float, 1, 1, false); err == nil {
		t.Error("I32 accepted")
	}
}

// TestF32ToF16 compares the fast binary16 rounding with safetensors.F32ToF16 on every
// 251st bit pattern and on the edges of its short path.
func TestF32ToF16(t *testing.T) {
	check := func(b uint32) {
		if got, want := f32ToF16(b), safetensors.F32ToF16(math.Float32frombits(b)); got != want {
			t.Fatalf("f32ToF16(%#08x = %g) = %#04x, want %#04x", b, math.Float32frombits(b), got, want)
		}
	}
	for _, edge := range []uint32{0x38800000, 0x387fffff, 0x477ff000, 0x477fefff, 0x477fe000,
		0x3f800fff, 0x3f801000, 0x3f803000, 0x3f802fff, 0x7f800000, 0x7fc00000, 0} {
		check(edge)
		check(edge | 0x80000000)
	}
	for b := uint64(0); b < 1<<32; b += 251 {
		check(uint32(b))
	}
}

func mustEncode(t *testing.T, tensors ...safetensors.Tensor) []byte {
	t.Helper()
	var buf bytesBuffer
	if err := safetensors.Encode(&buf, tensors, nil); err != nil {
		t.Fatal(err)
	}
	return buf.b
}

type bytesBuffer struct{ b []byte }

func (w *bytesBuffer) Write(p []byte) (int, error) { w.b = append(w.b, p...); return len(p), nil }

// TestRopeInvFreq checks the scaling rules against a float64 evaluation of Hugging Face's
// formulas (the fixtures' generator uses the same).
func TestRopeInvFreq(t *testing.T) {
	f := func(v float64) *float64 { return &v }
	base := func(theta float64, d int) []float64 {
		out := make([]float64, d/2)
		for i := range out {
			out[i] = 1 / math.Pow(theta, float64(2*i)/float64(d))
		}
		return out
	}
	llama3 := func(inv []float64, factor, lo, hi, old float64) []float64 {
		out := slices.Clone(inv)
		for i, v := range inv {
			wave := 2 * math.Pi / v
			switch {
			case wave < old/hi:
			case wave > old/lo:
				out[i] = v / factor
			default:
				s := (old/wave - lo) / (hi - lo)
				out[i] = (1-s)*v/factor + s*v
			}
		}
		return out
	}
	cases := []struct {
		name  string
		theta float64
		dim   int
		sc    *ropeScaling
		want  []float64
	}{
		{"default", 10000, 8, nil, base(10000, 8)},
		{"default head_dim 64", 500000, 64, &ropeScaling{RopeType: "default"}, base(500000, 64)},
		{"linear", 10000, 16, &ropeScaling{Type: "linear", Factor: f(4)},
			func() []float64 {
				b := base(10000, 16)
				for i := range b {
					b[i] /= 4
				}
				return b
			}()},
		{"llama3 three bands", 500000, 8, &ropeScaling{RopeType: "llama3", Factor: f(8),
			LowFreqFactor: f(1), HighFreqFactor: f(4), OriginalMaxPositions: f(256)},
			llama3(base(500000, 8), 8, 1, 4, 256)},
		{"llama3 8B settings", 500000, 128, &ropeScaling{RopeType: "llama3", Factor: f(8),
			LowFreqFactor: f(1), HighFreqFactor: f(4), OriginalMaxPositions: f(8192)},
			llama3(base(500000, 128), 8, 1, 4, 8192)},
	}
	for _, c := range cases {
		got, err := ropeInvFreq(c.theta, c.dim, c.sc, "rope_scaling")
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if len(got) != len(c.want) {
			t.Fatalf("%s: %d frequencies, want %d", c.name, len(got), len(c.want))
		}
		for i := range got {
			if d := math.Abs(float64(got[i])-c.want[i]) / c.want[i]; d > 1e-6 {
				t.Errorf("%s: inv_freq[%d] = %g, want %g", c.name, i, got[i], c.want[i])
			}
		}
	}
}

func TestLlamaWindows(t *testing.T) {
	i := func(v int) *int { return &v }
	cases := []struct {
		name      string
		modelType string
		c         llamaConfig
		want      []int
	}{
		{"llama never", "llama", llamaConfig{SlidingWindow: i(3)}, []int{0, 0, 0}},
		{"mistral all layers", "mistral", llamaConfig{SlidingWindow: i(3)}, []int{3, 3, 3}},
		{"mistral default 4096", "mistral", llamaConfig{}, []int{4096, 4096, 4096}},
		{"qwen2 off", "qwen2", llamaConfig{SlidingWindow: i(8)}, []int{0, 0, 0}},
		{"qwen2 from max_window_layers", "qwen2",
			llamaConfig{SlidingWindow: i(8), UseSlidingWindow: true, MaxWindowLayers: i(1)},
			[]int{0, 8, 8}},
		{"layer_types", "mistral", llamaConfig{SlidingWindow: i(5),
			LayerTypes: []string{"full_attention", "sliding_attention", "full_attention"}},
			[]int{0, 5, 0}},
	}
	for _, c := range cases {
		c.c.NumHiddenLayers = 3
		got, err := llamaWindows(&c.c, c.modelType, llamaDefaults[c.modelType].slidingWindow,
			llamaDefaults[c.modelType].maxWindowLayers)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("%s: windows %v, want %v", c.name, got, c.want)
		}
	}
	bad := llamaConfig{NumHiddenLayers: 3, LayerTypes: []string{"full_attention"}}
	if _, err := llamaWindows(&bad, "mistral", 0, 0); err == nil {
		t.Error("layer_types of the wrong length accepted")
	}
}

func TestReadTokenIDs(t *testing.T) {
	cases := []struct {
		config, generation string // "" = file absent
		bos, pad           string
		eos                string
	}{
		{`{"bos_token_id": 1, "eos_token_id": 2}`, "", "1", "<nil>", "[2]"},
		{`{"eos_token_id": [3, 4], "pad_token_id": 0}`, "", "<nil>", "0", "[3 4]"},
		{`{"bos_token_id": 1, "eos_token_id": 2}`, `{"eos_token_id": [1, 2]}`, "1", "<nil>", "[1 2]"},
		{`{"eos_token_id": 2}`, `{"bos_token_id": 7, "eos_token_id": null}`, "7", "<nil>", "[2]"},
		{`{}`, "", "<nil>", "<nil>", "[]"},
	}
	show := func(p *int) string {
		if p == nil {
			return "<nil>"
		}
		return fmt.Sprint(*p)
	}
	for _, c := range cases {
		dir := t.TempDir()
		write(t, dir, "config.json", c.config)
		if c.generation != "" {
			write(t, dir, "generation_config.json", c.generation)
		}
		cfg, err := readConfig(dir)
		if err != nil {
			t.Fatal(err)
		}
		ids, err := readTokenIDs(dir, cfg)
		if err != nil {
			t.Fatal(err)
		}
		if show(ids.BOS) != c.bos || show(ids.Pad) != c.pad || fmt.Sprint(ids.EOS) != c.eos {
			t.Errorf("%s + %s: bos %s pad %s eos %v, want %s %s %s", c.config, c.generation,
				show(ids.BOS), show(ids.Pad), ids.EOS, c.bos, c.pad, c.eos)
		}
	}
	dir := t.TempDir()
	write(t, dir, "config.json", `{"eos_token_id": "two"}`)
	cfg, _ := readConfig(dir)
	if _, err := readTokenIDs(dir, cfg); err == nil {
		t.Error("string eos_token_id accepted")
	}
}

func write(t testing.TB, dir, name, text string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// FuzzSelectFamily feeds arbitrary config.json bytes to the config parser and family
// selection: they must return an error or a consistent manifest, never panic.
func FuzzSelectFamily(f *testing.F) {
	for _, name := range []string{"llama_gqa_tied", "llama_rope_llama3", "mistral_sliding",
		"qwen2_bias", "gpt2"} {
		data, err := os.ReadFile(filepath.Join("..", "testdata", "export", name, "config.json"))
		if err == nil {
			f.Add(data)
		}
	}
	f.Add([]byte(`{"model_type": "llama", "hidden_size": 8, "num_attention_heads": 0}`))
	f.Add([]byte(`{"model_type": "gpt2", "n_embd": -4}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg := &rawConfig{data: data}
		if json.Unmarshal(data, &cfg.keys) != nil {
			return
		}
		fam, err := selectFamily(cfg)
		if err != nil {
			return
		}
		m := fam.manifest()
		if m.NumLayers <= 0 || m.HeadDim <= 0 || m.NumKVHeads <= 0 ||
			m.NumHeads%m.NumKVHeads != 0 || m.VocabSize <= 0 {
			t.Fatalf("accepted an inconsistent config: %+v", m)
		}
	})
}
