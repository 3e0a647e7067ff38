package lambda

import (
	"fmt"
	"math"
	"slices"
)

// checkPoints checks that points is a non-empty list of finite vectors of one
// length d ≥ 1 and that maximize is nil or of length d; it returns d.
func checkPoints(points [][]float64, maximize []bool) (int, error) {
	if len(points) == 0 {
		return 0, fmt.Errorf("lambda: front: no points")
	}
	d := len(points[0])
	if d == 0 {
		return 0, fmt.Errorf("lambda: front: point 0 has no objectives")
	}
	for k, p := range points {
		if len(p) != d {
			return 0, fmt.Errorf("lambda: front: point %d has %d objectives, point 0 has %d",
				k, len(p), d)
		}
		for i, v := range p {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return 0, fmt.Errorf("lambda: front: point %d objective %d = %v is not finite",
					k, i, v)
			}
		}
	}
	if maximize != nil && len(maximize) != d {
		return 0, fmt.Errorf("lambda: front: %d maximize flags for %d objectives",
			len(maximize), d)
	}
	return d, nil
}

// orient returns a copy of p with every minimised objective negated, so that
// larger is better in every coordinate: o_i = p_i if maximize[i] (or maximize
// is nil), else −p_i.
func orient(p []float64, maximize []bool) []float64 {
	o := make([]float64, len(p))
	for i, v := range p {
		if maximize != nil && !maximize[i] {
			v = -v
		}
		o[i] = v
	}
	return o
}

// Dominates reports whether a Pareto-dominates b (a ≻ b): after orienting by
// maximize (nil: all maximised), a_i ≥ b_i for every i and a_i > b_i for at
// least one. Equal points do not dominate each other. It reports false when
// the lengths of a, b and a non-nil maximize differ.
func Dominates(a, b []float64, maximize []bool) bool {
	if len(a) != len(b) || (maximize != nil && len(maximize) != len(a)) {
		return false
	}
	strict := false
	for i := range a {
		x, y := a[i], b[i]
		if maximize != nil && !maximize[i] {
			x, y = -x, -y
		}
		if x < y {
			return false
		}
		if x > y {
			strict = true
		}
	}
	return strict
}

// Dominated returns, for each point k, whether some other point dominates it:
// D_k = ∃ j: p_j ≻ p_k. It costs O(N²·d).
func Dominated(points [][]float64, maximize []bool) ([]bool, error) {
	if _, err := checkPoints(points, maximize); err != nil {
		return nil, err
	}
	out := make([]bool, len(points))
	for k, p := range points {
		for j, q := range points {
			if j != k && Dominates(q, p, maximize) {
				out[k] = true
				break
			}
		}
	}
	return out, nil
}

// NonDominated returns the indices, in input order, of the points that no
// other point dominates. Duplicated non-dominated points are all kept.
func NonDominated(points [][]float64, maximize []bool) ([]int, error) {
	dom, err := Dominated(points, maximize)
	if err != nil {
		return nil, err
	}
	var idx []int
	for k, d := range dom {
		if !d {
			idx = append(idx, k)
		}
	}
	return idx, nil
}

// Hypervolume returns the Lebesgue measure of the region dominated by the
// points and dominating the reference point r:
//
//	HV(P, r) = vol( ∪_{p ∈ P} [r, p] )   (objectives oriented so larger is better)
//
// A point that does not strictly beat r in every objective spans an empty box
// and contributes 0. The result is exact: for d = 1 it is max_p (p − r); for
// d = 2 a sort and a sweep; for d ≥ 3 the region is sliced along the last
// objective (HSO), each slab's (d−1)-volume computed recursively, O(N^{d−1}
// log N) time. r must be finite and have one entry per objective.
func Hypervolume(points [][]float64, ref []float64, maximize []bool) (float64, error) {
	d, err := checkPoints(points, maximize)
	if err != nil {
		return 0, err
	}
	if err := checkVector(ref, d, "hypervolume reference point"); err != nil {
		return 0, err
	}

	// Move r to the origin: box k is [0, u_k] with u_k = orient(p_k) − orient(r).
	r := orient(ref, maximize)
	var boxes [][]float64
	for _, p := range points {
		u := orient(p, maximize)
		inside := true
		for i := range u {
			u[i] -= r[i]
			if u[i] <= 0 {
				inside = false
			}
		}
		if inside {
			boxes = append(boxes, u)
		}
	}
	if len(boxes) == 0 {
		return 0, nil
	}
	// TODO: HSO is exponential in d; a large front with d ≥ 5 needs WFG or a
	// Monte Carlo estimate. Panacea fronts have d = m ≤ 4 and N ≤ a few hundred.
	return unionVolume(boxes, d), nil
}

// unionVolume returns vol(∪_k [0, u_k]) over the first d coordinates of
// boxes with positive corners u_k.
func unionVolume(boxes [][]float64, d int) float64 {
	switch d {
	case 1:
		best := 0.0
		for _, u := range boxes {
			best = max(best, u[0])
		}
		return best
	case 2:
		// Sweep in decreasing u_0; each box adds the strip above the highest u_1
		// seen so far, of width u_0.
		sorted := slices.Clone(boxes)
		slices.SortFunc(sorted, func(a, b []float64) int { return cmpDesc(a[0], b[0]) })
		area, top := 0.0, 0.0
		for _, u := range sorted {
			if u[1] > top {
				area += u[0] * (u[1] - top)
				top = u[1]
			}
		}
		return area
	}

	// Slice along the last coordinate: between heights h_{k+1} < t ≤ h_k the
	// section is the union of the first k boxes in decreasing u_{d−1}.
	last := d - 1
	sorted := slices.Clone(boxes)
	slices.SortFunc(sorted, func(a, b []float64) int { return cmpDesc(a[last], b[last]) })
	vol := 0.0
	for k := range sorted {
		next := 0.0
		if k+1 < len(sorted) {
			next = sorted[k+1][last]
		}
		if h := sorted[k][last] - next; h > 0 {
			vol += h * unionVolume(sorted[:k+1], last)
		}
	}
	return vol
}

// cmpDesc orders floats from largest to smallest.
func cmpDesc(a, b float64) int {
	switch {
	case a > b:
		return -1
	case a < b:
		return 1
	}
	return 0
}
