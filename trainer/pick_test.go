package trainer

import (
	"math"
	"math/rand/v2"
	"sort"
	"testing"
)

// pickSorted is the sampler pick replaced: it sorts the whole vocabulary by probability
// (stable, so ties keep id order) and walks it in that order, for any top-p. Kept as the
// reference of the nucleus path and the benchmark's baseline.
func pickSorted(logits []float32, s Sampling, rng *rand.Rand) int {
	probs, sum := softmaxT(logits, s.Temperature)
	order := make([]int, len(logits))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return probs[order[a]] > probs[order[b]] })
	topP := s.TopP
	if topP <= 0 || topP > 1 {
		topP = 1
	}
	var kept float64
	n := 0
	for n < len(order) {
		kept += probs[order[n]] / sum
		n++
		if kept >= topP {
			break
		}
	}
	r := rng.Float64() * kept * sum
	for _, id := range order[:n] {
		r -= probs[id]
		if r <= 0 {
			return id
		}
	}
	return order[n-1]
}

func randomLogits(n int, seed uint64, ties bool) []float32 {
	rng := rand.New(rand.NewPCG(seed, 7))
	l := make([]float32, n)
	for i := range l {
		l[i] = float32(rng.NormFloat64() * 2)
		if ties {
			l[i] = float32(math.Round(float64(l[i]))) // many equal probabilities
		}
	}
	return l
}

// TestPickNucleusMatchesSortedWalk: below top-p 1 the heap nucleus must give the very
// tokens of the full stable sort for the same random numbers, ties included.
func TestPickNucleusMatchesSortedWalk(t *testing.T) {
	for _, ties := range []bool{false, true} {
		for _, p := range []float64{0.05, 0.5, 0.9, 0.999} {
			logits := randomLogits(300, 3, ties)
			s := Sampling{Temperature: 0.8, TopP: p}
			a, b := rand.New(rand.NewPCG(1, 2)), rand.New(rand.NewPCG(1, 2))
			for i := range 2000 {
				if x, y := pick(logits, s, a), pickSorted(logits, s, b); x != y {
					t.Fatalf("ties %v top-p %v draw %d: pick %d, sorted walk %d", ties, p, i, x, y)
				}
			}
		}
	}
}

// TestPickFollowsSoftmax: at top-p 1 the frequencies of 200,000 draws match softmax(l/T)
// (each within 5 standard errors), and with top-p the draws stay in the nucleus.
func TestPickFollowsSoftmax(t *testing.T) {
	logits := []float32{1, 0.5, -1, 2, 0, 0.5, -3}
	const T, draws = 0.7, 200000
	var sum float64
	want := make([]float64, len(logits))
	for i, v := range logits {
		want[i] = math.Exp(float64(v) / T)
		sum += want[i]
	}
	count := make([]float64, len(logits))
	rng := rand.New(rand.NewPCG(5, 5))
	for range draws {
		count[pick(logits, Sampling{Temperature: T, TopP: 1}, rng)]++
	}
	for i := range want {
		p := want[i] / sum
		se := math.Sqrt(p * (1 - p) / draws)
		if got := count[i] / draws; math.Abs(got-p) > 5*se {
			t.Errorf("token %d: frequency %.4f, softmax %.4f (± %.4f)", i, got, p, se)
		}
	}
	// Probabilities in order: id 3 (0.647), 0 (0.155), 1 and 5 (0.076 each): top-p 0.85
	// keeps ids 3, 0 and 1 (1 before 5 by id; 0.878 ≥ 0.85).
	seen := map[int]bool{}
	for range 5000 {
		seen[pick(logits, Sampling{Temperature: T, TopP: 0.85}, rng)] = true
	}
	if len(seen) != 3 || !seen[3] || !seen[0] || !seen[1] {
		t.Errorf("top-p 0.85 drew %v, want exactly {3, 0, 1}", seen)
	}
}

// BenchmarkPick times one draw at the 49,152-id vocabulary of SmolLM-135M against the full
// sort it replaced:
//
//	go test ./trainer -run '^$' -bench Pick
func BenchmarkPick(b *testing.B) {
	logits := randomLogits(49152, 9, false)
	for _, c := range []struct {
		name string
		topP float64
		f    func([]float32, Sampling, *rand.Rand) int
	}{
		{"top-p=1/pick", 1, pick}, {"top-p=1/sorted", 1, pickSorted},
		{"top-p=0.9/pick", 0.9, pick}, {"top-p=0.9/sorted", 0.9, pickSorted},
	} {
		b.Run(c.name, func(b *testing.B) {
			rng := rand.New(rand.NewPCG(1, 1))
			for b.Loop() {
				c.f(logits, Sampling{Temperature: 1, TopP: c.topP}, rng)
			}
		})
	}
}
