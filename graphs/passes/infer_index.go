package passes

import (
	"fmt"
	"math"
	"slices"

	"github.com/panacea-go/toolkit/graphs/onnxpb"
)

// Shape inference of the ops that join, split, slice, index and reduce tensors.

func (in *Info) concatShape(n *onnxpb.NodeProto, set func(int, Shape)) error {
	var shapes []Shape
	for _, name := range n.GetInput() {
		s := in.shapes[name]
		if !s.RankKnown {
			set(0, UnknownShape())
			return nil
		}
		shapes = append(shapes, s)
	}
	if len(shapes) == 0 {
		return nil
	}
	rank := len(shapes[0].Dims)
	axis, err := normAxis(AttrInt(n, "axis", 0), rank)
	if err != nil {
		return err
	}
	out := DimsShape(shapes[0].Dims...)
	sum, known := linear{}, true
	for _, s := range shapes {
		if len(s.Dims) != rank {
			return fmt.Errorf("inputs of ranks %d and %d", rank, len(s.Dims))
		}
		for i, d := range s.Dims {
			if i != axis && !out.Dims[i].Known() {
				out.Dims[i] = d
			}
		}
		l, ok := linearOf(s.Dims[axis])
		sum, known = sum.plus(l, 1), known && ok
	}
	out.Dims[axis] = Dim{}
	if known {
		out.Dims[axis] = sum.dim()
	}
	set(0, out)
	return nil
}

func (in *Info) splitShape(n *onnxpb.NodeProto, x Shape, set func(int, Shape)) error {
	if !x.RankKnown {
		return nil
	}
	axis, err := normAxis(AttrInt(n, "axis", 0), len(x.Dims))
	if err != nil {
		return err
	}
	sizes, ok := AttrInts(n, "split")
	if !ok && Input(n, 1) != "" {
		sizes, ok = in.Ints(Input(n, 1))
	}
	if !ok && x.Dims[axis].Fixed {
		parts := int64(len(n.GetOutput()))
		if k := AttrInt(n, "num_outputs", 0); k > 0 {
			parts = k
		}
		total := x.Dims[axis].Size
		each := (total + parts - 1) / parts
		for i := range parts {
			sizes = append(sizes, min(each, total-i*each))
		}
		ok = true
	}
	for i := range n.GetOutput() {
		s := DimsShape(x.Dims...)
		s.Dims[axis] = Dim{}
		if ok && i < len(sizes) {
			s.Dims[axis] = FixedDim(sizes[i])
		}
		set(i, s)
	}
	return nil
}

func (in *Info) sliceShape(n *onnxpb.NodeProto, x Shape, set func(int, Shape)) error {
	if !x.RankKnown {
		return nil
	}
	out := DimsShape(x.Dims...)
	starts, ok1 := in.values[Input(n, 1)]
	ends, ok2 := in.values[Input(n, 2)]
	axes, present, ok3 := in.Axes(n, 3)
	steps, ok4 := in.Ints(Input(n, 4))
	if Input(n, 4) == "" {
		steps, ok4 = nil, true
	}
	if !present {
		if !ok1 {
			set(0, RankOnly(len(x.Dims)))
			return nil
		}
		axes = make([]int64, len(starts))
		for i := range axes {
			axes[i] = int64(i)
		}
	}
	if !ok3 {
		// Only the sliced axes change, but which they are is unknown.
		set(0, RankOnly(len(x.Dims)))
		return nil
	}
	for i, a := range axes {
		axis, err := normAxis(a, len(x.Dims))
		if err != nil {
			return err
		}
		out.Dims[axis] = Dim{}
		if !ok1 || !ok2 || !ok4 || i >= len(starts) || i >= len(ends) {
			continue
		}
		step := int64(1)
		if i < len(steps) {
			step = steps[i]
		}
		out.Dims[axis] = sliceDim(x.Dims[axis], starts[i], ends[i], step)
	}
	set(0, out)
	return nil
}

// sliceDim is the length of a Slice along an axis of size d, when the sizes decide it. With
// symbolic sizes it assumes the slice is in range (start ≤ d, end ≤ d):
//
//	d fixed, start/end fixed       ONNX clamping
//	start s ≥ 0, end to the end     d − s
//	start −L (from the end), to end L
//	start 0, end L > 0               L
func sliceDim(d, start, end Dim, step int64) Dim {
	if d.Fixed && start.Fixed && end.Fixed {
		return FixedDim(sliceLen(d.Size, start.Size, end.Size, step))
	}
	if step != 1 {
		return Dim{}
	}
	ld, okd := linearOf(d)
	ls, oks := linearOf(start)
	toEnd := end.Fixed && end.Size >= math.MaxInt32
	switch {
	case toEnd && start.Fixed && start.Size >= 0 && okd:
		return ld.plus(ls, -1).dim()
	case toEnd && oks && ls.negative():
		return ls.scaled(-1).dim()
	case start.Fixed && start.Size == 0 && end.Known() && !end.Fixed:
		if le, ok := linearOf(end); ok && !le.negative() {
			return end
		}
	}
	return Dim{}
}

