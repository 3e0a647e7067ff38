package autodiff

import (
	"github.com/panacea-go/toolkit/graphs"
	"github.com/panacea-go/toolkit/graphs/onnxpb"
	"github.com/panacea-go/toolkit/graphs/passes"
)

// matMulRule: Y = A·B (NumPy matmul: batched over leading axes, 1-D operands promoted).
// dA = G·Bᵀ, dB = Aᵀ·G, each reduced to its input's shape (batch broadcasting undone).
//
// A 2-D B (a weight) is the common case and gets two shortcuts: dA = Gemm(G, B, transB) so
// that B is never transposed into a copy, and dB = Gemm(A₂, G₂, transA) with A and G
// flattened to 2-D, one matrix product instead of a batched product and a sum.
// https://onnx.ai/onnx/operators/onnx__MatMul.html
func matMulRule(c *Ctx, n *onnxpb.NodeProto, dy []string) ([]string, error) {
	a, b, g := c.X(0), c.X(1), dy[0]
	ra, err := c.Rank(a)
	if err != nil {
		return nil, err
	}
	rb, err := c.Rank(b)
	if err != nil {
		return nil, err
	}
	dx := make([]string, 2)
	if ra >= 2 && rb == 2 {
		if c.Needs(0) {
			dx[0] = c.matMulWeightInputGrad(a, b, g, ra)
		}
		if c.Needs(1) {
			dx[1] = c.matMulWeightGrad(a, g, ra)
		}
		return dx, nil
	}

	if ra == 1 && rb == 1 { // dot product: y = Σ aᵢbᵢ
		if c.Needs(0) {
			dx[0] = c.Op("Mul", g, b)
		}
		if c.Needs(1) {
			dx[1] = c.Op("Mul", g, a)
		}
		return dx, nil
	}

	// General case. Promote 1-D operands: A (k) → (1, k), B (k) → (k, 1), with G unsqueezed
	// to match; the promoted axis is squeezed out of each result before unbroadcasting.
	promotedA, promotedB := ra == 1, rb == 1
	if promotedA {
		a = c.Op("Unsqueeze", a, c.Ints(0))
		g = c.Op("Unsqueeze", g, c.Ints(-2))
		ra = 2
	}
	if promotedB {
		b = c.Op("Unsqueeze", b, c.Ints(-1))
		g = c.Op("Unsqueeze", g, c.Ints(-1))
		rb = 2
	}
	if c.Needs(0) {
		d := c.Op("MatMul", g, c.swapLast(b, rb)) // (…, n, k)
		if promotedA {
			dx[0] = c.SumTo(c.Op("Squeeze", d, c.Ints(-2)), c.X(0))
		} else {
			dx[0] = c.sumToBatch(d, c.X(0))
			if dx[0] == d && !promotedB {
				c.products[d] = product{a: passes.Input(n, 0), g: g, y: c.Y(0)}
			}
		}
	}
	if c.Needs(1) {
		d := c.Op("MatMul", c.swapLast(a, ra), g) // (…, k, m)
		if promotedB {
			dx[1] = c.SumTo(c.Op("Squeeze", d, c.Ints(-1)), c.X(1))
		} else {
			dx[1] = c.sumToBatch(d, c.X(1))
		}
	}
	return dx, nil
}

// matMulWeightInputGrad returns dA = G·Bᵀ for a 2-D B, through Gemm on G flattened to 2-D.
// The Gemm is registered as a chain link (see [Ctx.accumulate]): when dA is one of several
// cotangents of A, the others reach it as its C input instead of through a Sum.
func (c *Ctx) matMulWeightInputGrad(a, b, g string, ra int) string {
	if ra == 2 {
		out, gemm := c.fresh("Gemm", []string{g, b}, graphs.AttrInt("transB", 1))
		c.links[out] = chainLink{gemm: gemm}
		return out
	}
	if sc, ok := c.scatters[g]; ok && sc.base != "" && sc.axis == int64(ra-1) {
		if dx, ok := c.scatterWeightInputGrad(a, b, sc, ra); ok {
			return dx
		}
	}
	g2 := c.Op("Reshape", g, c.lastDimShape(b, 1))
	prod, gemm := c.fresh("Gemm", []string{g2, b}, graphs.AttrInt("transB", 1))
	out, _ := c.fresh("Reshape", []string{prod, c.ShapeOf(a)})
	c.links[out] = chainLink{gemm: gemm, shape2d: c.lastDimShape(a, -1)}
	return out
}

