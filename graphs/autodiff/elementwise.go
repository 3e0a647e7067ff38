package autodiff

import (
	"fmt"
	"math"

	"github.com/panacea-go/toolkit/graphs"
	"github.com/panacea-go/toolkit/graphs/onnxpb"
	"github.com/panacea-go/toolkit/graphs/passes"
)

// Elementwise rules. Inputs of binary ops broadcast (NumPy rules); each cotangent is summed
// back to its input's shape with [Ctx.SumTo].

// addRule: y = a + b. da = g, db = g, each reduced to its input's shape.
// https://onnx.ai/onnx/operators/onnx__Add.html
func addRule(c *Ctx, _ *onnxpb.NodeProto, dy []string) ([]string, error) {
	dx := make([]string, 2)
	for i := range 2 {
		if c.Needs(i) {
			dx[i] = c.SumTo(dy[0], c.X(i))
		}
	}
	return dx, nil
}

// subRule: y = a − b. da = g, db = −g, each reduced to its input's shape.
// https://onnx.ai/onnx/operators/onnx__Sub.html
func subRule(c *Ctx, _ *onnxpb.NodeProto, dy []string) ([]string, error) {
	dx := make([]string, 2)
	if c.Needs(0) {
		dx[0] = c.SumTo(dy[0], c.X(0))
	}
	if c.Needs(1) {
		dx[1] = c.Op("Neg", c.SumTo(dy[0], c.X(1)))
	}
	return dx, nil
}

// mulRule: y = a·b. da = g·b, db = g·a, each reduced to its input's shape. A Mul that ends
// an RMS normalisation or a SiLU gets the pattern's own backward (see fusedMul).
// https://onnx.ai/onnx/operators/onnx__Mul.html
func mulRule(c *Ctx, n *onnxpb.NodeProto, dy []string) ([]string, error) {
	if dx, ok := c.fusedMul(n, dy[0]); ok {
		return dx, nil
	}
	dx := make([]string, 2)
	if c.Needs(0) {
		dx[0] = c.SumTo(c.Op("Mul", dy[0], c.X(1)), c.X(0))
	}
	if c.Needs(1) {
		dx[1] = c.SumTo(c.Op("Mul", dy[0], c.X(0)), c.X(1))
	}
	return dx, nil
}

// divRule: y = a/b. da = g/b, db = −g·y/b (= −g·a/b²), each reduced to its input's shape.
// https://onnx.ai/onnx/operators/onnx__Div.html
func divRule(c *Ctx, _ *onnxpb.NodeProto, dy []string) ([]string, error) {
	dx := make([]string, 2)
	t := c.Op("Div", dy[0], c.X(1))
	if c.Needs(0) {
		dx[0] = c.SumTo(t, c.X(0))
	}
	if c.Needs(1) {
		dx[1] = c.Op("Neg", c.SumTo(c.Op("Mul", t, c.Y(0)), c.X(1)))
	}
	return dx, nil
}

// powRule: y = aᵇ. da = g·b·aᵇ⁻¹, db = g·y·ln a, each reduced to its input's shape. A constant
// exponent 2 gives da = 2·g·a.
// https://onnx.ai/onnx/operators/onnx__Pow.html
func powRule(c *Ctx, _ *onnxpb.NodeProto, dy []string) ([]string, error) {
	dx := make([]string, 2)
	a, b := c.X(0), c.X(1)
	if c.Needs(0) {
		var d string
		if k, ok := c.constScalar(b); ok {
			switch k {
			case 1:
				d = dy[0]
			case 2:
				d = c.Op("Mul", dy[0], c.Op("Mul", a, c.Scalar(2, a)))
			default:
				d = c.Op("Mul", dy[0], c.Op("Mul", c.Op("Pow", a, c.Scalar(k-1, b)),
					c.Scalar(k, a)))
			}
		} else {
			bm1 := c.Op("Sub", b, c.Scalar(1, b))
			pw := c.Op("Pow", a, bm1)
			if c.info.Elem(b) != c.info.Elem(a) {
				b = c.Node("Cast", []string{b}, graphs.AttrInt("to", int64(c.info.Elem(a))))
			}
			d = c.Op("Mul", dy[0], c.Op("Mul", b, pw))
		}
		dx[0] = c.SumTo(d, a)
	}
	if c.Needs(1) {
		d := c.Op("Mul", dy[0], c.Op("Mul", c.Y(0), c.Op("Log", a)))
		if c.info.Elem(d) != c.info.Elem(b) {
			d = c.Node("Cast", []string{d}, graphs.AttrInt("to", int64(c.info.Elem(b))))
		}
		dx[1] = c.SumTo(d, b)
	}
	return dx, nil
}

