package lambda

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// within fails unless |got − want| ≤ k standard errors of a mean of n draws
// with the given variance.
func within(t *testing.T, what string, got, want, variance float64, n int) {
	t.Helper()
	se := math.Sqrt(variance / float64(n))
	if math.Abs(got-want) > 5*se {
		t.Errorf("%s = %.5f, want %.5f ± %.5f (5 standard errors)", what, got, want, 5*se)
	}
}

func TestGammaMoments(t *testing.T) {
	const n = 20000
	for _, shape := range []float64{0.05, 0.3, 1, 4.5, 30} {
		r := rand.New(rand.NewPCG(7, 11))
		sum, sum2 := 0.0, 0.0
		for range n {
			x, err := Gamma(r, shape)
			if err != nil {
				t.Fatal(err)
			}
			if x < 0 || math.IsNaN(x) || math.IsInf(x, 0) {
				t.Fatalf("Gamma(%v) drew %v", shape, x)
			}
			sum += x
			sum2 += x * x
		}
		mean := sum / n
		// Gamma(k, 1): mean k, variance k.
		within(t, "gamma mean", mean, shape, shape, n)
		// The sample variance's variance is about (μ4 − σ⁴)/n, μ4 = 3k² + 6k.
		variance := sum2/n - mean*mean
		within(t, "gamma variance", variance, shape, 3*shape*shape+6*shape-shape*shape, n)
	}
}

func TestGammaRejects(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, shape := range []float64{0, -1, math.NaN(), math.Inf(1)} {
		if _, err := Gamma(r, shape); err == nil {
			t.Errorf("Gamma(%v) gave no error", shape)
		}
	}
	if _, err := Gamma(nil, 1); err == nil {
		t.Error("Gamma with nil source gave no error")
	}
	if _, err := Dirichlet(r, []float64{1, 0}); err == nil {
		t.Error("Dirichlet with alpha 0 gave no error")
	}
}

func TestDirichletMeans(t *testing.T) {
	const n = 20000
	for _, alpha := range [][]float64{
		{1, 1},
		{0.3, 0.5, 1.2},
		{5, 2, 10},
		{0.02, 0.05, 0.03, 0.1}, // tiny: every Gamma draw underflows without log space
	} {
		s, err := NewSampler(SamplerConfig{M: len(alpha), Alpha: alpha}, 42)
		if err != nil {
			t.Fatal(err)
		}
		a0 := 0.0
		for _, a := range alpha {
			a0 += a
		}
		sums := make([]float64, len(alpha))
		for range n {
			l := s.Sample()
			if err := Validate(l, len(alpha)); err != nil {
				t.Fatalf("alpha %v: invalid sample: %v", alpha, err)
			}
			for i, v := range l {
				sums[i] += v
			}
		}
		for i, a := range alpha {
			// E[λ_i] = α_i/α_0, Var[λ_i] = α_i(α_0 − α_i)/(α_0²(α_0 + 1)).
			variance := a * (a0 - a) / (a0 * a0 * (a0 + 1))
			within(t, "dirichlet mean", sums[i]/n, a/a0, variance, n)
		}
	}
}

func TestVertexProbability(t *testing.T) {
	const n, m = 20000, 3
	for _, p := range []float64{0, 0.3, 1} {
		s, err := NewSampler(SamplerConfig{M: m, VertexProb: p}, 5)
		if err != nil {
			t.Fatal(err)
		}
		perVertex := make([]int, m)
		vertices := 0
		for range n {
			l := s.Sample()
			if err := Validate(l, m); err != nil {
				t.Fatal(err)
			}
			// A Dirichlet(1,1,1) draw is a vertex with probability 0.
			if j := slices.Index(l, 1); j >= 0 {
				vertices++
				perVertex[j]++
			}
		}
		within(t, "vertex fraction", float64(vertices)/n, p, p*(1-p), n)
		q := p / m
		for j, c := range perVertex {
			within(t, "vertex "+string(rune('0'+j))+" fraction", float64(c)/n, q, q*(1-q), n)
		}
	}
}

func TestSamplerConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		cfg  SamplerConfig
		want string
	}{
		{"m zero", SamplerConfig{M: 0}, "m = 0"},
		{"p above 1", SamplerConfig{M: 2, VertexProb: 1.5}, "vertex probability 1.5"},
		{"p nan", SamplerConfig{M: 2, VertexProb: math.NaN()}, "vertex probability NaN"},
		{"alpha count", SamplerConfig{M: 3, Alpha: []float64{1, 2}}, "2 Dirichlet"},
		{"alpha zero", SamplerConfig{M: 2, Alpha: []float64{1, 0}}, "alpha[1] = 0"},
		{"alpha inf", SamplerConfig{M: 1, Alpha: []float64{math.Inf(1)}}, "alpha[0] = +Inf"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewSampler(tt.cfg, 1)
			checkErr(t, err, tt.want)
		})
	}
	s, err := NewSampler(SamplerConfig{M: 3, Alpha: []float64{0.5}}, 1)
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Config().Alpha; !slices.Equal(got, []float64{0.5, 0.5, 0.5}) {
		t.Errorf("symmetric alpha spelled out as %v", got)
	}
}

