package autodiff

import (
	"fmt"
	"math"
	"slices"

	"github.com/panacea-go/toolkit/graphs"
	"github.com/panacea-go/toolkit/graphs/onnxpb"
	"github.com/panacea-go/toolkit/graphs/passes"
)

// reshapeRule: Reshape, Flatten, Squeeze and Unsqueeze only relabel the elements.
// dx = Reshape(g, shape(x)).
// https://onnx.ai/onnx/operators/onnx__Reshape.html (and Flatten, Squeeze, Unsqueeze)
func reshapeRule(c *Ctx, _ *onnxpb.NodeProto, dy []string) ([]string, error) {
	x := c.X(0)
	if c.info.Shape(dy[0]).Same(c.info.Shape(x)) {
		return []string{dy[0]}, nil
	}
	return []string{c.Op("Reshape", dy[0], c.ShapeOf(x))}, nil
}

// transposeRule: y = transpose(x, perm). dx = transpose(g, perm⁻¹) (no perm: reversed axes,
// its own inverse).
// https://onnx.ai/onnx/operators/onnx__Transpose.html
func transposeRule(c *Ctx, n *onnxpb.NodeProto, dy []string) ([]string, error) {
	perm, ok := passes.AttrInts(n, "perm")
	if !ok {
		return []string{c.Op("Transpose", dy[0])}, nil
	}
	inv := make([]int64, len(perm))
	for i, p := range perm {
		if p < 0 || int(p) >= len(perm) {
			return nil, fmt.Errorf("perm %v is not a permutation", perm)
		}
		inv[p] = int64(i)
	}
	return []string{c.Node("Transpose", []string{dy[0]}, graphs.AttrInts("perm", inv...))}, nil
}

// concatRule: y = concat(x₁, …, xₙ) along axis. dxᵢ = the slice of g that xᵢ filled:
// Split(g, [size₁, …, sizeₙ], axis), sizes read from the inputs' shapes.
// https://onnx.ai/onnx/operators/onnx__Concat.html
func concatRule(c *Ctx, n *onnxpb.NodeProto, dy []string) ([]string, error) {
	axis := passes.AttrInt(n, "axis", 0)
	k := len(n.GetInput())
	sizes := make([]int64, k)
	fixed := true
	for i := range k {
		s := c.info.Shape(c.X(i))
		j := int(axis)
		if s.RankKnown && j < 0 {
			j += len(s.Dims)
		}
		if !s.RankKnown || j < 0 || j >= len(s.Dims) || !s.Dims[j].Fixed {
			fixed = false
			break
		}
		sizes[i] = s.Dims[j].Size
	}
	var split string
	if fixed {
		split = c.Ints(sizes...)
	} else {
		parts := make([]string, k)
		for i := range k {
			parts[i] = c.Op("Gather", c.ShapeOf(c.X(i)), c.Ints(axis))
		}
		split = c.Node("Concat", parts, graphs.AttrInt("axis", 0))
	}
	return c.NodeN("Split", []string{dy[0], split}, k, graphs.AttrInt("axis", axis)), nil
}

// splitRule: (y₁, …, yₙ) = split(x) along axis. dx = concat(g₁, …, gₙ) along axis, with zeros
// for outputs that have no cotangent.
// https://onnx.ai/onnx/operators/onnx__Split.html
func splitRule(c *Ctx, n *onnxpb.NodeProto, dy []string) ([]string, error) {
	parts := make([]string, len(dy))
	for i, g := range dy {
		if g == "" {
			g = c.zerosLike(c.Y(i))
		}
		parts[i] = g
	}
	axis := passes.AttrInt(n, "axis", 0)
	return []string{c.Node("Concat", parts, graphs.AttrInt("axis", axis))}, nil
}

// expandRule: y = broadcast of x to a shape. dx = g summed back to x's shape.
// https://onnx.ai/onnx/operators/onnx__Expand.html
func expandRule(c *Ctx, _ *onnxpb.NodeProto, dy []string) ([]string, error) {
	return []string{c.SumTo(dy[0], c.X(0))}, nil
}

