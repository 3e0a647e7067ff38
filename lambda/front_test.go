package lambda

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

func TestDominates(t *testing.T) {
	tests := []struct {
		name     string
		a, b     []float64
		maximize []bool
		want     bool
	}{
		{"better in both", []float64{2, 2}, []float64{1, 1}, nil, true},
		{"better in one, equal in other", []float64{2, 1}, []float64{1, 1}, nil, true},
		{"equal", []float64{1, 1}, []float64{1, 1}, nil, false},
		{"trade-off", []float64{2, 0}, []float64{1, 1}, nil, false},
		{"worse", []float64{1, 1}, []float64{2, 2}, nil, false},
		{"minimised", []float64{1, 1}, []float64{2, 2}, []bool{false, false}, true},
		{"mixed senses", []float64{3, 1}, []float64{2, 2}, []bool{true, false}, true},
		{"length mismatch", []float64{3, 3}, []float64{2}, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Dominates(tt.a, tt.b, tt.maximize); got != tt.want {
				t.Errorf("Dominates(%v, %v) = %v, want %v", tt.a, tt.b, got, tt.want)
			}
		})
	}
}

func TestDominated(t *testing.T) {
	points := [][]float64{{1, 3}, {2, 2}, {1.5, 1.5}, {3, 1}, {2, 2}, {0, 0}}
	// (1.5,1.5) is dominated by (2,2); (0,0) by all; the duplicate (2,2)s do
	// not dominate each other.
	want := []bool{false, false, true, false, false, true}
	got, err := Dominated(points, nil)
	if err != nil || !slices.Equal(got, want) {
		t.Fatalf("Dominated = %v, %v; want %v", got, err, want)
	}
	idx, err := NonDominated(points, nil)
	if err != nil || !slices.Equal(idx, []int{0, 1, 3, 4}) {
		t.Fatalf("NonDominated = %v, %v", idx, err)
	}
	// Minimising both objectives turns the picture around: (0,0) beats all.
	idx, _ = NonDominated(points, []bool{false, false})
	if !slices.Equal(idx, []int{5}) {
		t.Fatalf("NonDominated (minimise) = %v, want [5]", idx)
	}
}

func TestFrontInputErrors(t *testing.T) {
	tests := []struct {
		name     string
		points   [][]float64
		maximize []bool
		want     string
	}{
		{"empty", nil, nil, "no points"},
		{"no objectives", [][]float64{{}}, nil, "no objectives"},
		{"ragged", [][]float64{{1, 2}, {1}}, nil, "point 1 has 1"},
		{"nan", [][]float64{{1, 2}, {1, math.NaN()}}, nil, "point 1 objective 1 = NaN"},
		{"flags", [][]float64{{1, 2}}, []bool{true}, "1 maximize flags"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Dominated(tt.points, tt.maximize)
			checkErr(t, err, tt.want)
			_, err = Hypervolume(tt.points, []float64{0, 0}, tt.maximize)
			checkErr(t, err, tt.want)
		})
	}
	_, err := Hypervolume([][]float64{{1, 2}}, []float64{0}, nil)
	checkErr(t, err, "reference point has 1 entries")
}

