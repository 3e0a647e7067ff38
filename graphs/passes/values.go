package passes

import (
	"slices"

	"github.com/panacea-go/toolkit/graphs"
	"github.com/panacea-go/toolkit/graphs/onnxpb"
)

// inferValue tracks the contents of small integer tensors that hold shapes, so that the
// targets of Reshape, Expand and ConstantOfShape are known statically:
//
//	Shape(x) ─▶ Gather(·, i) ─▶ Unsqueeze ─▶ Concat(…, [-1, 64]) ─▶ Reshape(y, ·)
//	(B, S, H)     S              [S]          [B, S, -1, 64]        (B, S, H/64, 64)
func (in *Info) inferValue(n *onnxpb.NodeProto) {
	outs := n.GetOutput()
	if len(outs) == 0 || !isIntType(in.elem[outs[0]]) {
		return
	}
	out := outs[0]
	x, hasX := in.values[Input(n, 0)]
	switch n.GetOpType() {
	case "Shape":
		s := in.shapes[Input(n, 0)]
		if s.RankKnown {
			start, end := shapeRange(n, len(s.Dims))
			in.SetShapeValue(out, slices.Clone(s.Dims[start:end]))
		}
	case "Size":
		if s := in.shapes[Input(n, 0)]; s.RankKnown {
			// The element count as one dimension: a number, or a lone symbolic name.
			if d := productOf(s.Dims).divide(product{fixed: 1, ok: true}); d.Known() {
				in.SetShapeValue(out, []Dim{d})
			}
		}
	case "Identity", "Cast", "Squeeze", "Unsqueeze", "Reshape", "Flatten":
		if hasX {
			in.SetShapeValue(out, slices.Clone(x))
		}
	case "Gather":
		idx, ok := in.Ints(Input(n, 1))
		if !hasX || !ok || AttrInt(n, "axis", 0) != 0 {
			return
		}
		v := make([]Dim, len(idx))
		for i, j := range idx {
			if j < 0 {
				j += int64(len(x))
			}
			if j < 0 || j >= int64(len(x)) {
				return
			}
			v[i] = x[j]
		}
		in.SetShapeValue(out, v)
	case "Concat":
		var v []Dim
		for _, name := range n.GetInput() {
			part, ok := in.values[name]
			if !ok {
				return
			}
			v = append(v, part...)
		}
		in.SetShapeValue(out, v)
	case "Slice":
		in.sliceValue(n, x, hasX, out)
	case "Add", "Sub", "Mul", "Div":
		in.arithValue(n, out)
	case "ConstantOfShape":
		shape, ok := in.Ints(Input(n, 0))
		a := Attr(n, "value")
		if !ok || len(shape) > 1 {
			return
		}
		val := []int64{0}
		if a != nil && a.GetT() != nil {
			var err error
			if val, err = graphs.TensorInt64s(a.GetT()); err != nil {
				return
			}
		}
		count := int64(1)
		if len(shape) == 1 {
			count = shape[0]
		}
		if len(val) != 1 || count > maxShapeValue {
			return
		}
		v := make([]Dim, count)
		for i := range v {
			v[i] = FixedDim(val[0])
		}
		in.SetShapeValue(out, v)
	}
}

func (in *Info) sliceValue(n *onnxpb.NodeProto, x []Dim, hasX bool, out string) {
	starts, ok1 := in.Ints(Input(n, 1))
	ends, ok2 := in.Ints(Input(n, 2))
	if !hasX || !ok1 || !ok2 || len(starts) != 1 || len(ends) != 1 {
		return
	}
	if Input(n, 4) != "" {
		if steps, ok := in.Ints(Input(n, 4)); !ok || len(steps) != 1 || steps[0] != 1 {
			return
		}
	}
	dim := int64(len(x))
	start, end := starts[0], ends[0]
	if start < 0 {
		start += dim
	}
	if end < 0 {
		end += dim
	}
	start, end = max(0, min(start, dim)), max(0, min(end, dim))
	if end < start {
		end = start
	}
	in.SetShapeValue(out, slices.Clone(x[start:end]))
}

func (in *Info) arithValue(n *onnxpb.NodeProto, out string) {
	a, ok1 := in.Ints(Input(n, 0))
	b, ok2 := in.Ints(Input(n, 1))
	if !ok1 || !ok2 || (len(a) != len(b) && len(a) != 1 && len(b) != 1) {
		return
	}
	size := max(len(a), len(b))
	v := make([]Dim, size)
	for i := range size {
		x, y := a[min(i, len(a)-1)], b[min(i, len(b)-1)]
		var r int64
		switch n.GetOpType() {
		case "Add":
			r = x + y
		case "Sub":
			r = x - y
		case "Mul":
			r = x * y
		case "Div":
			if y == 0 {
				return
			}
			r = x / y
		}
		v[i] = FixedDim(r)
	}
	in.SetShapeValue(out, v)
}
