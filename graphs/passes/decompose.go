package passes

import (
	"fmt"
	"math"

	"github.com/panacea-go/toolkit/graphs"
	"github.com/panacea-go/toolkit/graphs/onnxpb"
)

// noDoubleKernel lists the ops that ONNX Runtime's CPU build runs in float32 only (measured
// with 1.31.1), each rewritten by [decomposeForDouble] into ops that have float64 kernels.
var noDoubleKernel = map[string]func(d *decomposer, n *onnxpb.NodeProto) (string, error){
	"Erf":         (*decomposer).erf,
	"Gelu":        (*decomposer).gelu,
	"LeakyRelu":   (*decomposer).leakyRelu,
	"Softplus":    (*decomposer).softplus,
	"Mean":        (*decomposer).mean,
	"Elu":         (*decomposer).elu,
	"HardSigmoid": (*decomposer).hardSigmoid,
}

// decomposer rewrites one node at a time into a replacement that ends in the node's output.
type decomposer struct {
	b *graphs.Builder
}

// decomposeForDouble replaces each op without a float64 kernel by an equivalent chain of
// ops that have one, keeping the output's name:
//
//	x ─▶ Gelu ─▶ y      ⇒   x ─▶ Mul(·, 1/√2) ─▶ erf(·) ─▶ Add(1, ·) ─▶ Mul(x/2, ·) ─▶ y
//	x ─▶ Erf  ─▶ y      ⇒   Where(|x| ≤ 2.5, Taylor series of erf, 1 − continued fraction of erfc)
//
// Every replacement is accurate to float64 rounding (erf to about 3e-14), so that finite
// differences through it stay precise.
func decomposeForDouble(g *onnxpb.GraphProto) error {
	b := graphs.WrapGraph(g)
	orig := g.GetNode()
	scratch := &onnxpb.GraphProto{}
	b.G = scratch
	var nodes []*onnxpb.NodeProto
	for _, n := range orig {
		rewrite, ok := noDoubleKernel[n.GetOpType()]
		if !ok || (n.GetDomain() != "" && n.GetDomain() != "ai.onnx") || len(n.GetOutput()) != 1 {
			nodes = append(nodes, n)
			continue
		}
		prev := b.Scope(n.GetName() + "/f64")
		scratch.Node = nil
		last, err := rewrite(&decomposer{b: b}, n)
		b.Scope(prev)
		if err != nil {
			return fmt.Errorf("passes: to double: %s node %q: %w", n.GetOpType(), n.GetName(), err)
		}
		scratch.Node = append(scratch.Node, &onnxpb.NodeProto{OpType: "Identity",
			Name: b.Unique(n.GetName() + "/f64/out"), Input: []string{last},
			Output: []string{n.GetOutput()[0]}})
		nodes = append(nodes, scratch.Node...)
	}
	g.Node = nodes
	g.Initializer = append(g.Initializer, scratch.Initializer...)
	b.G = g
	return nil
}

func (d *decomposer) c(v float64) string { return d.b.ScalarFloat(v, graphs.Double) }

func (d *decomposer) op(op string, in ...string) string { return d.b.Op(op, in...) }

// erf evaluates erf(x) in float64 with elementary ops. For |x| ≤ 2.5 it uses the Taylor series
// erf(x) = (2/√π)·Σₙ (−1)ⁿ x²ⁿ⁺¹/(n!(2n+1)) with 60 terms (Horner form in x²); beyond, the
// continued fraction erfc(x) = e^(−x²)/√π · 1/(x + ½/(x + 1/(x + (3/2)/(x + …)))) with 40
// terms. Each branch reads its input clamped to its own range, so that neither overflows
// (the branch not taken must stay finite for the backward pass: 0·∞ is NaN).
func (d *decomposer) erf(n *onnxpb.NodeProto) (string, error) {
	return d.erfOf(n.GetInput()[0]), nil
}

