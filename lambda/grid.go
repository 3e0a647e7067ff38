package lambda

import "fmt"

// MaxGridPoints bounds the number of points [Grid] will build.
const MaxGridPoints = 1_000_000

// GridCount returns the number of points of Grid(m, n): the compositions of
// n − 1 into m non-negative parts,
//
//	C(n + m − 2, m − 1)
//
// e.g. n for m = 2, n(n+1)/2 for m = 3 (66 for n = 11) and n(n+1)(n+2)/6 for
// m = 4 (286 for n = 11). It fails for m < 1, n < 2, or a count above
// MaxGridPoints.
func GridCount(m, n int) (int, error) {
	if m < 1 {
		return 0, fmt.Errorf("lambda: grid: m = %d, want at least 1", m)
	}
	if n < 2 {
		return 0, fmt.Errorf("lambda: grid: n = %d points per edge, want at least 2", n)
	}
	// C(s+j, j) with s = n−1, j = m−1, built up exactly:
	// c_k = c_{k−1}·(s+k)/k for k = 1 … j (each quotient is an integer).
	s := n - 1
	c := 1
	for k := 1; k < m; k++ {
		c = c * (s + k) / k
		if c > MaxGridPoints {
			return 0, fmt.Errorf("lambda: grid: m = %d, n = %d gives more than %d points",
				m, n, MaxGridPoints)
		}
	}
	return c, nil
}

// Grid returns the simplex lattice with step h = 1/(n − 1): every λ with
// λ_i = k_i·h, k_i ∈ {0, …, n − 1}, Σ_i k_i = n − 1. There are
// [GridCount](m, n) points.
//
// For m = 2 these are n evenly spaced points from (0, 1) to (1, 0) inclusive,
// λ_1 increasing. In general the order is lexicographic in (k_1, k_2, …), each
// increasing, with the last weight taking the remainder. Each weight is
// k_i/(n − 1) rounded once, so every point passes [Validate].
func Grid(m, n int) ([][]float64, error) {
	count, err := GridCount(m, n)
	if err != nil {
		return nil, err
	}
	steps := n - 1
	out := make([][]float64, 0, count)
	k := make([]int, m) // current composition (k_1, …, k_m)

	// place fills k[i:] with every composition of rest, appending each point.
	var place func(i, rest int)
	place = func(i, rest int) {
		if i == m-1 {
			k[i] = rest
			p := make([]float64, m)
			for j, kj := range k {
				p[j] = float64(kj) / float64(steps)
			}
			out = append(out, p)
			return
		}
		for kj := 0; kj <= rest; kj++ {
			k[i] = kj
			place(i+1, rest-kj)
		}
	}
	place(0, steps)
	return out, nil
}

// Vertices returns the m vertices e_1 … e_m of the simplex, the rows of the
// m×m identity; nil for m < 1.
func Vertices(m int) [][]float64 {
	if m < 1 {
		return nil
	}
	out := make([][]float64, m)
	for i := range out {
		out[i] = make([]float64, m)
		out[i][i] = 1
	}
	return out
}
