package trainer

import (
	"math"
	"testing"
)

// TestAdamWMinimisesQuadratic checks that AdamW drives f(θ) = Σ (θ_i − c_i)² to its minimum
// and that the first step has the size Adam promises (lr per coordinate, sign of −g).
func TestAdamWMinimisesQuadratic(t *testing.T) {
	c := []float32{3, -2, 0.5}
	p := &Param{Name: "theta", Shape: []int64{3}, Data: make([]float32, 3)}
	o := NewAdamW([]*Param{p}, 0.9, 0.999, 1e-8, 0)
	grad := func() []float32 {
		g := make([]float32, 3)
		for i := range g {
			g[i] = 2 * (p.Data[i] - c[i])
		}
		return g
	}
	if err := o.Update([]*Param{p}, [][]float32{grad()}, 0.1); err != nil {
		t.Fatal(err)
	}
	for i, want := range []float32{0.1, -0.1, 0.1} {
		if math.Abs(float64(p.Data[i]-want)) > 1e-6 {
			t.Fatalf("first step moved θ to %v, want ±lr toward c", p.Data)
		}
	}
	for range 2000 {
		if err := o.Update([]*Param{p}, [][]float32{grad()}, 0.05); err != nil {
			t.Fatal(err)
		}
	}
	for i := range c {
		if math.Abs(float64(p.Data[i]-c[i])) > 1e-2 {
			t.Fatalf("θ = %v after 2000 steps, want %v", p.Data, c)
		}
	}
}

func TestAdamWDecayIsDecoupled(t *testing.T) {
	p := &Param{Name: "w", Data: []float32{2}, Decay: true}
	q := &Param{Name: "s", Data: []float32{2}}
	o := NewAdamW([]*Param{p, q}, 0.9, 0.999, 1e-8, 0.5)
	// Zero gradient: only the decay term moves p, by lr·wd·θ; q does not move.
	if err := o.Update([]*Param{p, q}, [][]float32{{0}, {0}}, 0.1); err != nil {
		t.Fatal(err)
	}
	if math.Abs(float64(p.Data[0])-(2-0.1*0.5*2)) > 1e-6 || q.Data[0] != 2 {
		t.Fatalf("after decay p=%v q=%v", p.Data, q.Data)
	}
	if err := o.Update([]*Param{p}, [][]float32{{0, 1}}, 0.1); err == nil {
		t.Fatal("gradient of the wrong length accepted")
	}
}

func TestClipByGlobalNorm(t *testing.T) {
	g := [][]float32{{3}, {4}}
	if n := ClipByGlobalNorm(g, 1); math.Abs(n-5) > 1e-9 {
		t.Fatalf("norm %v, want 5", n)
	}
	if n := GlobalNorm(g); math.Abs(n-1) > 1e-6 {
		t.Fatalf("norm after clipping %v, want 1", n)
	}
	g = [][]float32{{0.3}, {0.4}}
	ClipByGlobalNorm(g, 1)
	if g[0][0] != 0.3 || g[1][0] != 0.4 {
		t.Fatal("clipping changed a gradient under the limit")
	}
}

func TestSchedule(t *testing.T) {
	s := Schedule{Peak: 1, Warmup: 4, Total: 14, MinRatio: 0.1}
	cases := []struct {
		step int
		want float64
	}{
		{0, 0.25}, {3, 1}, {4, 1}, {9, 0.1 + 0.9*0.5}, {14, 0.1}, {100, 0.1},
	}
	for _, c := range cases {
		if got := s.LR(c.step); math.Abs(got-c.want) > 1e-12 {
			t.Errorf("LR(%d) = %v, want %v", c.step, got, c.want)
		}
	}
	for step := 5; step < 14; step++ {
		if s.LR(step) > s.LR(step-1) {
			t.Fatalf("LR rises after warmup at step %d", step)
		}
	}
}
