package autodiff

import (
	"github.com/panacea-go/toolkit/graphs"
	"github.com/panacea-go/toolkit/graphs/onnxpb"
	"github.com/panacea-go/toolkit/graphs/passes"
)

// Fused rules: a Mul that ends a known pattern of several forward nodes gets the backward
// of the whole pattern as one formula, cheaper than the chain of the nodes' own rules. The
// Mul passes no cotangent to the pattern's inner value, so the inner nodes get no backward
// at all; the result equals the chain rule's, only with fewer passes over the tensors.

// fusedMul returns the cotangents of a Mul that ends an RMS normalisation or a SiLU, and
// ok = false when the node is neither.
func (c *Ctx) fusedMul(n *onnxpb.NodeProto, g string) (dx []string, ok bool) {
	in := n.GetInput()
	if len(in) != 2 || g == "" {
		return nil, false
	}
	for i := range 2 {
		x, inner := in[i], in[1-i]
		if axes, ok := c.rmsInverse(inner, x); ok && c.Needs(i) {
			dx = make([]string, 2)
			dx[i] = c.rmsNormGrad(x, inner, n.GetOutput()[0], axes, g)
			return dx, true
		}
		if c.isSigmoidOf(inner, x) && c.Needs(i) {
			dx = make([]string, 2)
			dx[i] = c.siluGrad(inner, n.GetOutput()[0], g)
			return dx, true
		}
	}
	return nil, false
}

// rmsNormGrad: y = x·ρ with ρ = 1/√(⟨x²⟩ + ε) over the axes (kept), g = dL/dy:
//
//	dx = ρ·(g − y·⟨g·y⟩)
//
// (the x-part of rmsNormRule with γ = 1; y is the forward output, x̂ there).
func (c *Ctx) rmsNormGrad(x, rho, y string, axes []int64, g string) string {
	y, rho = c.fwd(y), c.fwd(rho)
	mgy := c.ReduceMean(c.Op("Mul", g, y), axes, true)
	return c.SumTo(c.Op("Mul", rho, c.Op("Sub", g, c.Op("Mul", y, mgy))), c.fwd(x))
}

// siluGrad: y = x·s with s = σ(x), g = dL/dy:
//
//	dx = g·(s + x·s·(1 − s)) = g·(s + y·(1 − s))
//
// reading the forward s and y.
func (c *Ctx) siluGrad(s, y, g string) string {
	s, y = c.fwd(s), c.fwd(y)
	one := c.Scalar(1, s)
	return c.Op("Mul", g, c.Op("Add", s, c.Op("Mul", y, c.Op("Sub", one, s))))
}

// isSigmoidOf reports whether v = Sigmoid(x).
func (c *Ctx) isSigmoidOf(v, x string) bool {
	p := c.producer[v]
	return p != nil && p.GetOpType() == "Sigmoid" && passes.Input(p, 0) == x
}

// rmsInverse reports whether v = 1/√(ReduceMean(x·x, axes, keepdims) + ε) with a constant ε,
// written as Reciprocal or Div(1, ·) of a Sqrt, x·x as Mul(x, x) or Pow(x, 2); it returns
// the axes (normalised to be non-negative).
func (c *Ctx) rmsInverse(v, x string) ([]int64, bool) {
	p := c.producer[v]
	if p == nil {
		return nil, false
	}
	var sqrt string
	switch p.GetOpType() {
	case "Reciprocal":
		sqrt = passes.Input(p, 0)
	case "Div":
		if !c.isConstValue(passes.Input(p, 0), 1) {
			return nil, false
		}
		sqrt = passes.Input(p, 1)
	default:
		return nil, false
	}
	ps := c.producer[sqrt]
	if ps == nil || ps.GetOpType() != "Sqrt" {
		return nil, false
	}
	add := c.producer[passes.Input(ps, 0)]
	if add == nil || add.GetOpType() != "Add" {
		return nil, false
	}
	var mean *onnxpb.NodeProto
	for i := range 2 {
		if m := c.producer[passes.Input(add, i)]; m != nil && m.GetOpType() == "ReduceMean" &&
			c.isScalarConst(passes.Input(add, 1-i)) {
			mean = m
		}
	}
	if mean == nil || passes.AttrInt(mean, "keepdims", 1) != 1 {
		return nil, false
	}
	axes, present, ok := c.info.Axes(mean, 1)
	rank := c.info.Shape(x).Rank()
	if !present || !ok || len(axes) == 0 || !c.info.Shape(x).RankKnown {
		return nil, false
	}
	for i, a := range axes {
		if a < 0 {
			axes[i] = a + int64(rank)
		}
	}
	sq := c.producer[passes.Input(mean, 0)]
	switch {
	case sq == nil:
		return nil, false
	case sq.GetOpType() == "Mul" && passes.Input(sq, 0) == x && passes.Input(sq, 1) == x:
	case sq.GetOpType() == "Pow" && passes.Input(sq, 0) == x &&
		c.isConstValue(passes.Input(sq, 1), 2):
	default:
		return nil, false
	}
	return axes, true
}

// isScalarConst reports whether v is a constant of one element.
func (c *Ctx) isScalarConst(v string) bool {
	t, ok := c.info.Const(v)
	if !ok {
		return false
	}
	n := int64(1)
	for _, d := range t.GetDims() {
		n *= d
	}
	return n == 1
}

// isConstValue reports whether v is a one-element constant equal to want.
func (c *Ctx) isConstValue(v string, want float64) bool {
	t, ok := c.info.Const(v)
	if !ok || !c.isScalarConst(v) {
		return false
	}
	f, err := graphs.TensorFloats(t, "")
	return err == nil && len(f) == 1 && float64(f[0]) == want
}
