package export

import (
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strings"
)

// llamaConfig is config.json of the Llama family (llama, mistral, qwen2), with Hugging
// Face's key names. Pointer fields are optional keys whose default depends on the model
// type.
type llamaConfig struct {
	HiddenSize            int          `json:"hidden_size"`
	IntermediateSize      int          `json:"intermediate_size"`
	NumHiddenLayers       int          `json:"num_hidden_layers"`
	NumAttentionHeads     int          `json:"num_attention_heads"`
	NumKeyValueHeads      *int         `json:"num_key_value_heads"` // default: no GQA
	HeadDim               *int         `json:"head_dim"`            // default: hidden/heads
	VocabSize             int          `json:"vocab_size"`
	MaxPositionEmbeddings *int         `json:"max_position_embeddings"`
	RMSNormEps            *float64     `json:"rms_norm_eps"`
	RopeTheta             *float64     `json:"rope_theta"`
	RopeScaling           *ropeScaling `json:"rope_scaling"`
	RopeParameters        *ropeScaling `json:"rope_parameters"` // newer spelling
	TieWordEmbeddings     *bool        `json:"tie_word_embeddings"`
	HiddenAct             *string      `json:"hidden_act"`
	AttentionBias         bool         `json:"attention_bias"`     // llama: q, k, v, o biases
	MLPBias               bool         `json:"mlp_bias"`           // llama: gate, up, down biases
	SlidingWindow         *int         `json:"sliding_window"`     // mistral, qwen2
	UseSlidingWindow      bool         `json:"use_sliding_window"` // qwen2
	MaxWindowLayers       *int         `json:"max_window_layers"`  // qwen2
	LayerTypes            []string     `json:"layer_types"`        // newer checkpoints
}

// llamaDefaults are Hugging Face's class defaults for keys a config.json may omit.
var llamaDefaults = map[string]struct {
	maxPositions, slidingWindow, maxWindowLayers int
	eps                                          float64
}{
	"llama":   {maxPositions: 2048, eps: 1e-6},
	"mistral": {maxPositions: 4096 * 32, slidingWindow: 4096, eps: 1e-6},
	"qwen2":   {maxPositions: 32768, slidingWindow: 4096, maxWindowLayers: 28, eps: 1e-6},
}

// llamaTopTensors maps the model-level Hugging Face tensors to graph values. Shapes are in
// the checkpoint's layout: linear weights are (out, in) there and stored (in, out).
var llamaTopTensors = []tensorSpec{
	{"model.embed_tokens.weight", "vocab_size, hidden_size", asIs, ""},
	{"model.norm.weight", "hidden_size", asIs, ""},
	{"lm_head.weight", "vocab_size, hidden_size", transposed, "untied"},
}

// llamaLayerTensors maps one decoder layer's tensors (prefix "model.layers.N.").
var llamaLayerTensors = []tensorSpec{
	{"input_layernorm.weight", "hidden_size", asIs, ""},
	{"self_attn.q_proj.weight", "heads*head_dim, hidden_size", transposed, ""},
	{"self_attn.q_proj.bias", "heads*head_dim", asIs, "qkv_bias"},
	{"self_attn.k_proj.weight", "kv_heads*head_dim, hidden_size", transposed, ""},
	{"self_attn.k_proj.bias", "kv_heads*head_dim", asIs, "qkv_bias"},
	{"self_attn.v_proj.weight", "kv_heads*head_dim, hidden_size", transposed, ""},
	{"self_attn.v_proj.bias", "kv_heads*head_dim", asIs, "qkv_bias"},
	{"self_attn.o_proj.weight", "hidden_size, heads*head_dim", transposed, ""},
	{"self_attn.o_proj.bias", "hidden_size", asIs, "o_bias"},
	{"post_attention_layernorm.weight", "hidden_size", asIs, ""},
	{"mlp.gate_proj.weight", "intermediate_size, hidden_size", transposed, ""},
	{"mlp.gate_proj.bias", "intermediate_size", asIs, "mlp_bias"},
	{"mlp.up_proj.weight", "intermediate_size, hidden_size", transposed, ""},
	{"mlp.up_proj.bias", "intermediate_size", asIs, "mlp_bias"},
	{"mlp.down_proj.weight", "hidden_size, intermediate_size", transposed, ""},
	{"mlp.down_proj.bias", "hidden_size", asIs, "mlp_bias"},
}

// llamaModel is a validated Llama-family configuration.
type llamaModel struct {
	m       Manifest
	eps     float64
	invFreq []float32 // (head_dim/2), scaling applied
	windows []int     // per layer: sliding window, 0 for full attention
	flags   map[string]bool
}

