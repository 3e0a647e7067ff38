package lora

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// segment wraps alternatives so that they match one whole component of a dotted initializer
// name ("model.layers.0.self_attn.q_proj.weight") or of a slash-separated node name
// ("/model/layers.0/self_attn/q_proj/MatMul").
func segment(alternatives ...string) string {
	return `(^|[./])(` + strings.Join(alternatives, "|") + `)([./]|$)`
}

// familyTargets maps a model family to the layers adapted by default: attention q, k, v, o
// and the MLP's gate, up and down for the Llama family (fused qkv_proj and gate_up_proj for
// models that fuse them); GPT-2's fused c_attn, the attention and MLP c_proj, and c_fc.
var familyTargets = map[string][]string{
	"llama": {segment("q_proj", "k_proj", "v_proj", "o_proj", "qkv_proj", "gate_proj",
		"up_proj", "gate_up_proj", "down_proj")},
	"gpt2": {segment(`attn[./]c_attn`, `attn[./]c_proj`, `mlp[./]c_fc`, `mlp[./]c_proj`)},
}

// familyAliases maps Hugging Face model_type values to a target family.
var familyAliases = map[string]string{
	"llama": "llama", "mistral": "llama", "mixtral": "llama", "qwen2": "llama",
	"qwen3": "llama", "gemma": "llama", "gemma2": "llama", "phi3": "llama", "olmo": "llama",
	"smollm": "llama", "gpt2": "gpt2",
}

// DefaultTargets returns the default target patterns of a model family, given as a Hugging
// Face model_type ("llama", "mistral", "qwen2", "gpt2", …). An empty family gives the
// patterns of every family.
func DefaultTargets(family string) ([]string, error) {
	if family == "" {
		var all []string
		for _, f := range slices.Sorted(maps.Keys(familyTargets)) {
			all = append(all, familyTargets[f]...)
		}
		return all, nil
	}
	if f, ok := familyAliases[strings.ToLower(family)]; ok {
		return slices.Clone(familyTargets[f]), nil
	}
	return nil, fmt.Errorf("lora: no default targets for model family %q (known: %s); "+
		"name the layers with explicit target patterns", family,
		strings.Join(slices.Sorted(maps.Keys(familyAliases)), ", "))
}
