package export

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/panacea-go/toolkit/export/safetensors"
	"github.com/panacea-go/toolkit/internal/testutil"
)

// editWeights rewrites dir/model.safetensors through edit (name → tensor).
func editWeights(t *testing.T, dir string, edit func(map[string]safetensors.Tensor)) {
	t.Helper()
	path := filepath.Join(dir, "model.safetensors")
	f, err := safetensors.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	tensors := map[string]safetensors.Tensor{}
	for _, name := range f.Names() {
		info, err := f.Info(name)
		if err != nil {
			t.Fatal(err)
		}
		raw, err := f.Bytes(name)
		if err != nil {
			t.Fatal(err)
		}
		tensors[name] = safetensors.Tensor{Name: name, DType: info.DType, Shape: info.Shape,
			Data: slices.Clone(raw)}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	edit(tensors)
	var list []safetensors.Tensor
	for _, tensor := range tensors {
		list = append(list, tensor)
	}
	if err := safetensors.Write(path, list, nil); err != nil {
		t.Fatal(err)
	}
}

// TestExportErrors checks that each kind of bad input fails with an error that names the
// culprit (and wraps the right sentinel), and that no model.onnx is left behind.
func TestExportErrors(t *testing.T) {
	cases := []struct {
		name     string
		fixture  string
		config   func(map[string]any)
		weights  func(map[string]safetensors.Tensor)
		sentinel error
		want     []string
	}{
		{name: "unknown architecture", fixture: "llama_gqa_tied",
			config: func(c map[string]any) {
				c["architectures"] = []string{"BertForMaskedLM"}
				c["model_type"] = "bert"
			},
			sentinel: ErrUnsupported,
			want: []string{"BertForMaskedLM", "LlamaForCausalLM", "MistralForCausalLM",
				"Qwen2ForCausalLM", "GPT2LMHeadModel", "llama mistral qwen2 gpt2"}},
		{name: "unknown model_type without architectures", fixture: "llama_gqa_tied",
			config: func(c map[string]any) {
				delete(c, "architectures")
				c["model_type"] = "falcon"
			},
			sentinel: ErrUnsupported, want: []string{`"falcon"`, "LlamaForCausalLM", "gpt2"}},
		{name: "missing config key", fixture: "llama_gqa_tied",
			config:   func(c map[string]any) { delete(c, "hidden_size") },
			sentinel: ErrConfig, want: []string{"config.json", `"hidden_size"`, "missing"}},
		{name: "null config key", fixture: "gpt2",
			config:   func(c map[string]any) { c["n_head"] = nil },
			sentinel: ErrConfig, want: []string{"config.json", `"n_head"`}},
		{name: "config key of the wrong type", fixture: "qwen2_bias",
			config:   func(c map[string]any) { c["num_hidden_layers"] = "two" },
			sentinel: ErrConfig, want: []string{"config.json", "num_hidden_layers"}},
		{name: "kv heads do not divide heads", fixture: "llama_gqa_tied",
			config:   func(c map[string]any) { c["num_key_value_heads"] = 3 },
			sentinel: ErrConfig, want: []string{`"num_key_value_heads"`, "(3)", "(4)"}},
		{name: "unsupported rope_scaling type", fixture: "llama_gqa_tied",
			config: func(c map[string]any) {
				c["rope_scaling"] = map[string]any{"type": "dynamic", "factor": 2.0}
			},
			sentinel: ErrUnsupported, want: []string{"rope_scaling.type", `"dynamic"`, "llama3"}},
		{name: "llama3 rope_scaling without low_freq_factor", fixture: "llama_rope_llama3",
			config: func(c map[string]any) {
				delete(c["rope_scaling"].(map[string]any), "low_freq_factor")
			},
			sentinel: ErrConfig, want: []string{`"rope_scaling.low_freq_factor"`}},
		{name: "unsupported hidden_act", fixture: "mistral_sliding",
			config:   func(c map[string]any) { c["hidden_act"] = "gelu" },
			sentinel: ErrUnsupported, want: []string{"hidden_act", `"gelu"`}},
		{name: "unsupported gpt2 activation", fixture: "gpt2",
			config:   func(c map[string]any) { c["activation_function"] = "relu" },
			sentinel: ErrUnsupported, want: []string{"activation_function", `"relu"`}},
		{name: "missing tensor", fixture: "llama_gqa_tied",
			weights: func(w map[string]safetensors.Tensor) {
				delete(w, "model.layers.1.mlp.up_proj.weight")
			},
			sentinel: ErrMissingTensor, want: []string{`"model.layers.1.mlp.up_proj.weight"`}},
		{name: "untied config without lm_head", fixture: "qwen2_bias",
			config:   func(c map[string]any) { c["tie_word_embeddings"] = false },
			sentinel: ErrMissingTensor, want: []string{`"lm_head.weight"`}},
		{name: "missing gpt2 bias", fixture: "gpt2",
			weights: func(w map[string]safetensors.Tensor) {
				delete(w, "transformer.h.0.attn.c_attn.bias")
			},
			sentinel: ErrMissingTensor, want: []string{`"transformer.h.0.attn.c_attn.bias"`}},
		{name: "mis-shaped tensor", fixture: "llama_gqa_tied",
			weights: func(w map[string]safetensors.Tensor) {
				n := w["model.norm.weight"]
				n.Shape, n.Data = []int64{16}, n.Data[:64]
				w["model.norm.weight"] = n
			},
			sentinel: ErrTensorShape, want: []string{`"model.norm.weight"`, "[16]", "[32]"}},
		{name: "transposed projection", fixture: "qwen2_bias",
			weights: func(w map[string]safetensors.Tensor) {
				k := w["model.layers.0.self_attn.k_proj.weight"]
				k.Shape = []int64{k.Shape[1], k.Shape[0]}
				w["model.layers.0.self_attn.k_proj.weight"] = k
			},
			sentinel: ErrTensorShape,
			want:     []string{`"model.layers.0.self_attn.k_proj.weight"`, "[32 16]", "[16 32]"}},
		{name: "integer weights", fixture: "gpt2",
			weights: func(w map[string]safetensors.Tensor) {
				b := w["transformer.ln_f.bias"]
				b.DType = safetensors.I32
				w["transformer.ln_f.bias"] = b
			},
			sentinel: ErrTensorShape, want: []string{`"transformer.ln_f.bias"`, "I32"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			src := copyFixture(t, c.fixture)
			if c.config != nil {
				editConfig(t, src, c.config)
			}
			if c.weights != nil {
				editWeights(t, src, c.weights)
			}
			dst := filepath.Join(t.TempDir(), "out")
			_, err := Export(src, dst, Options{WithPast: true})
			if err == nil {
				t.Fatal("export succeeded")
			}
			if !errors.Is(err, c.sentinel) {
				t.Errorf("error %q does not wrap %v", err, c.sentinel)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %s", err, w)
				}
			}
			if _, err := os.Stat(filepath.Join(dst, ModelFile)); err == nil {
				t.Errorf("a failed export left %s", ModelFile)
			}
		})
	}
}