// constScalar returns the value of a one-element float constant.
func (c *Ctx) constScalar(v string) (float64, bool) {
	t, ok := c.info.Const(v)
	if !ok || graphs.NumElements(t.GetDims()) != 1 || !passes.IsFloatType(t.GetDataType()) {
		return 0, false
	}
	if t.GetDataType() == graphs.Double {
		if d := t.GetDoubleData(); len(d) == 1 {
			return d[0], true
		}
		if raw := t.GetRawData(); len(raw) == 8 {
			return math.Float64frombits(leUint64(raw)), true
		}
		return 0, false
	}
	f, err := graphs.TensorFloats(t, "")
	if err != nil || len(f) != 1 {
		return 0, false
	}
	return float64(f[0]), true
}

func leUint64(b []byte) uint64 {
	var v uint64
	for i := 7; i >= 0; i-- {
		v = v<<8 | uint64(b[i])
	}
	return v
}

// negRule: y = −x. dx = −g.
// https://onnx.ai/onnx/operators/onnx__Neg.html
func negRule(c *Ctx, _ *onnxpb.NodeProto, dy []string) ([]string, error) {
	return []string{c.Op("Neg", dy[0])}, nil
}

// identityRule: y = x. dx = g.
// https://onnx.ai/onnx/operators/onnx__Identity.html
func identityRule(_ *Ctx, _ *onnxpb.NodeProto, dy []string) ([]string, error) {
	return []string{dy[0]}, nil
}

// dropoutRule: inference-mode Dropout is the identity: dx = g (the mask output has no
// cotangent).
// https://onnx.ai/onnx/operators/onnx__Dropout.html
func dropoutRule(c *Ctx, n *onnxpb.NodeProto, dy []string) ([]string, error) {
	if mode := passes.Input(n, 2); mode != "" {
		if v, ok := c.info.Ints(mode); !ok || len(v) != 1 || v[0] != 0 {
			// TODO: training-mode Dropout needs its mask output: dx = g·mask/(1−ratio).
			return nil, fmt.Errorf("only inference-mode Dropout is supported")
		}
	}
	return []string{dy[0]}, nil
}

// zeroRule: piecewise-constant ops (Floor, Ceil, Round, Sign) have derivative 0 almost
// everywhere: no cotangent flows back.
// https://onnx.ai/onnx/operators/onnx__Floor.html
func zeroRule(*Ctx, *onnxpb.NodeProto, []string) ([]string, error) { return nil, nil }

// sqrtRule: y = √x. dx = g/(2y).
// https://onnx.ai/onnx/operators/onnx__Sqrt.html
func sqrtRule(c *Ctx, _ *onnxpb.NodeProto, dy []string) ([]string, error) {
	y := c.Y(0)
	return []string{c.Op("Div", c.Op("Mul", dy[0], c.Scalar(0.5, y)), y)}, nil
}

// reciprocalRule: y = 1/x. dx = −g·y².
// https://onnx.ai/onnx/operators/onnx__Reciprocal.html
func reciprocalRule(c *Ctx, _ *onnxpb.NodeProto, dy []string) ([]string, error) {
	y := c.Y(0)
	return []string{c.Op("Neg", c.Op("Mul", dy[0], c.Op("Mul", y, y)))}, nil
}

// expRule: y = eˣ. dx = g·y.
// https://onnx.ai/onnx/operators/onnx__Exp.html
func expRule(c *Ctx, _ *onnxpb.NodeProto, dy []string) ([]string, error) {
	return []string{c.Op("Mul", dy[0], c.Y(0))}, nil
}

// logRule: y = ln x. dx = g/x.
// https://onnx.ai/onnx/operators/onnx__Log.html
func logRule(c *Ctx, _ *onnxpb.NodeProto, dy []string) ([]string, error) {
	return []string{c.Op("Div", dy[0], c.X(0))}, nil
}

