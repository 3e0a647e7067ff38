package lambda

import (
	"fmt"
	"math"
)

// Method names a way to aggregate m per-dimension values into one scalar.
type Method string

// The aggregation methods.
const (
	// MethodLS is linear scalarization: Σ_i λ_i·v_i, see [Linear].
	MethodLS Method = "ls"
	// MethodTche is Tchebycheff scalarization: max_i λ_i·(L_i − z_i) for
	// losses, min_i λ_i·(r_i − z_i) for rewards, see [TcheLoss] and
	// [TcheReward].
	MethodTche Method = "tche"
)

// ParseMethod reads a method name, exactly "ls" or "tche".
func ParseMethod(s string) (Method, error) {
	switch Method(s) {
	case MethodLS, MethodTche:
		return Method(s), nil
	}
	return "", fmt.Errorf("lambda: unknown aggregation method %q, want %q or %q",
		s, MethodLS, MethodTche)
}

// checkValues checks λ and a vector of per-dimension values (and z when
// non-nil) for a matching length and finite entries; kind names the values in
// errors.
func checkValues(lambda, values, ideal []float64, kind string) error {
	if err := Validate(lambda, len(lambda)); err != nil {
		return err
	}
	if len(values) != len(lambda) {
		return fmt.Errorf("lambda: %d %ss for %d preference weights", len(values), kind,
			len(lambda))
	}
	for i, v := range values {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("lambda: %s[%d] = %v is not finite", kind, i, v)
		}
	}
	if ideal == nil {
		return nil
	}
	if len(ideal) != len(lambda) {
		return fmt.Errorf("lambda: ideal point has %d entries for %d preference weights",
			len(ideal), len(lambda))
	}
	for i, v := range ideal {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("lambda: ideal[%d] = %v is not finite", i, v)
		}
	}
	return nil
}

// Linear returns the linear scalarization Σ_i λ_i·v_i of per-dimension losses
// or rewards v. Its gradient is ∂/∂v_i = λ_i.
func Linear(lambda, values []float64) (float64, error) {
	if err := checkValues(lambda, values, nil, "value"); err != nil {
		return 0, err
	}
	sum := 0.0
	for i, v := range values {
		sum += lambda[i] * v
	}
	return sum, nil
}

// TcheLoss returns the Tchebycheff aggregate of per-dimension losses L with
// ideal point z (nil means z = 0),
//
//	T(λ) = max_i λ_i·(L_i − z_i),
//
// and the active index a, the smallest i that attains the maximum. A
// subgradient is ∂T/∂L_i = λ_a if i = a, else 0 (see [TcheSubgradient]).
func TcheLoss(lambda, losses, ideal []float64) (float64, int, error) {
	if err := checkValues(lambda, losses, ideal, "loss"); err != nil {
		return 0, 0, err
	}
	return tche(lambda, losses, ideal, 1)
}

// TcheReward returns the Tchebycheff aggregate of per-dimension rewards r with
// ideal point z (nil means z = 0),
//
//	T(λ) = min_i λ_i·(r_i − z_i),
//
// and the active index a, the smallest i that attains the minimum. A
// supergradient is ∂T/∂r_i = λ_a if i = a, else 0.
func TcheReward(lambda, rewards, ideal []float64) (float64, int, error) {
	if err := checkValues(lambda, rewards, ideal, "reward"); err != nil {
		return 0, 0, err
	}
	v, a, err := tche(lambda, rewards, ideal, -1)
	return -v, a, err
}

// tche returns max_i sign·λ_i·(v_i − z_i) and its first arg max.
func tche(lambda, values, ideal []float64, sign float64) (float64, int, error) {
	best, active := math.Inf(-1), 0
	for i, v := range values {
		z := 0.0
		if ideal != nil {
			z = ideal[i]
		}
		if t := sign * lambda[i] * (v - z); t > best {
			best, active = t, i
		}
	}
	return best, active, nil
}

// TcheSubgradient returns the weights w_i = ∂T/∂v_i of a Tchebycheff aggregate
// whose active index is a: w = λ_a·e_a. It returns nil when a is out of range.
func TcheSubgradient(lambda []float64, active int) []float64 {
	if active < 0 || active >= len(lambda) {
		return nil
	}
	w := make([]float64, len(lambda))
	w[active] = lambda[active]
	return w
}

// Loss aggregates per-dimension losses by the method and returns the value and
// the weights w_i = ∂value/∂L_i, so that a trainer can back-propagate
// Σ_i w_i·∇L_i: w = λ for LS, w = λ_a·e_a for Tchebycheff. ideal is ignored by
// LS and means z = 0 when nil.
func (m Method) Loss(lambda, losses, ideal []float64) (float64, []float64, error) {
	switch m {
	case MethodLS:
		v, err := Linear(lambda, losses)
		if err != nil {
			return 0, nil, err
		}
		return v, append([]float64(nil), lambda...), nil
	case MethodTche:
		v, a, err := TcheLoss(lambda, losses, ideal)
		if err != nil {
			return 0, nil, err
		}
		return v, TcheSubgradient(lambda, a), nil
	}
	return 0, nil, fmt.Errorf("lambda: aggregate losses: unknown method %q", string(m))
}

// Reward aggregates per-dimension rewards by the method and returns the value
// and the weights w_i = ∂value/∂r_i: w = λ for LS (Σ_i λ_i·r_i), w = λ_a·e_a
// for Tchebycheff (min_i λ_i·(r_i − z_i)).
func (m Method) Reward(lambda, rewards, ideal []float64) (float64, []float64, error) {
	switch m {
	case MethodLS:
		v, err := Linear(lambda, rewards)
		if err != nil {
			return 0, nil, err
		}
		return v, append([]float64(nil), lambda...), nil
	case MethodTche:
		v, a, err := TcheReward(lambda, rewards, ideal)
		if err != nil {
			return 0, nil, err
		}
		return v, TcheSubgradient(lambda, a), nil
	}
	return 0, nil, fmt.Errorf("lambda: aggregate rewards: unknown method %q", string(m))
}
