package export

import (
	"fmt"
	"math"
	"strings"

	"github.com/panacea-go/toolkit/graphs"
)

// gpt2Config is config.json of GPT-2, with Hugging Face's key names.
type gpt2Config struct {
	NEmbd                      int      `json:"n_embd"`
	NLayer                     int      `json:"n_layer"`
	NHead                      int      `json:"n_head"`
	NPositions                 *int     `json:"n_positions"` // default 1024
	NInner                     *int     `json:"n_inner"`     // default 4·n_embd
	VocabSize                  int      `json:"vocab_size"`
	LayerNormEpsilon           *float64 `json:"layer_norm_epsilon"`  // default 1e-5
	ActivationFunction         *string  `json:"activation_function"` // default gelu_new
	ScaleAttnWeights           *bool    `json:"scale_attn_weights"`  // default true
	ScaleAttnByInverseLayerIdx bool     `json:"scale_attn_by_inverse_layer_idx"`
	TieWordEmbeddings          *bool    `json:"tie_word_embeddings"` // default true
}

// gpt2Activations maps activation_function values to the MLP activation they select.
var gpt2Activations = map[string]func(g *gb, x string) string{
	"gelu_new":          (*gb).geluTanh,
	"gelu_pytorch_tanh": (*gb).geluTanh,
	"gelu_fast":         (*gb).geluTanh,
	"gelu":              (*gb).geluErf,
}

// gpt2TopTensors maps the model-level tensors to graph values (canonical names, with the
// "transformer." prefix that current save_pretrained writes; older checkpoints without it
// are renamed on load).
var gpt2TopTensors = []tensorSpec{
	{"transformer.wte.weight", "vocab_size, n_embd", asIs, ""},
	{"transformer.wpe.weight", "n_positions, n_embd", asIs, ""},
	{"transformer.ln_f.weight", "n_embd", asIs, ""},
	{"transformer.ln_f.bias", "n_embd", asIs, ""},
	{"lm_head.weight", "vocab_size, n_embd", transposed, "untied"},
}

// gpt2LayerTensors maps one block's tensors (prefix "transformer.h.N."). Conv1D weights
// are already (in, out), so they are stored as they are; c_attn holds q, k, v.
var gpt2LayerTensors = []tensorSpec{
	{"ln_1.weight", "n_embd", asIs, ""},
	{"ln_1.bias", "n_embd", asIs, ""},
	{"attn.c_attn.weight", "n_embd, 3*n_embd", asIs, ""},
	{"attn.c_attn.bias", "3*n_embd", asIs, ""},
	{"attn.c_proj.weight", "n_embd, n_embd", asIs, ""},
	{"attn.c_proj.bias", "n_embd", asIs, ""},
	{"ln_2.weight", "n_embd", asIs, ""},
	{"ln_2.bias", "n_embd", asIs, ""},
	{"mlp.c_fc.weight", "n_embd, n_inner", asIs, ""},
	{"mlp.c_fc.bias", "n_inner", asIs, ""},
	{"mlp.c_proj.weight", "n_inner, n_embd", asIs, ""},
	{"mlp.c_proj.bias", "n_embd", asIs, ""},
}

// gpt2Prefix is the prefix of GPT2LMHeadModel's transformer tensors.
const gpt2Prefix = "transformer."

// gpt2Model is a validated GPT-2 configuration.
type gpt2Model struct {
	m          Manifest
	eps        float64
	act        func(g *gb, x string) string
	scale      bool // divide scores by √head_dim
	byLayerIdx bool // also divide by layer index + 1
	flags      map[string]bool
}

// newGPT2 validates config.json for gpt2.
func newGPT2(cfg *rawConfig, arch, modelType string) (*gpt2Model, error) {
	if err := cfg.require("n_embd", "n_layer", "n_head", "vocab_size"); err != nil {
		return nil, err
	}
	var c gpt2Config
	if err := cfg.decode(&c); err != nil {
		return nil, err
	}
	positions := or(c.NPositions, 1024)
	inner := or(c.NInner, 4*c.NEmbd)
	eps := or(c.LayerNormEpsilon, 1e-5)
	if err := positive("n_embd", c.NEmbd, "n_layer", c.NLayer, "n_head", c.NHead,
		"vocab_size", c.VocabSize, "n_positions", positions, "n_inner", inner,
		"layer_norm_epsilon", eps); err != nil {
		return nil, err
	}
	if c.NEmbd%c.NHead != 0 {
		return nil, configErr("n_head", fmt.Sprintf("(%d) must divide n_embd (%d)", c.NHead, c.NEmbd))
	}
	actName := or(c.ActivationFunction, "gelu_new")
	act, ok := gpt2Activations[actName]
	if !ok {
		return nil, fmt.Errorf("export: %s: activation_function %q is not supported "+
			"(supported: gelu_new, gelu_pytorch_tanh, gelu_fast, gelu): %w",
			configFile, actName, ErrUnsupported)
	}
	tied := or(c.TieWordEmbeddings, true)
	m := Manifest{
		Family: "gpt2", ModelType: modelType, Architecture: arch,
		NumLayers: c.NLayer, HiddenSize: c.NEmbd, IntermediateSize: inner,
		NumHeads: c.NHead, NumKVHeads: c.NHead, HeadDim: c.NEmbd / c.NHead,
		VocabSize: c.VocabSize, MaxPositions: positions, TiedEmbeddings: tied,
	}
	return &gpt2Model{m: m, eps: eps, act: act, scale: or(c.ScaleAttnWeights, true),
		byLayerIdx: c.ScaleAttnByInverseLayerIdx, flags: map[string]bool{"untied": !tied}}, nil
}

