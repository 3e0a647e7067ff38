package export

import (
	"fmt"
	"math"

	"github.com/panacea-go/toolkit/graphs"
)

// maskValue is added to the scores of masked keys before the Softmax: their weights become
// exactly 0, and a fully masked row (a padded query) gets a uniform distribution instead of
// NaNs (every score rounds to maskValue).
const maskValue = -math.MaxFloat32

// graphInputs holds the graph inputs and the values derived from them once per model.
type graphInputs struct {
	ids, mask string         // input_ids (batch, seq), attention_mask (batch, total), int64
	past      []string       // per layer key, value (batch, kv_heads, past, head_dim); nil without past
	pos       string         // position ids (batch, seq) int64
	qidx      string         // (seq) int64: absolute index past+i of each query
	kidx      string         // (total) int64: index j of each key
	keep      string         // (batch, 1, 1, 1, total) bool: key j is not padding
	allowed   map[int]string // window → additive mask, see allowedMask
}

// declareInputs adds input_ids, attention_mask and (withPast) the past key/value inputs,
// and derives position ids and the key indices.
//
// Position ids are cumsum(mask) − 1 clamped at 0, last seq entries:
// https://onnx.ai/onnx/operators/onnx__CumSum.html,
// https://onnx.ai/onnx/operators/onnx__Sub.html,
// https://onnx.ai/onnx/operators/onnx__Max.html,
// https://onnx.ai/onnx/operators/onnx__Neg.html and
// https://onnx.ai/onnx/operators/onnx__Slice.html; the indices use
// https://onnx.ai/onnx/operators/onnx__Squeeze.html and
// https://onnx.ai/onnx/operators/onnx__Range.html, the padding flags
// https://onnx.ai/onnx/operators/onnx__Cast.html.
func (g *gb) declareInputs(layers, kvHeads, headDim int, withPast bool) *graphInputs {
	in := &graphInputs{allowed: map[int]string{}}
	in.ids = g.Input(InputIDs, graphs.Int64, "batch", "seq")
	// Without a KV cache the mask covers exactly the input ids: naming its length "seq" too
	// lets shape inference (and so the backward pass) see that the scores and the additive
	// mask have one shape.
	maskLen := "seq"
	if withPast {
		maskLen = "total"
	}
	in.mask = g.Input(AttentionMask, graphs.Int64, "batch", maskLen)
	if !withPast {
		// A mask of another length would broadcast (length 1) or fail deep inside the
		// graph; this Reshape to input_ids' shape makes it fail here, under a name that
		// says why. https://onnx.ai/onnx/operators/onnx__Reshape.html
		prev := g.Scope("attention_mask_must_match_input_ids")
		in.mask = g.Op("Reshape", in.mask, g.Op("Shape", in.ids))
		g.Scope(prev)
	}
	if withPast {
		for i := range layers {
			for _, kind := range []string{"key", "value"} {
				in.past = append(in.past, g.Input(fmt.Sprintf("past_key_values.%d.%s", i, kind),
					graphs.Float, "batch", kvHeads, "past", headDim))
			}
		}
	}
	prev := g.Scope("positions")
	defer g.Scope(prev)

	seq := g.dim(in.ids, 1)    // (1)
	total := g.dim(in.mask, 1) // (1)
	cum := g.Op("CumSum", in.mask, g.ScalarInt64(1))
	cum = g.Op("Max", g.Op("Sub", cum, g.ScalarInt64(1)), g.ScalarInt64(0)) // (batch, total)
	in.pos = g.Op("Slice", cum, g.Op("Neg", seq), g.i64s(math.MaxInt64), g.i64s(1))

	scalar := func(x string) string { return g.Op("Squeeze", x, g.i64s(0)) }
	in.kidx = g.Op("Range", g.ScalarInt64(0), scalar(total), g.ScalarInt64(1))
	in.qidx = in.kidx // no past: query i is key i
	if withPast {
		past := g.Op("Sub", total, seq)
		in.qidx = g.Op("Range", scalar(past), scalar(total), g.ScalarInt64(1))
	}
	keep := g.Node("Cast", []string{in.mask}, graphs.AttrInt("to", int64(graphs.Bool)))
	in.keep = g.unsqueeze(keep, 1, 2, 3)
	return in
}

// allowedMask returns the additive mask (batch, 1, 1, seq, total), float: 0 where query i
// may attend key j (not padding, j ≤ i and, when window > 0, i − j < window), maskValue
// elsewhere. One mask per window size is built and shared by the layers. The scores take
// it by an Add rather than a Where, so that the backward pass of each layer has nothing to
// do for it (the gradient of an Add passes through):
// https://onnx.ai/onnx/operators/onnx__LessOrEqual.html,
// https://onnx.ai/onnx/operators/onnx__Less.html,
// https://onnx.ai/onnx/operators/onnx__And.html and
// https://onnx.ai/onnx/operators/onnx__Where.html.
func (g *gb) allowedMask(in *graphInputs, window int) string {
	if m, ok := in.allowed[window]; ok {
		return m
	}
	prev := g.Scope(fmt.Sprintf("mask_w%d", window))
	defer g.Scope(prev)
	q := g.unsqueeze(in.qidx, 1) // (seq, 1)
	k := g.unsqueeze(in.kidx, 0) // (1, total)
	ok := g.Op("LessOrEqual", k, q)
	if window > 0 {
		near := g.Op("Less", g.Op("Sub", q, k), g.ScalarInt64(int64(window)))
		ok = g.Op("And", ok, near)
	}
	m := g.Op("And", in.keep, ok)                    // (batch, 1, 1, seq, total)
	m = g.Op("Where", m, g.f32(0), g.f32(maskValue)) // float
	in.allowed[window] = m
	return m
}