// newLlama validates config.json for llama, mistral and qwen2.
func newLlama(cfg *rawConfig, arch, modelType string) (*llamaModel, error) {
	if err := cfg.require("hidden_size", "intermediate_size", "num_hidden_layers",
		"num_attention_heads", "vocab_size"); err != nil {
		return nil, err
	}
	var c llamaConfig
	if err := cfg.decode(&c); err != nil {
		return nil, err
	}
	def := llamaDefaults[modelType]
	kvHeads := or(c.NumKeyValueHeads, c.NumAttentionHeads)
	headDim := 0
	if c.NumAttentionHeads > 0 {
		headDim = or(c.HeadDim, c.HiddenSize/c.NumAttentionHeads)
	}
	maxPos := or(c.MaxPositionEmbeddings, def.maxPositions)
	eps := or(c.RMSNormEps, def.eps)
	if err := positive("hidden_size", c.HiddenSize, "intermediate_size", c.IntermediateSize,
		"num_hidden_layers", c.NumHiddenLayers, "num_attention_heads", c.NumAttentionHeads,
		"num_key_value_heads", kvHeads, "head_dim", headDim, "vocab_size", c.VocabSize,
		"max_position_embeddings", maxPos, "rms_norm_eps", eps); err != nil {
		return nil, err
	}
	if c.NumAttentionHeads%kvHeads != 0 {
		return nil, configErr("num_key_value_heads", fmt.Sprintf(
			"(%d) must divide num_attention_heads (%d)", kvHeads, c.NumAttentionHeads))
	}
	if headDim%2 != 0 {
		return nil, configErr("head_dim", fmt.Sprintf("must be even for RoPE, got %d", headDim))
	}
	if act := or(c.HiddenAct, "silu"); act != "silu" && act != "swish" {
		return nil, fmt.Errorf("export: %s: hidden_act %q is not supported for %s (want silu): %w",
			configFile, act, modelType, ErrUnsupported)
	}

	// RoPE: rope_parameters (newer) or rope_theta with rope_scaling.
	theta, scaling, key := or(c.RopeTheta, 10000.0), c.RopeScaling, "rope_scaling"
	if c.RopeParameters != nil {
		scaling, key = c.RopeParameters, "rope_parameters"
		if c.RopeParameters.RopeTheta != nil {
			theta = *c.RopeParameters.RopeTheta
		}
	}
	if err := positive("rope_theta", theta); err != nil {
		return nil, err
	}
	inv, err := ropeInvFreq(theta, headDim, scaling, key)
	if err != nil {
		return nil, err
	}

	windows, err := llamaWindows(&c, modelType, def.slidingWindow, def.maxWindowLayers)
	if err != nil {
		return nil, err
	}
	tied := or(c.TieWordEmbeddings, false)
	flags := map[string]bool{
		"untied":   !tied,
		"qkv_bias": modelType == "qwen2" || (modelType == "llama" && c.AttentionBias),
		"o_bias":   modelType == "llama" && c.AttentionBias,
		"mlp_bias": modelType == "llama" && c.MLPBias,
	}
	m := Manifest{
		Family: "llama", ModelType: modelType, Architecture: arch,
		NumLayers: c.NumHiddenLayers, HiddenSize: c.HiddenSize,
		IntermediateSize: c.IntermediateSize, NumHeads: c.NumAttentionHeads,
		NumKVHeads: kvHeads, HeadDim: headDim, VocabSize: c.VocabSize, MaxPositions: maxPos,
		SlidingWindow: slices.Max(windows), TiedEmbeddings: tied,
	}
	return &llamaModel{m: m, eps: eps, invFreq: inv, windows: windows, flags: flags}, nil
}

// llamaWindows returns each layer's sliding window (0: full attention). mistral applies
// sliding_window to every layer; qwen2 only with use_sliding_window, from layer
// max_window_layers on; layer_types, when present, says per layer.
func llamaWindows(c *llamaConfig, modelType string, defWindow, defMaxLayers int) ([]int, error) {
	windows := make([]int, c.NumHiddenLayers)
	if modelType == "llama" {
		return windows, nil
	}
	window := defWindow
	if c.SlidingWindow != nil {
		window = *c.SlidingWindow
	}
	if window < 0 {
		return nil, configErr("sliding_window", fmt.Sprintf("must not be negative, got %d", window))
	}
	if c.LayerTypes != nil {
		if len(c.LayerTypes) != c.NumHiddenLayers {
			return nil, configErr("layer_types", fmt.Sprintf("has %d entries, want %d",
				len(c.LayerTypes), c.NumHiddenLayers))
		}
		for i, t := range c.LayerTypes {
			switch t {
			case "sliding_attention":
				windows[i] = window
			case "full_attention":
			default:
				return nil, configErr("layer_types", fmt.Sprintf("entry %d is %q", i, t))
			}
		}
		return windows, nil
	}
	first := 0
	// TODO: qwen2's sliding-window path (use_sliding_window, from layer max_window_layers
	// on, as current transformers does) has no reference fixture yet.
	if modelType == "qwen2" {
		if !c.UseSlidingWindow {
			return windows, nil
		}
		first = or(c.MaxWindowLayers, defMaxLayers)
	}
	if c.SlidingWindow == nil && window > 0 {
		slog.Debug("export: sliding_window not in config.json; using the default",
			"model_type", modelType, "sliding_window", window)
	}
	for i := first; i < len(windows); i++ {
		windows[i] = window
	}
	return windows, nil
}

