package lambda

import (
	"fmt"
	"math"
	"slices"
)

// IPMean returns the inner-product mean of a front,
//
//	IP = (1/N) Σ_k ⟨λ_k, o(ξ(λ_k))⟩ = (1/N) Σ_k Σ_i λ_{k,i}·o_i(ξ_{k,i}),
//
// where ξ(λ_k) = values[k] is the objective vector measured at λ_k and o
// orients it so that larger is better (minimised objectives are negated). It
// measures how well each solution follows its own preference: larger is
// better. Each λ_k must pass [Validate] and have one weight per objective.
func IPMean(lambdas, values [][]float64, maximize []bool) (float64, error) {
	d, err := checkPoints(values, maximize)
	if err != nil {
		return 0, err
	}
	if len(lambdas) != len(values) {
		return 0, fmt.Errorf("lambda: ip mean: %d preference vectors for %d points",
			len(lambdas), len(values))
	}
	sum := 0.0
	for k, l := range lambdas {
		if err := Validate(l, d); err != nil {
			return 0, fmt.Errorf("lambda: ip mean: point %d: %w", k, err)
		}
		for i, v := range orient(values[k], maximize) {
			sum += l[i] * v
		}
	}
	return sum / float64(len(values)), nil
}

// Sparsity returns the sparsity of a front as the Panacea evaluation defines
// it: sort each objective's N values independently, P̃_j(1) ≤ … ≤ P̃_j(N), and
//
//	SP = (1/(N−1)) Σ_j Σ_{k=1}^{N−1} (P̃_j(k+1) − P̃_j(k))².
//
// Smaller means a denser, more even front. It is 0 for a single point. The
// sign of an objective does not matter, so no orientation is needed.
func Sparsity(values [][]float64) (float64, error) {
	d, err := checkPoints(values, nil)
	if err != nil {
		return 0, err
	}
	n := len(values)
	if n < 2 {
		return 0, nil
	}
	col := make([]float64, n)
	sum := 0.0
	for j := range d {
		for k, p := range values {
			col[k] = p[j]
		}
		slices.Sort(col)
		for k := 1; k < n; k++ {
			g := col[k] - col[k-1]
			sum += g * g
		}
	}
	return sum / float64(n-1), nil
}

// Spacing returns Schott's spacing of a front: with the L1 distance to the
// nearest other point
//
//	d_k = min_{j≠k} Σ_i |ξ_{k,i} − ξ_{j,i}|,   d̄ = (1/N) Σ_k d_k,
//	S = √( (1/(N−1)) Σ_k (d̄ − d_k)² ).
//
// S = 0 means the points are evenly spaced. It is 0 for fewer than two
// points. It costs O(N²·d).
func Spacing(values [][]float64) (float64, error) {
	if _, err := checkPoints(values, nil); err != nil {
		return 0, err
	}
	n := len(values)
	if n < 2 {
		return 0, nil
	}
	dist := make([]float64, n)
	mean := 0.0
	for k, p := range values {
		dist[k] = math.Inf(1)
		for j, q := range values {
			if j == k {
				continue
			}
			l1 := 0.0
			for i := range p {
				l1 += math.Abs(p[i] - q[i])
			}
			dist[k] = min(dist[k], l1)
		}
		mean += dist[k]
	}
	mean /= float64(n)
	ss := 0.0
	for _, dk := range dist {
		ss += (mean - dk) * (mean - dk)
	}
	return math.Sqrt(ss / float64(n-1)), nil
}
