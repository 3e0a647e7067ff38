package autodiff

import (
	"fmt"

	"github.com/panacea-go/toolkit/graphs"
	"github.com/panacea-go/toolkit/graphs/onnxpb"
	"github.com/panacea-go/toolkit/graphs/passes"
)

// reduction describes the axes of a Reduce* node for its rule.
type reduction struct {
	axes  string // 1-D int64 value with the axes, or "" for all axes
	keep  bool
	noop  bool // the node reduces nothing (empty axes with noop_with_empty_axes)
	count string
}

// readReduction reads a Reduce* node's axes (attribute in older opsets, input 1 in newer)
// and keepdims.
func (c *Ctx) readReduction(n *onnxpb.NodeProto) reduction {
	r := reduction{keep: passes.AttrInt(n, "keepdims", 1) != 0}
	if v, ok := passes.AttrInts(n, "axes"); ok {
		if len(v) > 0 {
			r.axes = c.Ints(v...)
		}
	} else if in := passes.Input(n, 1); in != "" {
		if v, ok := c.info.Ints(in); !ok || len(v) > 0 {
			// TODO: axes given at run time that turn out empty are not treated as a no-op.
			r.axes = c.X(1)
		}
	}
	r.noop = r.axes == "" && passes.AttrInt(n, "noop_with_empty_axes", 0) != 0
	return r
}

// keepDims returns v (shaped like the reduced output) with the reduced axes restored as
// size-1 axes, so that it broadcasts against the input.
func (c *Ctx) keepDims(v string, r reduction) string {
	if r.keep || r.axes == "" {
		return v // all axes reduced without keepdims gives a scalar, which broadcasts
	}
	return c.Op("Unsqueeze", v, r.axes)
}

// reduceRule handles the Reduce* family; ḡ is the output cotangent with the reduced axes
// kept (size 1), broadcast back over the input:
//
//	ReduceSum:        dx = ḡ
//	ReduceMean:       dx = ḡ/N, N the number of reduced elements
//	ReduceMax/Min:    dx = ḡ·[x = ȳ]/#{x = ȳ} (ties share the cotangent)
//	ReduceSumSquare:  dx = 2·x·ḡ
//	ReduceL2:         dx = ḡ·x/ȳ
//	ReduceLogSumExp:  dx = ḡ·e^(x − ȳ)
//
// https://onnx.ai/onnx/operators/onnx__ReduceSum.html (and ReduceMean, ReduceMax, ReduceMin,
// ReduceSumSquare, ReduceL2, ReduceLogSumExp)
func reduceRule(c *Ctx, n *onnxpb.NodeProto, dy []string) ([]string, error) {
	x := c.X(0)
	r := c.readReduction(n)
	if r.noop {
		return []string{dy[0]}, nil
	}
	g := c.keepDims(dy[0], r)
	var dx string
	switch op := n.GetOpType(); op {
	case "ReduceSum":
		dx = c.Op("Expand", g, c.ShapeOf(x))
	case "ReduceMean":
		dx = c.Op("Expand", c.Op("Div", g, c.countRatio(x, c.Y(0))), c.ShapeOf(x))
	case "ReduceMax", "ReduceMin":
		y := c.keepDims(c.Y(0), r)
		mask := c.Node("Cast", []string{c.Op("Equal", x, y)},
			graphs.AttrInt("to", int64(c.info.Elem(x))))
		var count string
		if r.axes == "" {
			count = c.Node("ReduceSum", []string{mask}, graphs.AttrInt("keepdims", 1))
		} else {
			count = c.ReduceSum(mask, r.axes, true)
		}
		dx = c.Op("Mul", mask, c.Op("Div", g, count))
	case "ReduceSumSquare":
		dx = c.Op("Mul", c.Op("Mul", x, c.Scalar(2, x)), g)
	case "ReduceL2":
		dx = c.Op("Mul", x, c.Op("Div", g, c.keepDims(c.Y(0), r)))
	case "ReduceLogSumExp":
		dx = c.Op("Mul", g, c.Op("Exp", c.Op("Sub", x, c.keepDims(c.Y(0), r))))
	default:
		return nil, fmt.Errorf("no reduction rule for %s", op)
	}
	return []string{dx}, nil
}

