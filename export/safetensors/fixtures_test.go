package safetensors

import (
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/panacea-go/toolkit/internal/testutil"
)

// fixtureConfig holds the config.json keys the fixture check needs, Llama-family and GPT-2.
type fixtureConfig struct {
	ModelType  string `json:"model_type"`
	TorchDType string `json:"torch_dtype"`
	Vocab      int64  `json:"vocab_size"`
	Tied       bool   `json:"tie_word_embeddings"`

	Hidden       int64 `json:"hidden_size"`
	Intermediate int64 `json:"intermediate_size"`
	Layers       int64 `json:"num_hidden_layers"`
	Heads        int64 `json:"num_attention_heads"`
	KVHeads      int64 `json:"num_key_value_heads"`
	HeadDim      int64 `json:"head_dim"`

	NEmbd      int64  `json:"n_embd"`
	NLayer     int64  `json:"n_layer"`
	NPositions int64  `json:"n_positions"`
	NInner     *int64 `json:"n_inner"`
}

// expectedTensors derives every tensor name and shape a checkpoint with config c must hold.
func expectedTensors(c fixtureConfig) map[string][]int64 {
	want := map[string][]int64{}
	if c.ModelType == "gpt2" {
		e, inner := c.NEmbd, 4*c.NEmbd
		if c.NInner != nil {
			inner = *c.NInner
		}
		want["transformer.wte.weight"] = []int64{c.Vocab, e}
		want["transformer.wpe.weight"] = []int64{c.NPositions, e}
		want["transformer.ln_f.weight"] = []int64{e}
		want["transformer.ln_f.bias"] = []int64{e}
		for i := range c.NLayer {
			p := fmt.Sprintf("transformer.h.%d.", i)
			for name, shape := range map[string][]int64{
				"ln_1.weight": {e}, "ln_1.bias": {e}, "ln_2.weight": {e}, "ln_2.bias": {e},
				"attn.c_attn.weight": {e, 3 * e}, "attn.c_attn.bias": {3 * e},
				"attn.c_proj.weight": {e, e}, "attn.c_proj.bias": {e},
				"mlp.c_fc.weight": {e, inner}, "mlp.c_fc.bias": {inner},
				"mlp.c_proj.weight": {inner, e}, "mlp.c_proj.bias": {e},
			} {
				want[p+name] = shape
			}
		}
		return want
	}
	h, d := c.Hidden, c.HeadDim
	if d == 0 {
		d = h / c.Heads
	}
	nq, nkv := c.Heads*d, c.KVHeads*d
	want["model.embed_tokens.weight"] = []int64{c.Vocab, h}
	want["model.norm.weight"] = []int64{h}
	if !c.Tied {
		want["lm_head.weight"] = []int64{c.Vocab, h}
	}
	for i := range c.Layers {
		p := fmt.Sprintf("model.layers.%d.", i)
		layer := map[string][]int64{
			"input_layernorm.weight": {h}, "post_attention_layernorm.weight": {h},
			"self_attn.q_proj.weight": {nq, h}, "self_attn.k_proj.weight": {nkv, h},
			"self_attn.v_proj.weight": {nkv, h}, "self_attn.o_proj.weight": {h, nq},
			"mlp.gate_proj.weight": {c.Intermediate, h}, "mlp.up_proj.weight": {c.Intermediate, h},
			"mlp.down_proj.weight": {h, c.Intermediate},
		}
		if c.ModelType == "qwen2" {
			layer["self_attn.q_proj.bias"] = []int64{nq}
			layer["self_attn.k_proj.bias"] = []int64{nkv}
			layer["self_attn.v_proj.bias"] = []int64{nkv}
		}
		for name, shape := range layer {
			want[p+name] = shape
		}
	}
	return want
}

