// Package randmodel writes Hugging Face checkpoints with random weights, for benchmarks that
// need the shapes of a real model but not its skill.
//
// Glossary:
//   - checkpoint: a Hugging Face model folder, config.json + model.safetensors, that
//     export.Export reads.
//   - SmolLM-135M shapes: the Llama-family sizes of HuggingFaceTB/SmolLM-135M (hidden 576,
//     MLP 1536, 9 heads of 64, 3 KV heads, vocabulary 49152, tied embeddings); at 30 layers
//     134.5M parameters, 538 MB in F32.
package randmodel

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"

	"github.com/panacea-go/toolkit/export/safetensors"
	"github.com/panacea-go/toolkit/graphs"
)

// SmolLM-135M's sizes (the layer count is WriteLlama's argument; the real model has 30).
const (
	Hidden       = 576
	Intermediate = 1536
	Heads        = 9
	KVHeads      = 3
	HeadDim      = 64
	VocabSize    = 49152
)

// llamaConfig is config.json; %d is the layer count.
const llamaConfig = `{
  "architectures": ["LlamaForCausalLM"], "model_type": "llama",
  "hidden_size": 576, "intermediate_size": 1536, "num_hidden_layers": %d,
  "num_attention_heads": 9, "num_key_value_heads": 3, "head_dim": 64,
  "vocab_size": 49152, "max_position_embeddings": 2048, "rms_norm_eps": 1e-5,
  "rope_theta": 10000.0, "tie_word_embeddings": true, "hidden_act": "silu",
  "bos_token_id": 1, "eos_token_id": 2, "torch_dtype": "float32"
}`

// WriteLlama writes dir/config.json and dir/model.safetensors (created with dir if needed):
// a LlamaForCausalLM with the shapes of SmolLM-135M (hidden 576, MLP 1536, 9 attention
// heads of 64, 3 KV heads, vocabulary 49152, tied embeddings, 2048 positions, RoPE θ 10⁴,
// BOS 1, EOS 2) and the given number of decoder layers (30 for SmolLM-135M's 134.5M
// parameters). Matrices are N(0, 0.02²) from a PCG seeded with (seed, 35), drawn in the
// order embedding, final norm, then each layer's tensors; norm weights are 1; all F32. The
// file is encoded in memory first (4 bytes per parameter: 538 MB at 30 layers). No tokenizer
// files are written: copy a tokenizer whose ids are below 49152 into dir before exporting.
func WriteLlama(dir string, layers int, seed uint64) error {
	if layers < 1 {
		return fmt.Errorf("randmodel: %d layers, want at least 1", layers)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("randmodel: %w", err)
	}
	cfg := fmt.Sprintf(llamaConfig, layers)
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(cfg), 0o644); err != nil {
		return fmt.Errorf("randmodel: %w", err)
	}
	rng := rand.New(rand.NewPCG(seed, 35))
	var tensors []safetensors.Tensor
	add := func(name string, ones bool, shape ...int64) error {
		v := make([]float32, graphs.NumElements(shape))
		for i := range v {
			if ones {
				v[i] = 1
			} else {
				v[i] = float32(rng.NormFloat64() * 0.02)
			}
		}
		t, err := safetensors.FromFloat32(name, safetensors.F32, shape, v)
		tensors = append(tensors, t)
		return err
	}
	const h, inter, kv = Hidden, Intermediate, KVHeads * HeadDim
	if err := add("model.embed_tokens.weight", false, VocabSize, h); err != nil {
		return err
	}
	if err := add("model.norm.weight", true, h); err != nil {
		return err
	}
	for i := range layers {
		p := fmt.Sprintf("model.layers.%d.", i)
		for _, w := range []struct {
			name string
			ones bool
			dims []int64
		}{
			{"input_layernorm.weight", true, []int64{h}},
			{"post_attention_layernorm.weight", true, []int64{h}},
			{"self_attn.q_proj.weight", false, []int64{Heads * HeadDim, h}},
			{"self_attn.k_proj.weight", false, []int64{kv, h}},
			{"self_attn.v_proj.weight", false, []int64{kv, h}},
			{"self_attn.o_proj.weight", false, []int64{h, Heads * HeadDim}},
			{"mlp.gate_proj.weight", false, []int64{inter, h}},
			{"mlp.up_proj.weight", false, []int64{inter, h}},
			{"mlp.down_proj.weight", false, []int64{h, inter}},
		} {
			if err := add(p+w.name, w.ones, w.dims...); err != nil {
				return err
			}
		}
	}
	return safetensors.Write(filepath.Join(dir, "model.safetensors"), tensors, nil)
}