// countRatio returns size(x)/size(y) as a scalar of x's element type: the number of input
// elements reduced into each output element.
func (c *Ctx) countRatio(x, y string) string {
	xs, ok1 := c.info.Shape(x).Sizes()
	ys, ok2 := c.info.Shape(y).Sizes()
	if ok1 && ok2 {
		return c.Scalar(float64(graphs.NumElements(xs))/float64(graphs.NumElements(ys)), x)
	}
	ratio := c.Op("Div", c.early("Size", x), c.early("Size", y))
	return c.Node("Cast", []string{ratio}, graphs.AttrInt("to", int64(c.info.Elem(x))))
}

// softmaxRule: y = softmax(x) along axis. dx = y·(g − Σ_axis g·y).
//
// When y's only cotangent is that of a product O = y·V along the softmax axis (attention:
// probabilities times values), g = dO·Vᵀ and Σ_j g_ij·y_ij = Σ_j (dO_i·V_j)·y_ij = dO_i·O_i,
// a sum over V's columns (the head size) instead of over the keys:
//
//	dx = y·(g − Σ_last dO·O)
//
// https://onnx.ai/onnx/operators/onnx__Softmax.html
func softmaxRule(c *Ctx, n *onnxpb.NodeProto, dy []string) ([]string, error) {
	y := c.Y(0)
	axis := passes.AttrInt(n, "axis", -1)
	rank := int64(c.info.Shape(n.GetOutput()[0]).Rank())
	if axis < 0 && rank > 0 {
		axis += rank
	}
	var s string
	if p, ok := c.products[dy[0]]; ok && p.a == n.GetOutput()[0] && axis == rank-1 {
		s = c.ReduceSum(c.Op("Mul", p.g, p.y), c.Ints(-1), true)
	} else {
		s = c.ReduceSum(c.Op("Mul", dy[0], y), c.Ints(axis), true)
	}
	return []string{c.Op("Mul", y, c.Op("Sub", dy[0], s))}, nil
}

// logSoftmaxRule: y = x − log Σ_axis eˣ. dx = g − e^y·Σ_axis g.
//
// When g is the cotangent of a GatherElements along the same axis (the token loss: pick
// log p(target) from the log-probabilities), g is zero except at the picked entries, so
// Σ_axis g = Σ_axis u over the picked cotangents u alone, and the zeros are never built:
//
//	logp ─▶ GatherElements(idx) ─▶ (…, 1)  ⇒  dx = ScatterElements(−e^y·Σ_axis u, idx, u, add)
//
// That dx is recorded as a scatter too, so that a MatMul by a weight (the LM head) can
// take the picked entries straight from the weight (see matMulWeightInputGrad).
//
// https://onnx.ai/onnx/operators/onnx__LogSoftmax.html
func logSoftmaxRule(c *Ctx, n *onnxpb.NodeProto, dy []string) ([]string, error) {
	y := c.Y(0)
	axis := passes.AttrInt(n, "axis", -1)
	if r := c.info.Shape(y).Rank(); axis < 0 && r > 0 {
		axis += int64(r)
	}
	if sc, ok := c.scatters[dy[0]]; ok && sc.axis == axis && sc.base == "" {
		s := c.ReduceSum(sc.updates, c.Ints(axis), true)
		dense, scale := c.Op("Exp", y), c.Op("Neg", s)
		base := c.Op("Mul", dense, scale)
		dx := c.Node("ScatterElements", []string{base, sc.idx, sc.updates},
			graphs.AttrInt("axis", axis), graphs.AttrString("reduction", "add"))
		c.scatters[dx] = scatter{base: base, idx: sc.idx, updates: sc.updates, axis: axis,
			dense: dense, scale: scale}
		return []string{dx}, nil
	}
	s := c.ReduceSum(dy[0], c.Ints(axis), true)
	return []string{c.Op("Sub", dy[0], c.Op("Mul", c.Op("Exp", y), s))}, nil
}

// cumSumRule: y = cumulative sum of x along axis. dx = the cumulative sum of g in the other
// direction (reverse flipped, exclusive kept).
// https://onnx.ai/onnx/operators/onnx__CumSum.html
func cumSumRule(c *Ctx, n *onnxpb.NodeProto, dy []string) ([]string, error) {
	if !c.Needs(0) {
		return nil, nil
	}
	rev := 1 - passes.AttrInt(n, "reverse", 0)
	excl := passes.AttrInt(n, "exclusive", 0)
	return []string{c.Node("CumSum", []string{dy[0], c.X(1)}, graphs.AttrInt("reverse", rev),
		graphs.AttrInt("exclusive", excl))}, nil
}