// triluRule: y = the upper (or lower) triangle of x, from diagonal k. The mask is linear:
// dx = Trilu(g) with the same k and direction.
// https://onnx.ai/onnx/operators/onnx__Trilu.html
func triluRule(c *Ctx, n *onnxpb.NodeProto, dy []string) ([]string, error) {
	inputs := []string{dy[0]}
	if k := passes.Input(n, 1); k != "" {
		inputs = append(inputs, c.X(1))
	}
	return []string{c.Node("Trilu", inputs, graphs.AttrInt("upper", passes.AttrInt(n, "upper", 1)))}, nil
}

// tileRule: y = x repeated rᵢ times along each axis i. Viewing g as (r₀, d₀, r₁, d₁, …), the
// cotangent sums over the repeat axes: dx = ReduceSum(Reshape(g, [r₀, d₀, r₁, d₁, …]),
// axes 0, 2, 4, …).
// https://onnx.ai/onnx/operators/onnx__Tile.html
func tileRule(c *Ctx, _ *onnxpb.NodeProto, dy []string) ([]string, error) {
	x := c.X(0)
	reps := c.X(1)
	pair := c.Node("Concat", []string{c.Op("Unsqueeze", reps, c.Ints(1)),
		c.Op("Unsqueeze", c.ShapeOf(x), c.Ints(1))}, graphs.AttrInt("axis", 1)) // (rank, 2)
	interleaved := c.Op("Reshape", pair, c.Ints(-1))
	rank := c.Op("Size", c.ShapeOf(x))
	axes := c.Op("Range", c.intScalar(0), c.Op("Mul", rank, c.intScalar(2)), c.intScalar(2))
	return []string{c.ReduceSum(c.Op("Reshape", dy[0], interleaved), axes, false)}, nil
}

// intScalar returns a rank-0 int64 constant.
func (c *Ctx) intScalar(v int64) string {
	key := constKey{graphs.Int64, fmt.Sprint("s", v)}
	if name, ok := c.consts[key]; ok {
		return name
	}
	t := graphs.Int64Tensor(c.b.Unique("int"), nil, []int64{v})
	c.b.Initializer(t)
	c.info.AddConst(t.GetName(), t)
	c.consts[key] = t.GetName()
	return t.GetName()
}

// padRule: constant-mode Pad with pads [b₀, …, b_{r−1}, e₀, …, e_{r−1}].
// dx = Slice(g, starts = b, ends = shape(g) − e): the padding is dropped again.
// https://onnx.ai/onnx/operators/onnx__Pad.html
func padRule(c *Ctx, n *onnxpb.NodeProto, dy []string) ([]string, error) {
	if mode := passes.AttrString(n, "mode", "constant"); mode != "constant" {
		// TODO: reflect and edge padding fold several output elements into one input.
		return nil, fmt.Errorf("mode %q has no rule (constant only)", mode)
	}
	if passes.Input(n, 3) != "" {
		// TODO: the axes input (opset 18) restricts pads to some axes.
		return nil, fmt.Errorf("an axes input (opset 18) has no rule")
	}
	if !c.Needs(0) {
		return nil, nil
	}
	r, err := c.Rank(c.X(0))
	if err != nil {
		return nil, err
	}
	pads := c.X(1)
	begin := c.Op("Slice", pads, c.Ints(0), c.Ints(int64(r)))
	end := c.Op("Slice", pads, c.Ints(int64(r)), c.Ints(int64(2*r)))
	ends := c.Op("Sub", c.Op("Shape", dy[0]), end)
	return []string{c.Op("Slice", dy[0], begin, ends)}, nil
}

