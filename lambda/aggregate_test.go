package lambda

import (
	"math"
	"slices"
	"testing"
)

func TestLinear(t *testing.T) {
	tests := []struct {
		lambda, values []float64
		want           float64
	}{
		{[]float64{0.3, 0.7}, []float64{1, 2}, 1.7},
		{[]float64{1, 0}, []float64{5, -100}, 5},
		{[]float64{0.25, 0.25, 0.5}, []float64{4, 8, -2}, 2},
	}
	for _, tt := range tests {
		got, err := Linear(tt.lambda, tt.values)
		if err != nil || math.Abs(got-tt.want) > 1e-12 {
			t.Errorf("Linear(%v, %v) = %v, %v; want %v", tt.lambda, tt.values, got, err, tt.want)
		}
	}
}

func TestTchebycheff(t *testing.T) {
	tests := []struct {
		name                  string
		lambda, values, ideal []float64
		loss                  float64 // max_i λ_i (v_i − z_i)
		lossActive            int
		reward                float64 // min_i λ_i (v_i − z_i)
		rewardActive          int
	}{
		// Terms 0.25·4 = 1 and 0.75·(2 − 1) = 0.75.
		{"with ideal", []float64{0.25, 0.75}, []float64{4, 2}, []float64{0, 1}, 1, 0, 0.75, 1},
		// Terms 0.2·1, 0.3·5, 0.5·2 = 0.2, 1.5, 1.
		{"zero ideal", []float64{0.2, 0.3, 0.5}, []float64{1, 5, 2}, nil, 1.5, 1, 0.2, 0},
		// A tie goes to the smallest index.
		{"tie", []float64{0.5, 0.5}, []float64{2, 2}, nil, 1, 0, 1, 0},
		// A vertex: the other term is 0.
		{"vertex", []float64{0, 1}, []float64{9, -3}, nil, 0, 0, -3, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, a, err := TcheLoss(tt.lambda, tt.values, tt.ideal)
			if err != nil || math.Abs(v-tt.loss) > 1e-12 || a != tt.lossActive {
				t.Errorf("TcheLoss = %v, %d, %v; want %v, %d", v, a, err, tt.loss, tt.lossActive)
			}
			v, a, err = TcheReward(tt.lambda, tt.values, tt.ideal)
			if err != nil || math.Abs(v-tt.reward) > 1e-12 || a != tt.rewardActive {
				t.Errorf("TcheReward = %v, %d, %v; want %v, %d", v, a, err, tt.reward,
					tt.rewardActive)
			}
		})
	}
}

// TestMethodWeights checks the returned weights against central finite
// differences of the aggregate, away from ties.
func TestMethodWeights(t *testing.T) {
	lambda := []float64{0.2, 0.5, 0.3}
	values := []float64{3, 1.1, 2}
	ideal := []float64{0.5, 0.2, 0.1}
	const h = 1e-6
	for _, m := range []Method{MethodLS, MethodTche} {
		for _, reward := range []bool{false, true} {
			agg := m.Loss
			if reward {
				agg = m.Reward
			}
			_, w, err := agg(lambda, values, ideal)
			if err != nil {
				t.Fatal(err)
			}
			for i := range values {
				up, down := slices.Clone(values), slices.Clone(values)
				up[i] += h
				down[i] -= h
				fu, _, _ := agg(lambda, up, ideal)
				fd, _, _ := agg(lambda, down, ideal)
				if fdg := (fu - fd) / (2 * h); math.Abs(fdg-w[i]) > 1e-6 {
					t.Errorf("%s reward=%v: weight %d = %v, finite difference %v",
						m, reward, i, w[i], fdg)
				}
			}
		}
	}
}

func TestAggregateErrors(t *testing.T) {
	l := []float64{0.5, 0.5}
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"length", func() error { _, err := Linear(l, []float64{1}); return err }(), "1 values"},
		{"nan loss", func() error {
			_, _, err := TcheLoss(l, []float64{1, math.NaN()}, nil)
			return err
		}(), "loss[1] = NaN"},
		{"bad lambda", func() error {
			_, _, err := TcheReward([]float64{0.5, 0.6}, []float64{1, 2}, nil)
			return err
		}(), "sum to 1.1"},
		{"ideal length", func() error {
			_, _, err := TcheLoss(l, []float64{1, 2}, []float64{0})
			return err
		}(), "ideal point has 1"},
		{"method", func() error { _, _, err := Method("max").Loss(l, l, nil); return err }(),
			`unknown method "max"`},
		{"parse", func() error { _, err := ParseMethod("LS"); return err }(), `"LS"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { checkErr(t, tt.err, tt.want) })
	}
	for _, s := range []string{"ls", "tche"} {
		if m, err := ParseMethod(s); err != nil || string(m) != s {
			t.Errorf("ParseMethod(%q) = %q, %v", s, m, err)
		}
	}
}

func TestIdealPoint(t *testing.T) {
	steps := [][]float64{{3, 5}, {4, 1}, {2, 2}}
	tests := []struct {
		name   string
		kind   IdealKind
		init   []float64
		margin float64
		want   []float64 // Point() after all steps
	}{
		{"fixed zero", IdealFixed, nil, 0.5, []float64{0, 0}},
		{"fixed value", IdealFixed, []float64{1, -1}, 0, []float64{1, -1}},
		{"running min", IdealMin, nil, 0, []float64{2, 1}},
		{"running min with init and margin", IdealMin, []float64{2.5, 0}, 0.1,
			[]float64{1.9, -0.1}},
		{"running max", IdealMax, nil, 0, []float64{4, 5}},
		{"running max with margin", IdealMax, []float64{0, 9}, 1, []float64{5, 10}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := NewIdealPoint(tt.kind, 2, tt.init, tt.margin)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range steps {
				if err := p.Update(s); err != nil {
					t.Fatal(err)
				}
			}
			got, err := p.Point()
			if err != nil {
				t.Fatal(err)
			}
			for i := range got {
				if math.Abs(got[i]-tt.want[i]) > 1e-12 {
					t.Fatalf("Point() = %v, want %v", got, tt.want)
				}
			}
			if p.Seen != int64(len(steps)) {
				t.Errorf("Seen = %d, want %d", p.Seen, len(steps))
			}
			// Point returns a copy.
			got[0] = 1e9
			if again, _ := p.Point(); again[0] == 1e9 {
				t.Error("Point() aliases the tracker's state")
			}
		})
	}
}

func TestIdealPointErrors(t *testing.T) {
	p, err := NewIdealPoint(IdealMin, 2, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Point(); err == nil {
		t.Error("running point with no value gave no error")
	}
	checkErr(t, p.Update([]float64{1}), "has 1 entries, want 2")
	checkErr(t, p.Update([]float64{1, math.Inf(-1)}), "[1] = -Inf")
	_, err = NewIdealPoint("median", 2, nil, 0)
	checkErr(t, err, `unknown kind "median"`)
	_, err = NewIdealPoint(IdealMax, 2, nil, -1)
	checkErr(t, err, "margin -1")
	_, err = NewIdealPoint(IdealMax, 2, []float64{0, 0, 0}, 0)
	checkErr(t, err, "has 3 entries")
}
