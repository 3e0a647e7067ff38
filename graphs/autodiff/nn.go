package autodiff

import (
	"fmt"
	"math"

	"github.com/panacea-go/toolkit/graphs"
	"github.com/panacea-go/toolkit/graphs/onnxpb"
	"github.com/panacea-go/toolkit/graphs/passes"
)

// normAxes returns the normalised axes [axis, rank) of a normalisation node over x.
func (c *Ctx) normAxes(n *onnxpb.NodeProto, x string) ([]int64, error) {
	r, err := c.Rank(x)
	if err != nil {
		return nil, err
	}
	axis := passes.AttrInt(n, "axis", -1)
	if axis < 0 {
		axis += int64(r)
	}
	if axis < 0 || axis >= int64(r) {
		return nil, fmt.Errorf("axis %d out of range for rank %d", passes.AttrInt(n, "axis", -1), r)
	}
	var axes []int64
	for i := axis; i < int64(r); i++ {
		axes = append(axes, i)
	}
	return axes, nil
}

// layerNormRule: y = x̂·γ + β with x̂ = (x − μ)·ρ, μ and ρ = 1/√(var + ε) taken over the axes
// [axis, rank). With g = dy·γ and means ⟨·⟩ over those axes:
//
//	dx = ρ·(g − ⟨g⟩ − x̂·⟨g·x̂⟩),   dγ = Σ dy·x̂,   dβ = Σ dy   (sums to γ's and β's shapes)
//
// μ and ρ come from the node's Mean and InvStdDev outputs (added to the forward node when it
// did not declare them and the stash type is the input's type), else they are recomputed.
// https://onnx.ai/onnx/operators/onnx__LayerNormalization.html
func layerNormRule(c *Ctx, n *onnxpb.NodeProto, dy []string) ([]string, error) {
	x, gamma := c.X(0), c.X(1)
	axes, err := c.normAxes(n, x)
	if err != nil {
		return nil, err
	}
	mean, inv := c.layerNormStats(n, x, axes)
	xhat := c.Op("Mul", c.Op("Sub", x, mean), inv)
	dx := make([]string, 3)
	if c.Needs(0) {
		g := c.Op("Mul", dy[0], gamma)
		mg := c.ReduceMean(g, axes, true)
		mgx := c.ReduceMean(c.Op("Mul", g, xhat), axes, true)
		inner := c.Op("Sub", c.Op("Sub", g, mg), c.Op("Mul", xhat, mgx))
		dx[0] = c.Op("Mul", inv, inner)
	}
	if c.Needs(1) {
		dx[1] = c.SumTo(c.Op("Mul", dy[0], xhat), gamma)
	}
	if c.Needs(2) {
		dx[2] = c.SumTo(dy[0], c.X(2))
	}
	return dx, nil
}

// layerNormStats returns the mean and the inverse standard deviation of a
// LayerNormalization, in x's element type with the normalised axes kept.
func (c *Ctx) layerNormStats(n *onnxpb.NodeProto, x string, axes []int64) (string, string) {
	elem := c.info.Elem(x)
	stash := int32(passes.AttrInt(n, "stash_type", int64(graphs.Float)))
	if stash == elem && c.recompute == nil {
		// Reuse the forward statistics: declare the optional outputs if needed.
		for len(n.Output) < 3 {
			n.Output = append(n.Output, "")
		}
		for i := 1; i < 3; i++ {
			if n.Output[i] == "" {
				n.Output[i] = c.b.Unique(n.GetName() + "/stat")
				c.info.SetElem(n.Output[i], elem)
			}
		}
		c.infer(n)
		return n.Output[1], n.Output[2]
	}
	eps := float64(passes.AttrFloat(n, "epsilon", 1e-5))
	mean := c.ReduceMean(x, axes, true)
	centred := c.Op("Sub", x, mean)
	variance := c.ReduceMean(c.Op("Mul", centred, centred), axes, true)
	inv := c.Op("Reciprocal", c.Op("Sqrt", c.Op("Add", variance, c.Scalar(eps, x))))
	return mean, inv
}