// ropeTables holds cos and sin of the rotary angles for the query layout
// (batch, 1, 1, seq, head_dim) and the key layout (batch, 1, seq, head_dim).
type ropeTables struct {
	cosQ, sinQ, cosK, sinK string
}

// rope builds the rotary tables from the position ids and inv_freq (head_dim/2, already
// scaled): angles = float(pos) · inv_freq (https://onnx.ai/onnx/operators/onnx__Cast.html),
// duplicated to head_dim, then https://onnx.ai/onnx/operators/onnx__Cos.html and
// https://onnx.ai/onnx/operators/onnx__Sin.html.
func (g *gb) rope(pos string, invFreq []float32) *ropeTables {
	prev := g.Scope("rope")
	defer g.Scope(prev)
	inv := g.Initializer(graphs.FloatTensor("rope.inv_freq", []int64{int64(len(invFreq))}, invFreq))
	p := g.Node("Cast", []string{pos}, graphs.AttrInt("to", int64(graphs.Float)))
	freqs := g.Op("Mul", g.unsqueeze(p, 2), inv) // (batch, seq, head_dim/2)
	emb := g.Node("Concat", []string{freqs, freqs}, graphs.AttrInt("axis", -1))
	cos, sin := g.Op("Cos", emb), g.Op("Sin", emb) // (batch, seq, head_dim)
	return &ropeTables{
		cosQ: g.unsqueeze(cos, 1, 2), sinQ: g.unsqueeze(sin, 1, 2),
		cosK: g.unsqueeze(cos, 1), sinK: g.unsqueeze(sin, 1),
	}
}

// attnSpec describes one attention block.
type attnSpec struct {
	heads, kvHeads, headDim int
	scale                   float32 // multiplies q·kᵀ
	rope                    *ropeTables
	allowed                 string // from allowedMask
	pastK, pastV            string // "" without a KV cache
}

// attention computes softmax(q·kᵀ·scale + mask)·v for q (batch, seq, heads·head_dim) and
// k, v (batch, seq, kv_heads·head_dim), and returns the output (batch, seq,
// heads·head_dim) with the full keys and values (batch, kv_heads, total, head_dim) for the
// present outputs.
//
// GQA needs no copies: q is viewed as (batch, kv_heads, group, seq, head_dim) and k, v as
// (batch, kv_heads, 1, total, head_dim), and MatMul broadcasts over the group axis; query
// head h uses kv head h / group, as in Hugging Face's repeat_kv. Operators:
// https://onnx.ai/onnx/operators/onnx__MatMul.html,
// https://onnx.ai/onnx/operators/onnx__Add.html and
// https://onnx.ai/onnx/operators/onnx__Softmax.html.
func (g *gb) attention(q, k, v string, s attnSpec) (out, key, value string) {
	group := int64(s.heads / s.kvHeads)
	kvh, hd := int64(s.kvHeads), int64(s.headDim)

	q = g.transpose(g.reshape(q, 0, 0, kvh, group, hd), 0, 2, 3, 1, 4) // (b, kvh, group, seq, hd)
	k = g.transpose(g.reshape(k, 0, 0, kvh, hd), 0, 2, 1, 3)           // (b, kvh, seq, hd)
	v = g.transpose(g.reshape(v, 0, 0, kvh, hd), 0, 2, 1, 3)           // (b, kvh, seq, hd)
	if s.rope != nil {
		q = g.rotary(q, s.rope.cosQ, s.rope.sinQ)
		k = g.rotary(k, s.rope.cosK, s.rope.sinK)
	}
	// TODO: with a sliding window the present cache still keeps every key (the mask hides
	// the old ones); a rolling cache would bound memory in long generations.
	if s.pastK != "" {
		k = g.Node("Concat", []string{s.pastK, k}, graphs.AttrInt("axis", 2)) // (b, kvh, total, hd)
		v = g.Node("Concat", []string{s.pastV, v}, graphs.AttrInt("axis", 2))
	}
	k5 := g.unsqueeze(k, 2) // (b, kvh, 1, total, hd)
	v5 := g.unsqueeze(v, 2)

	scores := g.Op("MatMul", q, g.transpose(k5, 0, 1, 2, 4, 3)) // (b, kvh, group, seq, total)
	scores = g.Op("Mul", scores, g.f32(s.scale))
	scores = g.Op("Add", scores, s.allowed)
	probs := g.Node("Softmax", []string{scores}, graphs.AttrInt("axis", -1))
	o := g.Op("MatMul", probs, v5)                     // (b, kvh, group, seq, hd)
	o = g.transpose(o, 0, 3, 1, 2, 4)                  // (b, seq, kvh, group, hd)
	return g.reshape(o, 0, 0, int64(s.heads)*hd), k, v // (b, seq, heads·hd)
}

// finish adds the logits output (batch, seq, vocab) and, with past, the present outputs;
// the builder names each through an https://onnx.ai/onnx/operators/onnx__Identity.html.
func (g *gb) finish(logits string, vocab int, presents []string, kvHeads, headDim int) {
	g.Output(logits, Logits, graphs.Float, "batch", "seq", vocab)
	for i, p := range presents {
		kind := "key"
		if i%2 == 1 {
			kind = "value"
		}
		g.Output(p, fmt.Sprintf("present.%d.%s", i/2, kind), graphs.Float,
			"batch", kvHeads, "total", headDim)
	}
}
