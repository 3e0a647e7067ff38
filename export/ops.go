package export

import (
	"math"
	"strconv"

	"github.com/panacea-go/toolkit/graphs"
)

// gb wraps the graph builder with the layer helpers the families share. Every helper emits
// ordinary ONNX operators only (each links the operator pages it uses), so that the graph
// can be differentiated by the toolkit's own autodiff.
type gb struct {
	*graphs.Builder
	floats map[float32]string // cached float32 scalar constants
	ints   map[string]string  // cached int64 vector constants
	// hidden is the final-norm output (batch, seq, hidden) that feeds the LM head; each
	// family's build sets it, and Options.Hidden exposes it as the hidden_states output.
	hidden string
}

func newGB(name string) *gb {
	return &gb{Builder: graphs.NewBuilder(name), floats: map[float32]string{},
		ints: map[string]string{}}
}

// f32 returns a float32 scalar constant (one initializer per distinct value).
func (g *gb) f32(v float32) string {
	if name, ok := g.floats[v]; ok {
		return name
	}
	prev := g.Scope("")
	name := g.Initializer(graphs.FloatTensor(g.Unique("const_f32"), nil, []float32{v}))
	g.Scope(prev)
	g.floats[v] = name
	return name
}

// i64s returns a 1-D int64 constant (one initializer per distinct vector).
func (g *gb) i64s(v ...int64) string {
	key := ""
	for _, x := range v {
		key += strconv.FormatInt(x, 10) + ","
	}
	if name, ok := g.ints[key]; ok {
		return name
	}
	prev := g.Scope("")
	name := g.ConstInt64(v...)
	g.Scope(prev)
	g.ints[key] = name
	return name
}

// linear is y = x·W (+ b): https://onnx.ai/onnx/operators/onnx__MatMul.html and
// https://onnx.ai/onnx/operators/onnx__Add.html. w is (in, out); bias (out) may be "".
// The MatMul's second input is w itself, which the SVD-LoRA pass relies on.
func (g *gb) linear(x, w, bias string) string {
	y := g.Op("MatMul", x, w)
	if bias != "" {
		y = g.Op("Add", y, bias)
	}
	return y
}

// module applies the linear layer module (HF module path, e.g.
// "model.layers.0.self_attn.q_proj") whose weight and optional bias are w[suffix+".weight"]
// and w[suffix+".bias"], where suffix is module without the layer prefix. Its nodes are
// named under the module path, e.g. "model.layers.0.self_attn.q_proj/MatMul".
func (g *gb) module(x string, w map[string]string, prefix, suffix string) string {
	prev := g.Scope(prefix + suffix)
	defer g.Scope(prev)
	return g.linear(x, w[suffix+".weight"], w[suffix+".bias"])
}

// rmsNorm is x · 1/sqrt(mean(x², last axis) + eps) · w, decomposed into
// https://onnx.ai/onnx/operators/onnx__Mul.html,
// https://onnx.ai/onnx/operators/onnx__ReduceMean.html,
// https://onnx.ai/onnx/operators/onnx__Sqrt.html and
// https://onnx.ai/onnx/operators/onnx__Reciprocal.html.
// x (…, hidden), w (hidden).
func (g *gb) rmsNorm(x, w string, eps float64) string {
	ms := g.Node("ReduceMean", []string{g.Op("Mul", x, x), g.i64s(-1)},
		graphs.AttrInt("keepdims", 1)) // (…, 1)
	inv := g.Op("Reciprocal", g.Op("Sqrt", g.Op("Add", ms, g.f32(float32(eps)))))
	return g.Op("Mul", g.Op("Mul", x, inv), w)
}

// layerNorm normalises the last axis with scale w and bias b:
// https://onnx.ai/onnx/operators/onnx__LayerNormalization.html.
func (g *gb) layerNorm(x, w, b string, eps float64) string {
	return g.Node("LayerNormalization", []string{x, w, b}, graphs.AttrInt("axis", -1),
		graphs.AttrFloat("epsilon", float32(eps)))
}

// silu is x·sigmoid(x): https://onnx.ai/onnx/operators/onnx__Sigmoid.html.
func (g *gb) silu(x string) string { return g.Op("Mul", x, g.Op("Sigmoid", x)) }

// geluTanh is 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))), GPT-2's "gelu_new":
// https://onnx.ai/onnx/operators/onnx__Tanh.html.
func (g *gb) geluTanh(x string) string {
	x3 := g.Op("Mul", x, g.Op("Mul", x, x))
	inner := g.Op("Add", x, g.Op("Mul", x3, g.f32(0.044715)))
	t := g.Op("Tanh", g.Op("Mul", inner, g.f32(float32(math.Sqrt(2/math.Pi)))))
	return g.Op("Mul", g.Op("Mul", x, g.f32(0.5)), g.Op("Add", t, g.f32(1)))
}

// geluErf is 0.5·x·(1 + erf(x/√2)): https://onnx.ai/onnx/operators/onnx__Erf.html.
func (g *gb) geluErf(x string) string {
	e := g.Op("Erf", g.Op("Mul", x, g.f32(float32(1/math.Sqrt2))))
	return g.Op("Mul", g.Op("Mul", x, g.f32(0.5)), g.Op("Add", e, g.f32(1)))
}

// reshape: https://onnx.ai/onnx/operators/onnx__Reshape.html (0 copies the input's
// dimension, -1 is inferred).
func (g *gb) reshape(x string, shape ...int64) string {
	return g.Op("Reshape", x, g.i64s(shape...))
}

// transpose: https://onnx.ai/onnx/operators/onnx__Transpose.html.
func (g *gb) transpose(x string, perm ...int64) string {
	return g.Node("Transpose", []string{x}, graphs.AttrInts("perm", perm...))
}

// unsqueeze: https://onnx.ai/onnx/operators/onnx__Unsqueeze.html.
func (g *gb) unsqueeze(x string, axes ...int64) string {
	return g.Op("Unsqueeze", x, g.i64s(axes...))
}

// dim returns dimension axis of x as a 1-D int64 tensor of one element:
// https://onnx.ai/onnx/operators/onnx__Shape.html.
func (g *gb) dim(x string, axis int64) string {
	return g.Node("Shape", []string{x}, graphs.AttrInt("start", axis),
		graphs.AttrInt("end", axis+1))
}

// rotary applies RoPE as rotate-half: x·cos + rotate_half(x)·sin, where rotate_half splits
// the last axis in two halves (x1, x2) and returns (−x2, x1):
// https://onnx.ai/onnx/operators/onnx__Split.html,
// https://onnx.ai/onnx/operators/onnx__Neg.html and
// https://onnx.ai/onnx/operators/onnx__Concat.html.
// cos and sin broadcast against x (…, head_dim).
func (g *gb) rotary(x, cos, sin string) string {
	halves := g.NodeN("Split", []string{x}, 2, graphs.AttrInt("axis", -1),
		graphs.AttrInt("num_outputs", 2))
	rot := g.Node("Concat", []string{g.Op("Neg", halves[1]), halves[0]},
		graphs.AttrInt("axis", -1))
	return g.Op("Add", g.Op("Mul", x, cos), g.Op("Mul", rot, sin))
}