// TestExportFixtures opens every checkpoint in testdata/export (made by gen_reference.py)
// and checks that its tensors are exactly those its config.json implies, with the stored
// dtype, and that reference.json has the shapes the exporter's comparison relies on.
func TestExportFixtures(t *testing.T) {
	root := filepath.Join(testutil.RepoRoot(t), "testdata", "export")
	cases := []struct {
		name   string
		dtype  DType
		shards int
	}{
		{"llama_gqa_tied", F32, 1},
		{"llama_rope_llama3", F32, 1},
		{"llama_rope_linear_f16", F16, 1},
		{"llama_bf16_sharded", BF16, 2},
		{"mistral_sliding", F32, 1},
		{"qwen2_bias", F32, 1},
		{"gpt2", F32, 1},
	}
	torchDTypes := map[string]DType{"float32": F32, "float16": F16, "bfloat16": BF16}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(root, tc.name)
			var cfg fixtureConfig
			readJSON(t, filepath.Join(dir, "config.json"), &cfg)
			if torchDTypes[cfg.TorchDType] != tc.dtype {
				t.Errorf("config torch_dtype %q, want %s", cfg.TorchDType, tc.dtype)
			}

			m, err := OpenDir(dir)
			if err != nil {
				t.Fatalf("OpenDir: %v", err)
			}
			defer m.Close()
			if got := len(m.Files()); got != tc.shards {
				t.Errorf("%d files, want %d", got, tc.shards)
			}
			want := expectedTensors(cfg)
			for _, name := range m.Names() {
				if _, ok := want[name]; !ok {
					t.Errorf("unexpected tensor %s", name)
				}
			}
			for name, shape := range want {
				info, err := m.Info(name)
				if err != nil {
					t.Errorf("missing %s: %v", name, err)
					continue
				}
				if info.DType != tc.dtype || !slices.Equal(info.Shape, shape) {
					t.Errorf("%s: %s %v, want %s %v", name, info.DType, info.Shape, tc.dtype, shape)
				}
				v, err := m.Float32(name)
				if err != nil {
					t.Fatalf("Float32(%s): %v", name, err)
				}
				for _, x := range v {
					if math.IsNaN(float64(x)) || math.Abs(float64(x)) > 10 {
						t.Fatalf("%s holds %g, not a fixture weight", name, x)
					}
				}
			}
			checkReference(t, filepath.Join(dir, "reference.json"), cfg.Vocab, m)
		})
	}
}

// checkReference checks the shapes and ranges of a reference.json, and that the weight
// digests the generator computed from its own decoding match what m decodes.
func checkReference(t *testing.T, path string, vocab int64, m *Model) {
	t.Helper()
	var ref struct {
		InputIDs      [][]int64             `json:"input_ids"`
		AttentionMask [][]int64             `json:"attention_mask"`
		PositionIDs   [][]int64             `json:"position_ids"`
		CompareMask   [][]int64             `json:"compare_mask"`
		LogitsShape   []int64               `json:"logits_shape"`
		Logits        []float64             `json:"logits"`
		Digests       map[string][2]float64 `json:"weight_digests"`
	}
	readJSON(t, path, &ref)
	if !slices.Equal(ref.LogitsShape, []int64{2, 7, vocab}) {
		t.Fatalf("logits_shape %v, want [2 7 %d]", ref.LogitsShape, vocab)
	}
	if int64(len(ref.Logits)) != 2*7*vocab {
		t.Errorf("%d logits, want %d", len(ref.Logits), 2*7*vocab)
	}
	wantMask := [][]int64{{1, 1, 1, 1, 1, 1, 1}, {0, 0, 1, 1, 1, 1, 1}}
	wantPos := [][]int64{{0, 1, 2, 3, 4, 5, 6}, {0, 0, 0, 1, 2, 3, 4}}
	for b := range 2 {
		if !slices.Equal(ref.AttentionMask[b], wantMask[b]) || !slices.Equal(ref.CompareMask[b], wantMask[b]) {
			t.Errorf("row %d: attention_mask %v, compare_mask %v, want %v",
				b, ref.AttentionMask[b], ref.CompareMask[b], wantMask[b])
		}
		if !slices.Equal(ref.PositionIDs[b], wantPos[b]) {
			t.Errorf("row %d: position_ids %v, want %v", b, ref.PositionIDs[b], wantPos[b])
		}
		for _, id := range ref.InputIDs[b] {
			if id < 0 || id >= vocab {
				t.Errorf("row %d: input id %d outside [0, %d)", b, id, vocab)
			}
		}
	}
	if !slices.Equal(slices.Sorted(maps.Keys(ref.Digests)), m.Names()) {
		t.Errorf("weight_digests cover %d tensors, the model has %d", len(ref.Digests), len(m.Names()))
	}
	for name, want := range ref.Digests {
		v, err := m.Float32(name)
		if err != nil {
			t.Errorf("digest of %s: %v", name, err)
			continue
		}
		var sum, weighted, scale float64
		for i, x := range v {
			sum += float64(x)
			weighted += float64(x) * float64(i%7+1)
			scale += 7 * math.Abs(float64(x))
		}
		if tol := 1e-12 * (scale + 1); math.Abs(sum-want[0]) > tol || math.Abs(weighted-want[1]) > tol {
			t.Errorf("%s: digest [%.17g %.17g], generator says %v", name, sum, weighted, want)
		}
	}
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, x := range ref.Logits {
		lo, hi = min(lo, x), max(hi, x)
	}
	if !(hi-lo > 2 && hi-lo < 100) {
		t.Errorf("logits span [%g, %g]: want an O(1-10) spread", lo, hi)
	}
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}
