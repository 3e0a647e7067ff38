package lambda

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
)

// Gamma draws X ~ Gamma(shape, 1), density x^{shape−1}·e^{−x} / Γ(shape),
// mean = variance = shape.
//
// For shape ≥ 1 it uses Marsaglia and Tsang's squeeze method: with
// d = shape − 1/3, c = 1/√(9d), draw x ~ N(0, 1) and v = (1 + c·x)³ until v > 0
// and u ~ U(0, 1) satisfies u < 1 − 0.0331·x⁴ or
// log u < x²/2 + d·(1 − v + log v); return d·v. For shape < 1 it boosts:
// Gamma(shape) = Gamma(shape + 1)·U^{1/shape}. Very small shapes may round to
// 0; [Dirichlet] works in log space to avoid that.
func Gamma(r *rand.Rand, shape float64) (float64, error) {
	if r == nil {
		return 0, fmt.Errorf("lambda: gamma: nil random source")
	}
	if math.IsNaN(shape) || math.IsInf(shape, 0) || shape <= 0 {
		return 0, fmt.Errorf("lambda: gamma: shape %v, want finite and > 0", shape)
	}
	return math.Exp(logGamma(r, shape)), nil
}

// logGamma returns log X for X ~ Gamma(shape, 1), shape > 0 and finite.
func logGamma(r *rand.Rand, shape float64) float64 {
	if shape < 1 {
		// Boost: log X = log Gamma(shape+1) + log(U)/shape, U ∈ (0, 1].
		u := 1 - r.Float64()
		return logGamma(r, shape+1) + math.Log(u)/shape
	}
	d := shape - 1.0/3
	c := 1 / math.Sqrt(9*d)
	for {
		x := r.NormFloat64()
		t := 1 + c*x
		if t <= 0 {
			continue
		}
		v := t * t * t
		u := r.Float64()
		x2 := x * x
		if u < 1-0.0331*x2*x2 || math.Log(u) < 0.5*x2+d*(1-v+math.Log(v)) {
			return math.Log(d) + math.Log(v)
		}
	}
}

// Dirichlet draws λ ~ Dirichlet(α) on the simplex Δ^{m−1}, m = len(alpha):
// λ_i = G_i / Σ_j G_j with independent G_i ~ Gamma(α_i, 1), so that
// E[λ_i] = α_i / α_0 and Var[λ_i] = α_i(α_0 − α_i) / (α_0²(α_0 + 1)),
// α_0 = Σ_j α_j. The normalisation is done on log G_i (softmax), so tiny
// concentrations that would round every G_i to 0 still give a valid λ.
func Dirichlet(r *rand.Rand, alpha []float64) ([]float64, error) {
	if r == nil {
		return nil, fmt.Errorf("lambda: dirichlet: nil random source")
	}
	if err := checkAlpha(alpha); err != nil {
		return nil, fmt.Errorf("lambda: %w", err)
	}
	out := make([]float64, len(alpha))
	dirichletInto(r, alpha, out)
	return out, nil
}

// dirichletInto writes a Dirichlet(alpha) draw into dst; alpha is valid and
// len(dst) == len(alpha).
func dirichletInto(r *rand.Rand, alpha, dst []float64) {
	top := math.Inf(-1)
	for i, a := range alpha {
		dst[i] = logGamma(r, a)
		top = max(top, dst[i])
	}
	if math.IsInf(top, -1) {
		// Every log G_i overflowed to −Inf, which takes α_i near the smallest
		// float64. Dirichlet(α) then puts nearly all its mass on the vertices,
		// vertex j with probability α_j/α_0: draw one.
		dirichletVertex(r, alpha, dst)
		return
	}
	sum := 0.0
	for i := range dst {
		dst[i] = math.Exp(dst[i] - top)
		sum += dst[i]
	}
	for i := range dst {
		dst[i] /= sum
	}
}

// dirichletVertex writes vertex e_j into dst, j drawn with probability
// α_j/α_0, the limit of Dirichlet(α) as α_0 → 0.
func dirichletVertex(r *rand.Rand, alpha, dst []float64) {
	// Divide by the largest concentration first: subnormal α_j keep their
	// ratios, and the weights lie in (0, 1].
	top := slices.Max(alpha)
	sum := 0.0
	for _, a := range alpha {
		sum += a / top
	}
	u := r.Float64() * sum
	j := len(alpha) - 1
	for i, a := range alpha {
		if u < a/top {
			j = i
			break
		}
		u -= a / top
	}
	clear(dst)
	dst[j] = 1
}
