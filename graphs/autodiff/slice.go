package autodiff

import (
	"math"
	"slices"

	"github.com/panacea-go/toolkit/graphs"
	"github.com/panacea-go/toolkit/graphs/onnxpb"
	"github.com/panacea-go/toolkit/graphs/passes"
)

// sliceRule: y = x[starts:ends:steps] on the given axes. dx is g put back where it came from,
// zeros elsewhere:
//
//	steps all 1:  dx = Pad(g, pads), pads = clamped starts before, dim − clamped ends after
//	other steps:  dx = ScatterND(zeros(size x), Slice(arange(size x) viewed as x, …), g)
//
// The pads are constants when the static shapes decide them, else computed in the graph
// with the clamping rules of Slice (negative positions count from the end).
// https://onnx.ai/onnx/operators/onnx__Slice.html
func sliceRule(c *Ctx, n *onnxpb.NodeProto, dy []string) ([]string, error) {
	if !c.Needs(0) {
		return nil, nil
	}
	x := c.X(0)
	stepsOne := true
	if st := passes.Input(n, 4); st != "" {
		v, ok := c.info.Ints(st)
		stepsOne = ok && !slices.ContainsFunc(v, func(s int64) bool { return s != 1 })
	}
	if !stepsOne {
		// TODO: this path builds an int64 index tensor the size of x; a strided Pad would not.
		return []string{c.sliceByIndex(n, x, dy[0])}, nil
	}
	if pads, ok := c.staticSlicePads(n, x); ok {
		return []string{c.Op("Pad", dy[0], c.Ints(pads...))}, nil
	}
	return []string{c.Op("Pad", dy[0], c.runtimeSlicePads(n, x))}, nil
}

// staticSlicePads computes the Pad amounts of a unit-step Slice when the static shape of x
// and the constant starts, ends and axes decide them.
func (c *Ctx) staticSlicePads(n *onnxpb.NodeProto, x string) ([]int64, bool) {
	xs := c.info.Shape(x)
	starts, ok1 := c.info.Ints(passes.Input(n, 1))
	ends, ok2 := c.info.Ints(passes.Input(n, 2))
	axes, present, ok3 := c.info.Axes(n, 3)
	if !xs.RankKnown || !ok1 || !ok2 || !ok3 || len(starts) != len(ends) {
		return nil, false
	}
	if !present {
		axes = make([]int64, len(starts))
		for i := range axes {
			axes[i] = int64(i)
		}
	}
	r := len(xs.Dims)
	pads := make([]int64, 2*r)
	for i, a := range axes {
		if a < 0 {
			a += int64(r)
		}
		if a < 0 || a >= int64(r) {
			return nil, false
		}
		d := xs.Dims[a]
		s, e := starts[i], ends[i]
		switch {
		case d.Fixed:
			clamp := func(v int64) int64 {
				if v < 0 {
					v += d.Size
				}
				return max(0, min(v, d.Size))
			}
			s, e = clamp(s), clamp(e)
			pads[a], pads[int64(r)+a] = s, d.Size-max(e, s)
		case s >= 0 && e >= math.MaxInt32:
			// Symbolic dimension sliced from s to the end: nothing after. Assumes s ≤ dim.
			pads[a] = s
		default:
			return nil, false
		}
	}
	return pads, true
}

// runtimeSlicePads computes the Pad amounts of a unit-step Slice in the graph.
func (c *Ctx) runtimeSlicePads(n *onnxpb.NodeProto, x string) string {
	asInt64 := func(v string) string {
		if c.info.Elem(v) == graphs.Int64 {
			return v
		}
		return c.Node("Cast", []string{v}, graphs.AttrInt("to", int64(graphs.Int64)))
	}
	shape := c.ShapeOf(x)
	rank := c.Op("Size", shape)
	starts, ends := asInt64(c.X(1)), asInt64(c.X(2))
	var axes string
	if passes.Input(n, 3) != "" {
		axes = asInt64(c.X(3))
	} else {
		axes = c.Op("Range", c.intScalar(0), c.Op("Size", starts), c.intScalar(1))
	}
	zero := c.intScalar(0)
	axes = c.Op("Where", c.Op("Less", axes, zero), c.Op("Add", axes, rank), axes)
	dims := c.Op("Gather", shape, axes)
	clamp := func(v string) string {
		v = c.Op("Where", c.Op("Less", v, zero), c.Op("Add", v, dims), v)
		return c.Op("Min", c.Op("Max", v, zero), dims)
	}
	s := clamp(starts)
	e := c.Op("Max", clamp(ends), s)
	zeros := c.Node("ConstantOfShape", []string{c.Op("Mul", c.Op("Reshape", rank, c.Ints(1)),
		c.Ints(2))}, graphs.AttrTensor("value", graphs.Int64Tensor("", []int64{1}, []int64{0})))
	where := c.Node("Concat", []string{axes, c.Op("Add", axes, rank)}, graphs.AttrInt("axis", 0))
	amounts := c.Node("Concat", []string{s, c.Op("Sub", dims, e)}, graphs.AttrInt("axis", 0))
	return c.Node("ScatterElements", []string{zeros, where, amounts}, graphs.AttrInt("axis", 0))
}

// sliceByIndex scatters g back through the flat positions that the Slice selected.
func (c *Ctx) sliceByIndex(n *onnxpb.NodeProto, x, g string) string {
	shape := c.ShapeOf(x)
	size := c.early("Size", x)
	positions := c.Op("Reshape", c.Op("Range", c.intScalar(0), size, c.intScalar(1)), shape)
	inputs := slices.Clone(n.GetInput())
	inputs[0] = positions
	for i := 1; i < len(inputs); i++ {
		if inputs[i] != "" {
			inputs[i] = c.X(i)
		}
	}
	picked := c.Node("Slice", inputs)
	idx := c.Op("Reshape", picked, c.Ints(-1, 1))
	zeros := c.fill(c.Op("Reshape", size, c.Ints(1)), 0, c.info.Elem(x))
	flat := c.Op("ScatterND", zeros, idx, c.Op("Reshape", g, c.Ints(-1)))
	return c.Op("Reshape", flat, shape)
}