// tanhRule: y = tanh x. dx = g·(1 − y²).
// https://onnx.ai/onnx/operators/onnx__Tanh.html
func tanhRule(c *Ctx, _ *onnxpb.NodeProto, dy []string) ([]string, error) {
	y := c.Y(0)
	return []string{c.Op("Mul", dy[0], c.Op("Sub", c.Scalar(1, y), c.Op("Mul", y, y)))}, nil
}

// sigmoidRule: y = 1/(1 + e⁻ˣ). dx = g·y·(1 − y).
// https://onnx.ai/onnx/operators/onnx__Sigmoid.html
func sigmoidRule(c *Ctx, _ *onnxpb.NodeProto, dy []string) ([]string, error) {
	y := c.Y(0)
	return []string{c.Op("Mul", dy[0], c.Op("Mul", y, c.Op("Sub", c.Scalar(1, y), y)))}, nil
}

// erfRule: y = erf x. dx = g·(2/√π)·e^(−x²).
// https://onnx.ai/onnx/operators/onnx__Erf.html
func erfRule(c *Ctx, _ *onnxpb.NodeProto, dy []string) ([]string, error) {
	x := c.X(0)
	e := c.Op("Exp", c.Op("Neg", c.Op("Mul", x, x)))
	return []string{c.Op("Mul", dy[0], c.Op("Mul", e, c.Scalar(2/math.Sqrt(math.Pi), x)))}, nil
}

// cosRule: y = cos x. dx = −g·sin x.
// https://onnx.ai/onnx/operators/onnx__Cos.html
func cosRule(c *Ctx, _ *onnxpb.NodeProto, dy []string) ([]string, error) {
	return []string{c.Op("Neg", c.Op("Mul", dy[0], c.Op("Sin", c.X(0))))}, nil
}

// sinRule: y = sin x. dx = g·cos x.
// https://onnx.ai/onnx/operators/onnx__Sin.html
func sinRule(c *Ctx, _ *onnxpb.NodeProto, dy []string) ([]string, error) {
	return []string{c.Op("Mul", dy[0], c.Op("Cos", c.X(0)))}, nil
}

// absRule: y = |x|. dx = g·sign(x) (0 at x = 0).
// https://onnx.ai/onnx/operators/onnx__Abs.html
func absRule(c *Ctx, _ *onnxpb.NodeProto, dy []string) ([]string, error) {
	return []string{c.Op("Mul", dy[0], c.Op("Sign", c.X(0)))}, nil
}

// reluRule: y = max(x, 0). dx = g where y > 0, else 0.
// https://onnx.ai/onnx/operators/onnx__Relu.html
func reluRule(c *Ctx, _ *onnxpb.NodeProto, dy []string) ([]string, error) {
	y := c.Y(0)
	zero := c.Scalar(0, y)
	return []string{c.Op("Where", c.Op("Greater", y, zero), dy[0], zero)}, nil
}

// leakyReluRule: y = x for x ≥ 0, αx otherwise. dx = g where x ≥ 0, else α·g.
// https://onnx.ai/onnx/operators/onnx__LeakyRelu.html
func leakyReluRule(c *Ctx, n *onnxpb.NodeProto, dy []string) ([]string, error) {
	x := c.X(0)
	alpha := float64(passes.AttrFloat(n, "alpha", 0.01))
	scaled := c.Op("Mul", dy[0], c.Scalar(alpha, x))
	return []string{c.Op("Where", c.Op("GreaterOrEqual", x, c.Scalar(0, x)), dy[0], scaled)}, nil
}

// softplusRule: y = ln(1 + eˣ). dx = g·σ(x).
// https://onnx.ai/onnx/operators/onnx__Softplus.html
func softplusRule(c *Ctx, _ *onnxpb.NodeProto, dy []string) ([]string, error) {
	return []string{c.Op("Mul", dy[0], c.Op("Sigmoid", c.X(0)))}, nil
}

// castRule: y = cast(x). dx = cast(g) back to x's element type; a cast from an integer or
// boolean value passes no cotangent.
// https://onnx.ai/onnx/operators/onnx__Cast.html
func castRule(c *Ctx, _ *onnxpb.NodeProto, dy []string) ([]string, error) {
	x := c.X(0)
	if !c.info.IsFloat(x) {
		return nil, nil
	}
	if c.info.Elem(x) == c.info.Elem(dy[0]) {
		return []string{dy[0]}, nil
	}
	return []string{c.Node("Cast", []string{dy[0]}, graphs.AttrInt("to", int64(c.info.Elem(x))))}, nil
}

