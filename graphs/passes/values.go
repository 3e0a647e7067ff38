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
	case "Neg":
		if hasX {
			v := make([]Dim, len(x))
			for i, d := range x {
				if l, ok := linearOf(d); ok {
					v[i] = l.scaled(-1).dim()
				}
			}
			in.SetShapeValue(out, v)
		}
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

// arithValue computes Add, Sub, Mul and Div of shape values, symbolically where the sizes
// are linear forms (Mul and Div need a fixed factor).
func (in *Info) arithValue(n *onnxpb.NodeProto, out string) {
	a, ok1 := in.values[Input(n, 0)]
	b, ok2 := in.values[Input(n, 1)]
	if !ok1 || !ok2 || len(a) == 0 || len(b) == 0 || (len(a) != len(b) && len(a) != 1 && len(b) != 1) {
		return
	}
	size := max(len(a), len(b))
	v := make([]Dim, size)
	for i := range size {
		x, y := a[min(i, len(a)-1)], b[min(i, len(b)-1)]
		v[i] = arith(n.GetOpType(), x, y)
	}
	in.SetShapeValue(out, v)
}

func arith(op string, x, y Dim) Dim {
	lx, ok1 := linearOf(x)
	ly, ok2 := linearOf(y)
	if !ok1 || !ok2 {
		return Dim{}
	}
	switch {
	case op == "Add":
		return lx.plus(ly, 1).dim()
	case op == "Sub":
		return lx.plus(ly, -1).dim()
	case op == "Mul" && y.Fixed:
		return lx.scaled(y.Size).dim()
	case op == "Mul" && x.Fixed:
		return ly.scaled(x.Size).dim()
	case op == "Div" && x.Fixed && y.Fixed && y.Size != 0:
		return FixedDim(x.Size / y.Size)
	}
	return Dim{}
}