// scatterWeightInputGrad is dA = G·Bᵀ for G = ScatterElements(D, idx, u, add) along G's
// last axis with one index per row (the LM head under a token loss: D dense, u the picked
// log-probabilities' cotangents). Row r of the scatter adds u_r at column idx_r, so
//
//	dA[r, :] = (D·Bᵀ)[r, :] + u_r·B[:, idx_r]ᵀ
//
// one Gemm of D with the gathered columns of B as its C input; the logits-sized
// ScatterElements is never run. When D = E·s with one scale per row (the LogSoftmax rule's
// e^y·(−Σu)), the scale is applied after the product, to (rows, k) instead of the logits:
// dA = s ⊙ (E·Bᵀ) + picked.
// https://onnx.ai/onnx/operators/onnx__Gather.html
func (c *Ctx) scatterWeightInputGrad(a, b string, sc scatter, ra int) (string, bool) {
	is := c.info.Shape(sc.idx)
	if !is.RankKnown || is.Rank() != ra || !is.Dims[ra-1].IsOne() {
		return "", false
	}
	cols := c.Node("Gather", []string{b, c.Op("Reshape", sc.idx, c.Ints(-1))},
		graphs.AttrInt("axis", 1)) // (k, rows)
	picked := c.Op("Mul", c.Node("Transpose", []string{cols}, graphs.AttrInts("perm", 1, 0)),
		c.Op("Reshape", sc.updates, c.Ints(-1, 1))) // (rows, k)
	if ss := c.info.Shape(sc.scale); sc.dense != "" && ss.RankKnown && ss.Rank() == ra &&
		ss.Dims[ra-1].IsOne() {
		e2 := c.Op("Reshape", sc.dense, c.lastDimShape(b, 1))
		prod := c.Node("Gemm", []string{e2, b}, graphs.AttrInt("transB", 1))
		scaled := c.Op("Mul", prod, c.Op("Reshape", sc.scale, c.Ints(-1, 1)))
		return c.Op("Reshape", c.Op("Add", scaled, picked), c.ShapeOf(a)), true
	}
	d2 := c.Op("Reshape", sc.base, c.lastDimShape(b, 1))
	gemm := c.Node("Gemm", []string{d2, b, picked}, graphs.AttrInt("transB", 1))
	return c.Op("Reshape", gemm, c.ShapeOf(a)), true
}

// matMulWeightGrad returns dB = Σ_batch Aᵀ·G for a 2-D B: Gemm(A₂, G₂, transA) with A and G
// flattened to (rows, k) and (rows, n).
func (c *Ctx) matMulWeightGrad(a, g string, ra int) string {
	if ra == 2 {
		return c.Node("Gemm", []string{a, g}, graphs.AttrInt("transA", 1))
	}
	a2 := c.Op("Reshape", a, c.lastDimShape(a, -1))
	g2 := c.Op("Reshape", g, c.lastDimShape(g, -1))
	return c.Node("Gemm", []string{a2, g2}, graphs.AttrInt("transA", 1))
}

// lastDimShape returns the shape [-1, d] where d is dimension axis of v (static when known).
func (c *Ctx) lastDimShape(v string, axis int64) string {
	s := c.info.Shape(v)
	if s.RankKnown {
		i := int(axis)
		if i < 0 {
			i += len(s.Dims)
		}
		if i >= 0 && i < len(s.Dims) && s.Dims[i].Fixed {
			return c.Ints(-1, s.Dims[i].Size)
		}
	}
	d := c.Op("Gather", c.ShapeOf(v), c.Ints(axis))
	return c.Node("Concat", []string{c.Ints(-1), d}, graphs.AttrInt("axis", 0))
}

// sumToBatch is [Ctx.SumTo] for a matrix-product cotangent, whose last two dimensions
// always equal x's: only the batch dimensions are compared, so an unknown matrix dimension
// does not force the run-time path.
func (c *Ctx) sumToBatch(g, x string) string {
	gs, xs := c.info.Shape(g), c.info.Shape(x)
	if gs.Rank() >= 2 && gs.Rank() == xs.Rank() {
		r := gs.Rank()
		if passes.DimsShape(gs.Dims[:r-2]...).Same(passes.DimsShape(xs.Dims[:r-2]...)) {
			return g
		}
	}
	return c.SumTo(g, x)
}

// swapLast transposes the last two axes of a value of rank r ≥ 2.
func (c *Ctx) swapLast(v string, r int) string {
	perm := make([]int64, r)
	for i := range perm {
		perm[i] = int64(i)
	}
	perm[r-1], perm[r-2] = perm[r-2], perm[r-1]
	return c.Node("Transpose", []string{v}, graphs.AttrInts("perm", perm...))
}

// gemmRule: Y = α·A′·B′ + β·C with A′ = transA ? Aᵀ : A and B′ = transB ? Bᵀ : B.
// dA′ = α·G·B′ᵀ, dB′ = α·A′ᵀ·G, dC = β·G reduced to C's shape; each dA, dB is written as one
// Gemm with the transposes folded into its flags:
//
//	dA = transA ? α·B′·Gᵀ : α·G·B′ᵀ        dB = transB ? α·Gᵀ·A′ : α·A′ᵀ·G
//
// https://onnx.ai/onnx/operators/onnx__Gemm.html
func gemmRule(c *Ctx, n *onnxpb.NodeProto, dy []string) ([]string, error) {
	alpha := graphs.AttrFloat("alpha", passes.AttrFloat(n, "alpha", 1))
	beta := float64(passes.AttrFloat(n, "beta", 1))
	ta, tb := passes.AttrInt(n, "transA", 0), passes.AttrInt(n, "transB", 0)
	a, b, g := c.X(0), c.X(1), dy[0]
	dx := make([]string, len(n.GetInput()))
	if c.Needs(0) {
		if ta == 0 {
			dx[0] = c.Node("Gemm", []string{g, b}, alpha, graphs.AttrInt("transB", 1-tb))
		} else {
			dx[0] = c.Node("Gemm", []string{b, g}, alpha, graphs.AttrInt("transA", tb),
				graphs.AttrInt("transB", 1))
		}
	}
	if c.Needs(1) {
		if tb == 0 {
			dx[1] = c.Node("Gemm", []string{a, g}, alpha, graphs.AttrInt("transA", 1-ta))
		} else {
			dx[1] = c.Node("Gemm", []string{g, a}, alpha, graphs.AttrInt("transA", 1),
				graphs.AttrInt("transB", ta))
		}
	}
	if c.Needs(2) {
		dc := c.SumTo(g, c.X(2))
		if beta != 1 {
			dc = c.Op("Mul", dc, c.Scalar(beta, dc))
		}
		dx[2] = dc
	}
	return dx, nil
}