// whereRule: y = cond ? a : b. da = cond ? g : 0, db = cond ? 0 : g, each reduced to its
// input's shape; cond has no cotangent.
// https://onnx.ai/onnx/operators/onnx__Where.html
func whereRule(c *Ctx, _ *onnxpb.NodeProto, dy []string) ([]string, error) {
	dx := make([]string, 3)
	cond := c.X(0)
	zero := c.Scalar(0, dy[0])
	if c.Needs(1) {
		dx[1] = c.SumTo(c.Op("Where", cond, dy[0], zero), c.X(1))
	}
	if c.Needs(2) {
		dx[2] = c.SumTo(c.Op("Where", cond, zero, dy[0]), c.X(2))
	}
	return dx, nil
}

// maxMinRule: y = max(x₁, …, xₙ) (or min). dxᵢ = g·[xᵢ = y]/#{j : xⱼ = y}: ties share the
// cotangent equally. Each is reduced to its input's shape.
// https://onnx.ai/onnx/operators/onnx__Max.html https://onnx.ai/onnx/operators/onnx__Min.html
func maxMinRule(c *Ctx, n *onnxpb.NodeProto, dy []string) ([]string, error) {
	y := c.Y(0)
	elem := int64(c.info.Elem(y))
	masks := make([]string, len(n.GetInput()))
	for i := range n.GetInput() {
		masks[i] = c.Node("Cast", []string{c.Op("Equal", c.X(i), y)}, graphs.AttrInt("to", elem))
	}
	g := dy[0]
	if len(masks) > 1 {
		g = c.Op("Div", dy[0], c.Op("Sum", masks...))
	}
	dx := make([]string, len(masks))
	for i := range masks {
		if c.Needs(i) {
			dx[i] = c.SumTo(c.Op("Mul", g, masks[i]), c.X(i))
		}
	}
	return dx, nil
}

// clipRule: y = min(max(x, lo), hi). dx = g where lo ≤ x ≤ hi, else 0; dlo = Σ g where
// x < lo; dhi = Σ g where x > hi (sums reduce to the bounds' shapes).
// https://onnx.ai/onnx/operators/onnx__Clip.html
func clipRule(c *Ctx, n *onnxpb.NodeProto, dy []string) ([]string, error) {
	x := c.X(0)
	lo, hi := passes.Input(n, 1), passes.Input(n, 2)
	zero := c.Scalar(0, dy[0])
	dx := make([]string, 3)
	if c.Needs(0) {
		pass := c.Op("Where", c.Op("Equal", c.Y(0), x), dy[0], zero)
		dx[0] = pass
	}
	if lo != "" && c.Needs(1) {
		dx[1] = c.SumTo(c.Op("Where", c.Op("Less", x, c.X(1)), dy[0], zero), c.X(1))
	}
	if hi != "" && c.Needs(2) {
		dx[2] = c.SumTo(c.Op("Where", c.Op("Greater", x, c.X(2)), dy[0], zero), c.X(2))
	}
	return dx, nil
}

// sumRule: y = x₁ + … + xₙ. dxᵢ = g reduced to xᵢ's shape.
// https://onnx.ai/onnx/operators/onnx__Sum.html
func sumRule(c *Ctx, n *onnxpb.NodeProto, dy []string) ([]string, error) {
	dx := make([]string, len(n.GetInput()))
	for i := range dx {
		if c.Needs(i) {
			dx[i] = c.SumTo(dy[0], c.X(i))
		}
	}
	return dx, nil
}

// meanRule: y = (x₁ + … + xₙ)/n. dxᵢ = g/n reduced to xᵢ's shape.
// https://onnx.ai/onnx/operators/onnx__Mean.html
func meanRule(c *Ctx, n *onnxpb.NodeProto, dy []string) ([]string, error) {
	g := c.Op("Mul", dy[0], c.Scalar(1/float64(len(n.GetInput())), dy[0]))
	dx := make([]string, len(n.GetInput()))
	for i := range dx {
		if c.Needs(i) {
			dx[i] = c.SumTo(g, c.X(i))
		}
	}
	return dx, nil
}