func TestSamplerDeterminism(t *testing.T) {
	cfg := SamplerConfig{M: 3, Alpha: []float64{0.5, 1, 2}, VertexProb: 0.2}
	a, _ := NewSampler(cfg, 99)
	b, _ := NewSampler(cfg, 99)
	c, _ := NewSampler(cfg, 100)
	differ := false
	for range 200 {
		x, y, z := a.Sample(), b.Sample(), c.Sample()
		if !slices.Equal(x, y) {
			t.Fatalf("same seed diverged: %v vs %v", x, y)
		}
		differ = differ || !slices.Equal(x, z)
	}
	if !differ {
		t.Error("seeds 99 and 100 gave the same 200 draws")
	}
}

func TestSamplerStateRoundTrip(t *testing.T) {
	cfg := SamplerConfig{M: 4, Alpha: []float64{0.3, 1, 2, 0.7}, VertexProb: 0.25}
	s, _ := NewSampler(cfg, 2024)
	for range 37 {
		s.Sample()
	}
	state, err := s.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	want, _ := s.SampleBatch(50)

	var restored Sampler // zero value, as a checkpoint loader would have
	if err := restored.UnmarshalBinary(state); err != nil {
		t.Fatal(err)
	}
	got, err := restored.SampleBatch(50)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, want) {
		t.Fatal("restored sampler did not continue the sequence")
	}
	rc := restored.Config()
	if rc.M != cfg.M || rc.VertexProb != cfg.VertexProb || !slices.Equal(rc.Alpha, cfg.Alpha) {
		t.Errorf("restored config %+v, want %+v", rc, cfg)
	}
}

func TestSamplerUnmarshalErrors(t *testing.T) {
	s, _ := NewSampler(SamplerConfig{M: 2}, 3)
	good, _ := s.MarshalBinary()
	// Every proper prefix is truncated.
	for n := range len(good) {
		var x Sampler
		if err := x.UnmarshalBinary(good[:n]); err == nil {
			t.Fatalf("prefix of %d bytes accepted", n)
		}
	}
	corrupt := func(at int, b byte) []byte {
		c := slices.Clone(good)
		c[at] = b
		return c
	}
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"magic", corrupt(0, 'X'), "bad magic"},
		{"version", corrupt(4, 9), "version"},
		{"m zero", append(append(slices.Clone(good[:5]), 0, 0, 0, 0), good[9:]...), "m = 0"},
		{"negative p", corrupt(16, 0xbf), "vertex probability"}, // sets the sign bit of p
		{"trailing", append(slices.Clone(good), 0), "trailing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var x Sampler
			checkErr(t, x.UnmarshalBinary(tt.data), tt.want)
		})
	}
}

func TestSampleBatchLayout(t *testing.T) {
	const n, m = 64, 3
	cfg := SamplerConfig{M: m, Alpha: []float64{0.4}, VertexProb: 0.1}
	s, _ := NewSampler(cfg, 8)
	ref, _ := NewSampler(cfg, 8)
	batch, err := s.SampleBatch(n)
	if err != nil {
		t.Fatal(err)
	}
	if len(batch) != n*m {
		t.Fatalf("batch has %d values, want %d", len(batch), n*m)
	}
	for b := range n {
		row := batch[b*m : (b+1)*m]
		if err := Validate32(row, m); err != nil {
			t.Fatalf("row %d: %v", b, err)
		}
		// Row b is the b-th single draw, rounded to float32.
		want := ref.Sample()
		for i := range m {
			if row[i] != float32(want[i]) {
				t.Fatalf("row %d = %v, want %v", b, row, want)
			}
		}
	}
	if _, err := s.SampleBatch(-1); err == nil {
		t.Error("SampleBatch(-1) gave no error")
	}
}

// FuzzSamplerUnmarshal checks that decoding never panics and that an accepted
// state yields valid samples and re-encodes to the same bytes.
func FuzzSamplerUnmarshal(f *testing.F) {
	s, _ := NewSampler(SamplerConfig{M: 3, Alpha: []float64{0.5, 1, 2}, VertexProb: 0.1}, 4)
	good, _ := s.MarshalBinary()
	f.Add(good)
	f.Add([]byte("LMBD\x01"))
	f.Fuzz(func(t *testing.T, data []byte) {
		var x Sampler
		if err := x.UnmarshalBinary(data); err != nil {
			return
		}
		again, err := x.MarshalBinary()
		if err != nil || !slices.Equal(again, data) {
			t.Fatalf("accepted state does not re-encode to itself: %v", err)
		}
		if err := Validate(x.Sample(), x.Config().M); err != nil {
			t.Fatal(err)
		}
	})
}

// TestDirichletSubnormal covers concentrations so small that every log-Gamma
// draw is −Inf: the draw must still be a vertex, chosen ∝ α.
func TestDirichletSubnormal(t *testing.T) {
	const n = 4000
	tiny := math.SmallestNonzeroFloat64
	alpha := []float64{tiny, 3 * tiny}
	r := rand.New(rand.NewPCG(9, 9))
	first := 0
	for range n {
		l, err := Dirichlet(r, alpha)
		if err != nil {
			t.Fatal(err)
		}
		if err := Validate(l, 2); err != nil {
			t.Fatalf("invalid draw %v: %v", l, err)
		}
		if l[0] == 1 {
			first++
		}
	}
	within(t, "vertex 0 fraction", float64(first)/n, 0.25, 0.25*0.75, n)
}

func TestZeroSampler(t *testing.T) {
	var s Sampler
	if l := s.Sample(); l != nil {
		t.Errorf("zero Sampler drew %v", l)
	}
	if _, err := s.SampleBatch(2); err == nil {
		t.Error("zero Sampler SampleBatch gave no error")
	}
	if _, err := s.MarshalBinary(); err == nil {
		t.Error("zero Sampler MarshalBinary gave no error")
	}
}
