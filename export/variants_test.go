package export

import (
	"fmt"
	"strings"
	"testing"

	"github.com/panacea-go/toolkit/export/safetensors"
)

// zeros returns an F32 tensor of zeros.
func zeros(name string, shape ...int64) safetensors.Tensor {
	n := int64(4)
	for _, d := range shape {
		n *= d
	}
	return safetensors.Tensor{Name: name, DType: safetensors.F32, Shape: shape, Data: make([]byte, n)}
}

// TestCheckpointVariants exports fixtures rewritten into other layouts Hugging Face
// checkpoints come in, each equivalent to the original, and compares with the original
// reference: GPT-2 names without the "transformer." prefix plus the attn.bias buffers of
// old hub checkpoints; Llama with attention_bias and mlp_bias (zero biases); an untied head
// holding a copy of the embedding; rope settings spelled as rope_parameters.
func TestCheckpointVariants(t *testing.T) {
	cases := []struct {
		name, fixture string
		config        func(map[string]any)
		weights       func(map[string]safetensors.Tensor)
	}{
		{name: "gpt2 legacy names", fixture: "gpt2",
			weights: func(w map[string]safetensors.Tensor) {
				for name, tensor := range w {
					delete(w, name)
					tensor.Name = strings.TrimPrefix(name, "transformer.")
					w[tensor.Name] = tensor
				}
				for i := range 2 {
					w[fmt.Sprintf("h.%d.attn.bias", i)] = zeros(fmt.Sprintf("h.%d.attn.bias", i), 1, 1, 32, 32)
				}
			}},
		{name: "llama attention and mlp biases", fixture: "llama_gqa_tied",
			config: func(c map[string]any) { c["attention_bias"], c["mlp_bias"] = true, true },
			weights: func(w map[string]safetensors.Tensor) {
				for i := range 2 {
					p := fmt.Sprintf("model.layers.%d.", i)
					for name, n := range map[string]int64{"self_attn.q_proj": 32,
						"self_attn.k_proj": 16, "self_attn.v_proj": 16, "self_attn.o_proj": 32,
						"mlp.gate_proj": 48, "mlp.up_proj": 48, "mlp.down_proj": 32} {
						w[p+name+".bias"] = zeros(p+name+".bias", n)
					}
				}
			}},
		{name: "untied head holding the embedding", fixture: "llama_gqa_tied",
			config: func(c map[string]any) { c["tie_word_embeddings"] = false },
			weights: func(w map[string]safetensors.Tensor) {
				head := w["model.embed_tokens.weight"]
				head.Name = "lm_head.weight"
				w[head.Name] = head
			}},
		{name: "rope_parameters", fixture: "llama_rope_llama3",
			config: func(c map[string]any) {
				p := c["rope_scaling"].(map[string]any)
				p["rope_theta"] = c["rope_theta"]
				c["rope_parameters"] = p
				delete(c, "rope_scaling")
				delete(c, "rope_theta")
			}},
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
			ref := readReference(t, src)
			for _, past := range []bool{false, true} {
				l := exportAndOpen(t, src, Options{WithPast: past})
				logits, cache := l.run(t, ref.InputIDs, ref.AttentionMask, nil)
				cache.destroy()
				d := compareLogits(t, c.name, logits, ref.Logits, ref.CompareMask, l.m.VocabSize, 1e-4)
				t.Logf("%s (past=%v): max |Δ| %.3g", c.name, past, d)
			}
		})
	}
}