// gatherElementsRule: y[…i…] = x[…idx[…i…]…] along axis. dx = ScatterElements(zeros(x), idx,
// g, axis, reduction=add): repeated indices accumulate.
// https://onnx.ai/onnx/operators/onnx__GatherElements.html
func gatherElementsRule(c *Ctx, n *onnxpb.NodeProto, dy []string) ([]string, error) {
	if !c.Needs(0) {
		return nil, nil
	}
	x := c.X(0)
	axis := passes.AttrInt(n, "axis", 0)
	if r := c.info.Shape(x).Rank(); axis < 0 && r > 0 {
		axis += int64(r)
	}
	dx := c.Node("ScatterElements", []string{c.zerosLike(x), c.X(1), dy[0]},
		graphs.AttrInt("axis", axis), graphs.AttrString("reduction", "add"))
	c.scatters[dx] = scatter{idx: c.X(1), updates: dy[0], axis: axis}
	return []string{dx}, nil
}

// gatherRule: y = x indexed by idx along axis, y.shape = x.shape[:a] + idx.shape +
// x.shape[a+1:]. dx scatters g back with repeated indices accumulating:
//
//	axis 0:  dx = ScatterND(zeros(x), idx[…, None], g, reduction=add)
//	axis a:  dx = ScatterElements(zeros(x), broadcast(idx as [1]*a + [N] + [1]*…), g viewed
//	         as x.shape[:a] + [N] + x.shape[a+1:], axis a, reduction=add), N = size(idx)
//
// Negative indices are first made non-negative.
// https://onnx.ai/onnx/operators/onnx__Gather.html
func gatherRule(c *Ctx, n *onnxpb.NodeProto, dy []string) ([]string, error) {
	if !c.Needs(0) {
		return nil, nil
	}
	x, idx := c.X(0), c.X(1)
	r, err := c.Rank(x)
	if err != nil {
		return nil, err
	}
	axis := passes.AttrInt(n, "axis", 0)
	if axis < 0 {
		axis += int64(r)
	}
	if axis < 0 || axis >= int64(r) {
		return nil, fmt.Errorf("axis %d out of range for rank %d", passes.AttrInt(n, "axis", 0), r)
	}
	idx = c.nonNegative(idx, x, axis)
	if axis == 0 {
		return []string{c.Node("ScatterND", []string{c.zerosLike(x),
			c.Op("Unsqueeze", idx, c.Ints(-1)), dy[0]}, graphs.AttrString("reduction", "add"))}, nil
	}
	shape := c.ShapeOf(x)
	count := c.Op("Reshape", c.Op("Size", idx), c.Ints(1))
	pre := c.Op("Slice", shape, c.Ints(0), c.Ints(axis))
	post := c.Op("Slice", shape, c.Ints(axis+1), c.Ints(math.MaxInt64))
	g := c.Op("Reshape", dy[0], c.Node("Concat", []string{pre, count, post},
		graphs.AttrInt("axis", 0)))
	ones := func(k int64) string { return c.Ints(slices.Repeat([]int64{1}, int(k))...) }
	idxShape := c.Node("Concat", []string{ones(axis), count, ones(int64(r) - axis - 1)},
		graphs.AttrInt("axis", 0))
	wide := c.Op("Expand", c.Op("Reshape", idx, idxShape), c.Op("Shape", g))
	return []string{c.Node("ScatterElements", []string{c.zerosLike(x), wide, g},
		graphs.AttrInt("axis", axis), graphs.AttrString("reduction", "add"))}, nil
}

// nonNegative returns idx with negative entries shifted by the size of x along axis, unless
// idx is a constant without negative entries.
func (c *Ctx) nonNegative(idx, x string, axis int64) string {
	if v, ok := c.info.Ints(idx); ok && !slices.ContainsFunc(v, func(i int64) bool { return i < 0 }) {
		return idx
	}
	if c.info.Elem(idx) != graphs.Int64 {
		idx = c.Node("Cast", []string{idx}, graphs.AttrInt("to", int64(graphs.Int64)))
	}
	dim := c.Op("Gather", c.ShapeOf(x), c.intScalar(axis))
	neg := c.Op("Less", idx, c.intScalar(0))
	return c.Op("Where", neg, c.Op("Add", idx, dim), idx)
}