func TestHypervolumeHand(t *testing.T) {
	stair := [][]float64{{1, 3}, {2, 2}, {3, 1}}
	tests := []struct {
		name     string
		points   [][]float64
		ref      []float64
		maximize []bool
		want     float64
	}{
		// Staircase: widths 1 at heights 3, 2, 1.
		{"2d staircase", stair, []float64{0, 0}, nil, 6},
		// r = (1, 1): only (2, 2) beats r in both objectives, a unit box.
		{"2d shifted reference", stair, []float64{1, 1}, nil, 1},
		// Minimising with r = (4, 4): strips of height 1, 2, 3.
		{"2d minimise", stair, []float64{4, 4}, []bool{false, false}, 6},
		// Max x, min y, r = (0, 4): boxes [0,1]×[3,4] ⊂ [0,2]×[2,4] ⊂ [0,3]×[1,4],
		// since (3, 1) dominates the others; the union is 3·3.
		{"2d mixed", stair, []float64{0, 4}, []bool{true, false}, 9},
		{"point not beating reference", [][]float64{{5, -1}}, []float64{0, 0}, nil, 0},
		{"point on reference edge", [][]float64{{5, 0}}, []float64{0, 0}, nil, 0},
		{"1d", [][]float64{{2}, {5}, {-1}}, []float64{1}, nil, 4},
		{"3d box", [][]float64{{1, 2, 3}}, []float64{0, 0, 0}, nil, 6},
		// |A ∪ B| = 2 + 2 − 1.
		{"3d two boxes", [][]float64{{2, 1, 1}, {1, 2, 1}}, []float64{0, 0, 0}, nil, 3},
		// Inclusion–exclusion: 3·2 − 3·1 + 1.
		{"3d three boxes", [][]float64{{2, 1, 1}, {1, 2, 1}, {1, 1, 2}},
			[]float64{0, 0, 0}, nil, 4},
		// Minimised 3-D: r − p = (1,2,3) → 6.
		{"3d minimise", [][]float64{{3, 2, 1}}, []float64{4, 4, 4},
			[]bool{false, false, false}, 6},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Hypervolume(tt.points, tt.ref, tt.maximize)
			if err != nil || math.Abs(got-tt.want) > 1e-12 {
				t.Errorf("Hypervolume = %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}

// inclusionExclusion is an independent hypervolume for small sets:
// Σ over non-empty subsets S of (−1)^{|S|+1}·Π_i (min_{p∈S} p_i − r_i)+,
// for maximised objectives.
func inclusionExclusion(points [][]float64, ref []float64) float64 {
	total := 0.0
	n := len(points)
	for mask := 1; mask < 1<<n; mask++ {
		corner := slices.Clone(points[0])
		for i := range corner {
			corner[i] = math.Inf(1)
		}
		bits := 0
		for k := range n {
			if mask&(1<<k) != 0 {
				bits++
				for i := range corner {
					corner[i] = min(corner[i], points[k][i])
				}
			}
		}
		vol := 1.0
		for i := range corner {
			vol *= max(corner[i]-ref[i], 0)
		}
		if bits%2 == 1 {
			total += vol
		} else {
			total -= vol
		}
	}
	return total
}

// randomPoints draws n points in [0, 1)^d, some of them below the reference
// point 0.1 in one coordinate.
func randomPoints(r *rand.Rand, n, d int) [][]float64 {
	out := make([][]float64, n)
	for k := range out {
		out[k] = make([]float64, d)
		for i := range out[k] {
			out[k][i] = r.Float64()
		}
	}
	return out
}

func TestHypervolumeProperties(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for trial := range 60 {
		d := 2 + trial%3 // 2, 3, 4 objectives
		n := 1 + r.IntN(8)
		points := randomPoints(r, n, d)
		ref := slices.Repeat([]float64{0.1}, d)

		hv, err := Hypervolume(points, ref, nil)
		if err != nil {
			t.Fatal(err)
		}
		// Exact against inclusion–exclusion.
		if want := inclusionExclusion(points, ref); math.Abs(hv-want) > 1e-12 {
			t.Fatalf("d=%d n=%d: HSO %v, inclusion–exclusion %v", d, n, hv, want)
		}
		// Equal to the hypervolume of the non-dominated subset.
		idx, _ := NonDominated(points, nil)
		var front [][]float64
		for _, k := range idx {
			front = append(front, points[k])
		}
		if hf, _ := Hypervolume(front, ref, nil); math.Abs(hf-hv) > 1e-12 {
			t.Fatalf("non-dominated subset has HV %v, full set %v", hf, hv)
		}
		// A dominated point adds nothing.
		worse := slices.Clone(points[0])
		for i := range worse {
			worse[i] -= 0.05
		}
		if hw, _ := Hypervolume(append(slices.Clone(points), worse), ref, nil); math.Abs(hw-hv) > 1e-12 {
			t.Fatalf("adding a dominated point changed HV from %v to %v", hv, hw)
		}
		// Monotone: any extra point cannot lower it; a point beyond all adds.
		extra := randomPoints(r, 1, d)[0]
		if he, _ := Hypervolume(append(slices.Clone(points), extra), ref, nil); he < hv-1e-12 {
			t.Fatalf("adding %v lowered HV from %v to %v", extra, hv, he)
		}
		top := slices.Repeat([]float64{1.5}, d)
		if ht, _ := Hypervolume(append(slices.Clone(points), top), ref, nil); ht <= hv {
			t.Fatalf("adding a dominating point did not raise HV (%v → %v)", hv, ht)
		}
		// Order does not matter.
		shuffled := slices.Clone(points)
		r.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		if hs, _ := Hypervolume(shuffled, ref, nil); math.Abs(hs-hv) > 1e-12 {
			t.Fatalf("shuffling changed HV from %v to %v", hv, hs)
		}
	}
}