// rmsNormRule: y = x·ρ·γ with ρ = 1/√(⟨x²⟩ + ε) over the axes [axis, rank) (RMSNormalization,
// and ONNX Runtime's SimplifiedLayerNormalization). With x̂ = x·ρ and g = dy·γ:
//
//	dx = ρ·(g − x̂·⟨g·x̂⟩),   dγ = Σ dy·x̂ (summed to γ's shape)
//
// ρ is recomputed from x (a reduction, cheap next to the rest).
// https://onnx.ai/onnx/operators/onnx__RMSNormalization.html
func rmsNormRule(c *Ctx, n *onnxpb.NodeProto, dy []string) ([]string, error) {
	x, gamma := c.X(0), c.X(1)
	axes, err := c.normAxes(n, x)
	if err != nil {
		return nil, err
	}
	eps := float64(passes.AttrFloat(n, "epsilon", 1e-5))
	ms := c.ReduceMean(c.Op("Mul", x, x), axes, true)
	inv := c.Op("Reciprocal", c.Op("Sqrt", c.Op("Add", ms, c.Scalar(eps, x))))
	xhat := c.Op("Mul", x, inv)
	dx := make([]string, 2)
	if c.Needs(0) {
		g := c.Op("Mul", dy[0], gamma)
		mgx := c.ReduceMean(c.Op("Mul", g, xhat), axes, true)
		dx[0] = c.Op("Mul", inv, c.Op("Sub", g, c.Op("Mul", xhat, mgx)))
	}
	if c.Needs(1) {
		dx[1] = c.SumTo(c.Op("Mul", dy[0], xhat), gamma)
	}
	return dx, nil
}

// geluRule: y = x·Φ(x) (approximate "none") or 0.5·x·(1 + tanh u), u = √(2/π)·(x + 0.044715x³)
// (approximate "tanh").
//
//	none:  dx = g·(Φ(x) + x·φ(x)),  Φ(x) = (1 + erf(x/√2))/2,  φ(x) = e^(−x²/2)/√(2π)
//	tanh:  dx = g·(0.5·(1 + t) + 0.5·x·(1 − t²)·√(2/π)·(1 + 3·0.044715·x²)),  t = tanh u
//
// https://onnx.ai/onnx/operators/onnx__Gelu.html
func geluRule(c *Ctx, n *onnxpb.NodeProto, dy []string) ([]string, error) {
	x := c.X(0)
	sq := c.Op("Mul", x, x)
	half := c.Scalar(0.5, x)
	var d string
	switch approx := passes.AttrString(n, "approximate", "none"); approx {
	case "none":
		cdf := c.Op("Mul", half, c.Op("Add", c.Scalar(1, x),
			c.Op("Erf", c.Op("Mul", x, c.Scalar(1/math.Sqrt2, x)))))
		pdf := c.Op("Mul", c.Op("Exp", c.Op("Mul", sq, c.Scalar(-0.5, x))),
			c.Scalar(1/math.Sqrt(2*math.Pi), x))
		d = c.Op("Add", cdf, c.Op("Mul", x, pdf))
	case "tanh":
		k := math.Sqrt(2 / math.Pi)
		inner := c.Op("Add", c.Scalar(1, x), c.Op("Mul", sq, c.Scalar(0.044715, x)))
		t := c.Op("Tanh", c.Op("Mul", c.Op("Mul", x, inner), c.Scalar(k, x)))
		left := c.Op("Mul", half, c.Op("Add", c.Scalar(1, x), t))
		slope := c.Op("Add", c.Scalar(1, x), c.Op("Mul", sq, c.Scalar(3*0.044715, x)))
		right := c.Op("Mul", c.Op("Mul", c.Op("Mul", half, x), c.Op("Sub", c.Scalar(1, x),
			c.Op("Mul", t, t))), c.Op("Mul", slope, c.Scalar(k, x)))
		d = c.Op("Add", left, right)
	default:
		return nil, fmt.Errorf("unknown approximate %q", approx)
	}
	return []string{c.Op("Mul", dy[0], d)}, nil
}