// TestBadOptions rejects a dtype other than f32 and f16.
func TestBadOptions(t *testing.T) {
	_, err := Export(fixtureDir(t, "gpt2"), t.TempDir(), Options{DType: "bf16"})
	if err == nil || !strings.Contains(err.Error(), `"bf16"`) {
		t.Errorf("dtype bf16: got %v", err)
	}
}

// TestReExportReplacesOldFiles: a second export into the same folder replaces the first,
// tokenizer files of the first model included.
func TestReExportReplacesOldFiles(t *testing.T) {
	dst := t.TempDir()
	if _, err := Export(testutil.SharedData(t, "stories260k-hf"), dst, Options{}); err != nil {
		t.Fatal(err)
	}
	m, err := Export(fixtureDir(t, "qwen2_bias"), dst, Options{DType: "f16"})
	if err != nil {
		t.Fatal(err)
	}
	back, err := ReadManifest(dst)
	if err != nil {
		t.Fatal(err)
	}
	if back.ModelType != "qwen2" || m.DType != "f16" || len(back.TokenizerFiles) != 0 {
		t.Errorf("manifest after re-export: %s %s %v", back.ModelType, back.DType,
			back.TokenizerFiles)
	}
	for _, name := range []string{"tokenizer.json", "generation_config.json"} {
		if _, err := os.Stat(filepath.Join(dst, name)); err == nil {
			t.Errorf("%s of the first model survived the re-export", name)
		}
	}
	if _, err := ReadManifest(t.TempDir()); err == nil {
		t.Error("ReadManifest of an empty folder succeeded")
	}
}