func (t *gpt2Model) manifest() Manifest { return t.m }

// build emits GPT-2: token plus learned position embeddings, then per block
//
//	x = x + c_proj(attention(split(c_attn(ln_1(x)))))
//	x = x + mlp.c_proj(act(c_fc(ln_2(x))))
//
// then ln_f and the head (the transposed token embedding when tied). Both embedding
// lookups are https://onnx.ai/onnx/operators/onnx__Gather.html.
func (t *gpt2Model) build(g *gb, p *weightPlan, withPast bool) error {
	m := t.m
	if !p.src.Has(gpt2Prefix+"wte.weight") && p.src.Has("wte.weight") {
		// Older checkpoints name the transformer's tensors without the prefix.
		p.rename = func(name string) string { return strings.TrimPrefix(name, gpt2Prefix) }
	}
	dims := map[string]int64{
		"n_embd": int64(m.HiddenSize), "vocab_size": int64(m.VocabSize),
		"n_positions": int64(m.MaxPositions), "n_inner": int64(m.IntermediateSize),
		"3*n_embd": int64(3 * m.HiddenSize),
	}
	top, err := p.load("", gpt2TopTensors, dims, t.flags)
	if err != nil {
		return err
	}
	in := g.declareInputs(m.NumLayers, m.NumKVHeads, m.HeadDim, withPast)
	prev := g.Scope("transformer.wte")
	tok := g.Op("Gather", top["transformer.wte.weight"], in.ids) // (batch, seq, n_embd)
	x := g.Op("Add", tok, g.Op("Gather", top["transformer.wpe.weight"], in.pos))
	g.Scope(prev)
	allowed := g.allowedMask(in, 0)

	var presents []string
	for i := range m.NumLayers {
		prefix := fmt.Sprintf("transformer.h.%d.", i)
		prev := g.Scope(strings.TrimSuffix(prefix, "."))
		w, err := p.load(prefix, gpt2LayerTensors, dims, t.flags)
		if err != nil {
			return err
		}
		scale := 1.0
		if t.scale {
			scale /= math.Sqrt(float64(m.HeadDim))
		}
		if t.byLayerIdx {
			scale /= float64(i + 1)
		}
		n := g.layerNorm(x, w["ln_1.weight"], w["ln_1.bias"], t.eps)
		qkv := g.module(n, w, prefix, "attn.c_attn") // (batch, seq, 3·hidden)
		// q, k, v in that order: https://onnx.ai/onnx/operators/onnx__Split.html
		parts := g.NodeN("Split", []string{qkv}, 3, graphs.AttrInt("axis", -1),
			graphs.AttrInt("num_outputs", 3))
		spec := attnSpec{heads: m.NumHeads, kvHeads: m.NumHeads, headDim: m.HeadDim,
			scale: float32(scale), allowed: allowed}
		if withPast {
			spec.pastK, spec.pastV = in.past[2*i], in.past[2*i+1]
		}
		a, key, value := g.attention(parts[0], parts[1], parts[2], spec)
		presents = append(presents, key, value)
		x = g.Op("Add", x, g.module(a, w, prefix, "attn.c_proj"))

		n = g.layerNorm(x, w["ln_2.weight"], w["ln_2.bias"], t.eps)
		h := t.act(g, g.module(n, w, prefix, "mlp.c_fc")) // (batch, seq, inner)
		x = g.Op("Add", x, g.module(h, w, prefix, "mlp.c_proj"))
		g.Scope(prev)
	}

	g.Scope("transformer.ln_f")
	x = g.layerNorm(x, top["transformer.ln_f.weight"], top["transformer.ln_f.bias"], t.eps)
	g.hidden = x // (batch, seq, n_embd)
	g.Scope("lm_head")
	head, ok := top["lm_head.weight"] // (n_embd, vocab)
	if !ok {
		head = g.transpose(top["transformer.wte.weight"], 1, 0)
	}
	logits := g.Op("MatMul", x, head) // (batch, seq, vocab)
	g.Scope(prev)
	if !withPast {
		presents = nil
	}
	g.finish(logits, m.VocabSize, presents, m.NumKVHeads, m.HeadDim)
	return nil
}