// rangeShape is the length of Range(start, limit, 1) when start and limit are known sizes.
func (in *Info) rangeShape(n *onnxpb.NodeProto) Shape {
	delta, ok := in.Ints(Input(n, 2))
	start, ok1 := in.values[Input(n, 0)]
	limit, ok2 := in.values[Input(n, 1)]
	if !ok || len(delta) != 1 || delta[0] != 1 || !ok1 || !ok2 || len(start) != 1 || len(limit) != 1 {
		return RankOnly(1)
	}
	ls, ok1 := linearOf(start[0])
	ll, ok2 := linearOf(limit[0])
	if !ok1 || !ok2 {
		return RankOnly(1)
	}
	return DimsShape(ll.plus(ls, -1).dim())
}

// sliceLen is the length of a Slice along one axis of size dim, clamped as ONNX specifies.
func sliceLen(dim, start, end, step int64) int64 {
	if step == 0 {
		return 0
	}
	clamp := func(v, lo, hi int64) int64 { return max(lo, min(v, hi)) }
	if start < 0 {
		start += dim
	}
	if end < 0 {
		end += dim
	}
	if step > 0 {
		start, end = clamp(start, 0, dim), clamp(end, 0, dim)
		if end <= start {
			return 0
		}
		return (end - start + step - 1) / step
	}
	start, end = clamp(start, 0, dim-1), clamp(end, -1, dim-1)
	if start <= end {
		return 0
	}
	return (start - end + (-step) - 1) / (-step)
}

func (in *Info) gatherShape(n *onnxpb.NodeProto, x Shape, set func(int, Shape)) error {
	idx := in.shapes[Input(n, 1)]
	if !x.RankKnown || !idx.RankKnown {
		return nil
	}
	axis, err := normAxis(AttrInt(n, "axis", 0), len(x.Dims))
	if err != nil {
		return err
	}
	dims := slices.Clone(x.Dims[:axis])
	dims = append(dims, idx.Dims...)
	dims = append(dims, x.Dims[axis+1:]...)
	set(0, DimsShape(dims...))
	return nil
}

func (in *Info) squeezeShape(n *onnxpb.NodeProto, x Shape, set func(int, Shape)) error {
	axes, present, ok := in.Axes(n, 1)
	if !x.RankKnown || !ok {
		return nil
	}
	if n.GetOpType() == "Unsqueeze" {
		rank := len(x.Dims) + len(axes)
		mark := make([]bool, rank)
		for _, a := range axes {
			axis, err := normAxis(a, rank)
			if err != nil {
				return err
			}
			mark[axis] = true
		}
		out := RankOnly(rank)
		j := 0
		for i := range rank {
			if mark[i] {
				out.Dims[i] = FixedDim(1)
				continue
			}
			if j < len(x.Dims) {
				out.Dims[i] = x.Dims[j]
			}
			j++
		}
		set(0, out)
		return nil
	}
	drop := make([]bool, len(x.Dims))
	if !present {
		for i, d := range x.Dims {
			if !d.Known() {
				return nil // an unknown dimension may or may not be squeezed
			}
			drop[i] = d.IsOne()
		}
	}
	for _, a := range axes {
		axis, err := normAxis(a, len(x.Dims))
		if err != nil {
			return err
		}
		drop[axis] = true
	}
	var dims []Dim
	for i, d := range x.Dims {
		if !drop[i] {
			dims = append(dims, d)
		}
	}
	set(0, DimsShape(dims...))
	return nil
}

func (in *Info) reduceShape(n *onnxpb.NodeProto, x Shape, set func(int, Shape)) error {
	if !x.RankKnown {
		return nil
	}
	keep := AttrInt(n, "keepdims", 1) != 0
	var axes []int64
	present, ok := false, true
	if op := n.GetOpType(); op == "ArgMax" || op == "ArgMin" {
		axes, present = []int64{AttrInt(n, "axis", 0)}, true
	} else {
		axes, present, ok = in.Axes(n, 1)
	}
	if !ok {
		if keep {
			set(0, RankOnly(len(x.Dims)))
		}
		return nil
	}
	if (!present || len(axes) == 0) && AttrInt(n, "noop_with_empty_axes", 0) != 0 {
		set(0, x)
		return nil
	}
	reduced := make([]bool, len(x.Dims))
	for i := range reduced {
		reduced[i] = !present || len(axes) == 0
	}
	for _, a := range axes {
		axis, err := normAxis(a, len(x.Dims))
		if err != nil {
			return err
		}
		reduced[axis] = true
	}
	var dims []Dim
	for i, d := range x.Dims {
		switch {
		case !reduced[i]:
			dims = append(dims, d)
		case keep:
			dims = append(dims, FixedDim(1))
		}
	}
	set(0, DimsShape(dims...))
	return nil
}