func (d *decomposer) erfOf(x string) string {
	const cut = 2.5
	small := d.b.Node("Clip", []string{x, d.c(-cut), d.c(cut)})
	z := d.op("Mul", small, small)
	const terms = 60
	coef := func(k int) float64 {
		lg, _ := math.Lgamma(float64(k) + 1)
		v := math.Exp(-lg) / float64(2*k+1)
		if k%2 == 1 {
			v = -v
		}
		return v
	}
	p := d.c(coef(terms - 1))
	for k := terms - 2; k >= 0; k-- {
		p = d.op("Add", d.op("Mul", p, z), d.c(coef(k)))
	}
	series := d.op("Mul", d.op("Mul", small, p), d.c(2/math.Sqrt(math.Pi)))

	ax := d.op("Max", d.op("Abs", x), d.c(cut))
	t := ax
	for k := 40; k >= 1; k-- {
		t = d.op("Add", ax, d.op("Div", d.c(float64(k)/2), t))
	}
	erfc := d.op("Div", d.op("Exp", d.op("Neg", d.op("Mul", ax, ax))),
		d.op("Mul", t, d.c(math.Sqrt(math.Pi))))
	tail := d.op("Mul", d.op("Sign", x), d.op("Sub", d.c(1), erfc))

	inside := d.op("LessOrEqual", d.op("Abs", x), d.c(cut))
	return d.op("Where", inside, series, tail)
}

// gelu: x·Φ(x) = ½x·(1 + erf(x/√2)), or ½x·(1 + tanh(√(2/π)·(x + 0.044715x³))).
func (d *decomposer) gelu(n *onnxpb.NodeProto) (string, error) {
	x := n.GetInput()[0]
	half := d.op("Mul", x, d.c(0.5))
	switch approx := AttrString(n, "approximate", "none"); approx {
	case "none":
		e := d.erfOf(d.op("Mul", x, d.c(1/math.Sqrt2)))
		return d.op("Mul", half, d.op("Add", e, d.c(1))), nil
	case "tanh":
		cube := d.op("Mul", d.op("Mul", x, x), x)
		u := d.op("Mul", d.op("Add", x, d.op("Mul", cube, d.c(0.044715))), d.c(math.Sqrt(2/math.Pi)))
		return d.op("Mul", half, d.op("Add", d.op("Tanh", u), d.c(1))), nil
	default:
		return "", fmt.Errorf("unknown approximate %q", approx)
	}
}

// leakyRelu: x ≥ 0 ? x : α·x.
func (d *decomposer) leakyRelu(n *onnxpb.NodeProto) (string, error) {
	x := n.GetInput()[0]
	alpha := float64(AttrFloat(n, "alpha", 0.01))
	return d.op("Where", d.op("GreaterOrEqual", x, d.c(0)), x, d.op("Mul", x, d.c(alpha))), nil
}

// softplus: ln(1 + eˣ) = max(x, 0) + ln(1 + e^(−|x|)), which never overflows.
func (d *decomposer) softplus(n *onnxpb.NodeProto) (string, error) {
	x := n.GetInput()[0]
	tail := d.op("Log", d.op("Add", d.op("Exp", d.op("Neg", d.op("Abs", x))), d.c(1)))
	return d.op("Add", d.op("Max", x, d.c(0)), tail), nil
}

// mean: (x₁ + … + xₙ)/n.
func (d *decomposer) mean(n *onnxpb.NodeProto) (string, error) {
	return d.op("Mul", d.op("Sum", n.GetInput()...), d.c(1/float64(len(n.GetInput())))), nil
}

// elu: x ≥ 0 ? x : α·(e^min(x, 0) − 1).
func (d *decomposer) elu(n *onnxpb.NodeProto) (string, error) {
	x := n.GetInput()[0]
	alpha := float64(AttrFloat(n, "alpha", 1))
	neg := d.op("Mul", d.op("Sub", d.op("Exp", d.op("Min", x, d.c(0))), d.c(1)), d.c(alpha))
	return d.op("Where", d.op("GreaterOrEqual", x, d.c(0)), x, neg), nil
}

// hardSigmoid: max(0, min(1, α·x + β)).
func (d *decomposer) hardSigmoid(n *onnxpb.NodeProto) (string, error) {
	x := n.GetInput()[0]
	alpha := float64(AttrFloat(n, "alpha", 0.2))
	beta := float64(AttrFloat(n, "beta", 0.5))
	lin := d.op("Add", d.op("Mul", x, d.c(alpha)), d.c(beta))
	return d.b.Node("Clip", []string{lin, d.c(0), d.c(1)}), nil
}