func (l *llamaModel) manifest() Manifest { return l.m }

// build emits the decoder: embedding Gather, then per layer
//
//	x = x + o_proj(attention(rope(q_proj(n)), rope(k_proj(n)), v_proj(n))), n = rms(x)
//	x = x + down_proj(silu(gate_proj(n)) · up_proj(n)),                    n = rms(x)
//
// then the final RMSNorm and the head (lm_head, or the transposed embedding when tied).
// The embedding lookup is https://onnx.ai/onnx/operators/onnx__Gather.html.
func (l *llamaModel) build(g *gb, p *weightPlan, withPast bool) error {
	m := l.m
	dims := map[string]int64{
		"hidden_size": int64(m.HiddenSize), "vocab_size": int64(m.VocabSize),
		"intermediate_size": int64(m.IntermediateSize),
		"heads*head_dim":    int64(m.NumHeads * m.HeadDim),
		"kv_heads*head_dim": int64(m.NumKVHeads * m.HeadDim),
	}
	top, err := p.load("", llamaTopTensors, dims, l.flags)
	if err != nil {
		return err
	}
	in := g.declareInputs(m.NumLayers, m.NumKVHeads, m.HeadDim, withPast)
	rope := g.rope(in.pos, l.invFreq)
	prev := g.Scope("model.embed_tokens")
	x := g.Op("Gather", top["model.embed_tokens.weight"], in.ids) // (batch, seq, hidden)
	g.Scope(prev)

	var presents []string
	for i := range m.NumLayers {
		prefix := fmt.Sprintf("model.layers.%d.", i)
		prev := g.Scope(strings.TrimSuffix(prefix, "."))
		w, err := p.load(prefix, llamaLayerTensors, dims, l.flags)
		if err != nil {
			return err
		}
		n := g.rmsNorm(x, w["input_layernorm.weight"], l.eps)
		q := g.module(n, w, prefix, "self_attn.q_proj") // (batch, seq, heads·head_dim)
		k := g.module(n, w, prefix, "self_attn.k_proj") // (batch, seq, kv_heads·head_dim)
		v := g.module(n, w, prefix, "self_attn.v_proj")
		spec := attnSpec{heads: m.NumHeads, kvHeads: m.NumKVHeads, headDim: m.HeadDim,
			scale: float32(1 / math.Sqrt(float64(m.HeadDim))), rope: rope,
			allowed: g.allowedMask(in, l.windows[i])}
		if withPast {
			spec.pastK, spec.pastV = in.past[2*i], in.past[2*i+1]
		}
		a, key, value := g.attention(q, k, v, spec)
		presents = append(presents, key, value)
		x = g.Op("Add", x, g.module(a, w, prefix, "self_attn.o_proj"))

		n = g.rmsNorm(x, w["post_attention_layernorm.weight"], l.eps)
		gate := g.silu(g.module(n, w, prefix, "mlp.gate_proj")) // (batch, seq, intermediate)
		up := g.module(n, w, prefix, "mlp.up_proj")
		x = g.Op("Add", x, g.module(g.Op("Mul", gate, up), w, prefix, "mlp.down_proj"))
		g.Scope(prev)
	}

	g.Scope("model.norm")
	x = g.rmsNorm(x, top["model.norm.weight"], l.eps)
	g.hidden = x // (batch, seq, hidden)
	g.Scope("lm_head")
	head, ok := top["lm_head.weight"] // (hidden, vocab)
	if !ok {
		head = g.transpose(top["model.embed_tokens.weight"], 1, 0)
	}
	logits := g.Op("MatMul", x, head) // (batch, seq, vocab)
	g.Scope(prev)
	if !withPast {
		presents = nil
	}
	g.finish(logits, m.VocabSize, presents, m.NumKVHeads, m.HeadDim)
	return nil
}

// or returns *p, or def when p is nil.
func or[T any](p *T, def T) T {
	if p == nil {
		return def
	}
	return *p
}
