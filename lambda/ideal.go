package lambda

import (
	"fmt"
	"math"
)

// IdealKind says how an [IdealPoint] moves.
type IdealKind string

// The kinds of ideal point.
const (
	// IdealFixed keeps z at its initial value (zeros when none is given).
	IdealFixed IdealKind = "fixed"
	// IdealMin tracks the running minimum z_i = min(init_i, min_t L_i(t)) of
	// losses seen so far.
	IdealMin IdealKind = "min"
	// IdealMax tracks the running maximum z_i = max(init_i, max_t r_i(t)) of
	// rewards seen so far.
	IdealMax IdealKind = "max"
)

// IdealPoint is the ideal point z of a Tchebycheff aggregate.
//
// Semantics: a fixed point always returns its initial value. A running point
// (min for losses, max for rewards) holds the elementwise extreme of its
// initial value (if any) and every vector passed to [IdealPoint.Update]; call
// Update with a step's values before [IdealPoint.Point], so that L_i − z_i ≥ 0
// (losses) or r_i − z_i ≥ 0 (rewards) for the values being aggregated. Point
// shifts a running extreme outward by Margin, z − Margin for losses and
// z + Margin for rewards, a common way to keep every dimension strictly away
// from its ideal.
//
// All fields are exported with JSON tags so that a checkpoint can save and
// restore the tracker; build one with [NewIdealPoint].
type IdealPoint struct {
	// Kind is fixed, min or max.
	Kind IdealKind `json:"kind"`
	// M is the number of dimensions.
	M int `json:"m"`
	// Z is the current extreme (or the fixed value); nil for a running point
	// that has no initial value and has seen nothing yet.
	Z []float64 `json:"z"`
	// Margin ≥ 0 is the outward shift applied by Point to running points.
	Margin float64 `json:"margin"`
	// Seen counts the Update calls.
	Seen int64 `json:"seen"`
}

// NewIdealPoint returns a tracker of the given kind for m dimensions. init is
// the starting value (length m); nil means zeros for a fixed point and "no
// value yet" for a running one.
func NewIdealPoint(kind IdealKind, m int, init []float64, margin float64) (*IdealPoint, error) {
	switch kind {
	case IdealFixed, IdealMin, IdealMax:
	default:
		return nil, fmt.Errorf("lambda: ideal point: unknown kind %q, want %q, %q or %q",
			string(kind), IdealFixed, IdealMin, IdealMax)
	}
	if m < 1 {
		return nil, fmt.Errorf("lambda: ideal point: m = %d, want at least 1", m)
	}
	if math.IsNaN(margin) || math.IsInf(margin, 0) || margin < 0 {
		return nil, fmt.Errorf("lambda: ideal point: margin %v, want finite and ≥ 0", margin)
	}
	p := &IdealPoint{Kind: kind, M: m, Margin: margin}
	switch {
	case init != nil:
		if err := checkVector(init, m, "ideal point init"); err != nil {
			return nil, err
		}
		p.Z = append([]float64(nil), init...)
	case kind == IdealFixed:
		p.Z = make([]float64, m)
	}
	return p, nil
}

// checkVector checks a length and finite entries, naming what in errors.
func checkVector(v []float64, m int, what string) error {
	if len(v) != m {
		return fmt.Errorf("lambda: %s has %d entries, want %d", what, len(v), m)
	}
	for i, x := range v {
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return fmt.Errorf("lambda: %s[%d] = %v is not finite", what, i, x)
		}
	}
	return nil
}

// Update folds one vector of per-dimension values into a running point:
// z_i ← min(z_i, v_i) for min, z_i ← max(z_i, v_i) for max. A fixed point only
// checks v and counts it.
func (p *IdealPoint) Update(values []float64) error {
	if err := checkVector(values, p.M, "ideal point update"); err != nil {
		return err
	}
	switch p.Kind {
	case IdealFixed:
		p.Seen++
		return nil
	case IdealMin, IdealMax:
	default:
		return fmt.Errorf("lambda: ideal point: unknown kind %q", string(p.Kind))
	}
	p.Seen++
	if p.Z == nil {
		p.Z = append([]float64(nil), values...)
		return nil
	}
	if len(p.Z) != p.M {
		return fmt.Errorf("lambda: ideal point: state has %d entries, want %d", len(p.Z), p.M)
	}
	for i, v := range values {
		if p.Kind == IdealMin {
			p.Z[i] = min(p.Z[i], v)
		} else {
			p.Z[i] = max(p.Z[i], v)
		}
	}
	return nil
}

// Point returns a copy of z as the Tchebycheff aggregate should use it:
// Z for a fixed point, Z − Margin for min, Z + Margin for max. It fails for a
// running point that has neither an initial value nor an update.
func (p *IdealPoint) Point() ([]float64, error) {
	if p.Z == nil {
		return nil, fmt.Errorf("lambda: ideal point (%s): no initial value and no update yet",
			string(p.Kind))
	}
	if len(p.Z) != p.M {
		return nil, fmt.Errorf("lambda: ideal point: state has %d entries, want %d", len(p.Z), p.M)
	}
	z := append([]float64(nil), p.Z...)
	shift := 0.0
	switch p.Kind {
	case IdealFixed:
	case IdealMin:
		shift = -p.Margin
	case IdealMax:
		shift = p.Margin
	default:
		return nil, fmt.Errorf("lambda: ideal point: unknown kind %q", string(p.Kind))
	}
	for i := range z {
		z[i] += shift
	}
	return z, nil
}
