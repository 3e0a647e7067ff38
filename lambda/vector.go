package lambda

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// SumTolerance is the largest |Σ_i λ_i − 1| that [Validate] accepts.
const SumTolerance = 1e-6

// ParseTolerance is the largest |Σ_i λ_i − 1| that [Parse] repairs by
// normalising, λ_i ← λ_i / Σ_j λ_j. It is wide enough for hand-typed rounding
// such as "0.33,0.33,0.34" or "0.333,0.333,0.333" (sum 0.999) and narrow enough
// to reject a typo such as "0.3,0.8".
const ParseTolerance = 1e-2

// Validate reports whether lambda is a point of the simplex Δ^{m−1}:
//
//	len(λ) = m,  λ_i finite,  λ_i ≥ 0,  |Σ_i λ_i − 1| ≤ SumTolerance.
//
// The error names the first offending index and value.
func Validate(lambda []float64, m int) error {
	if m < 1 {
		return fmt.Errorf("lambda: dimension count m = %d, want at least 1", m)
	}
	if len(lambda) != m {
		return fmt.Errorf("lambda: %d weights %v, want m = %d", len(lambda), lambda, m)
	}
	if err := checkWeights(lambda); err != nil {
		return err
	}
	sum := 0.0
	for _, v := range lambda {
		sum += v
	}
	if d := math.Abs(sum - 1); d > SumTolerance {
		return fmt.Errorf("lambda: weights %v sum to %.9g, want 1 (off by %.3g > %g)",
			lambda, sum, d, SumTolerance)
	}
	return nil
}

// Validate32 is [Validate] for a float32 vector, such as one row of the batch
// that [Sampler.SampleBatch] returns. Each weight is widened to float64 first,
// so the same SumTolerance applies.
func Validate32(lambda []float32, m int) error {
	v := make([]float64, len(lambda))
	for i, x := range lambda {
		v[i] = float64(x)
	}
	return Validate(v, m)
}

// checkWeights rejects non-finite and negative weights, naming the index.
func checkWeights(lambda []float64) error {
	for i, v := range lambda {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("lambda[%d] = %v: weight is not finite", i, v)
		}
		if v < 0 {
			return fmt.Errorf("lambda[%d] = %v: weight is negative", i, v)
		}
	}
	return nil
}

// Parse reads a preference vector written as comma-separated decimals, e.g.
// "0.3,0.7" or "0.2, 0.3, 0.5", as typed on a command line. Spaces around each
// number are ignored. When m > 0 the vector must have exactly m weights; m = 0
// accepts any length of at least one.
//
// Every weight must be finite and non-negative. The sum s = Σ_i λ_i is handled
// so:
//
//	|s − 1| ≤ SumTolerance    the vector is returned as written;
//	|s − 1| ≤ ParseTolerance  the vector is normalised, λ_i ← λ_i / s;
//	otherwise                 an error that states s.
//
// The result always passes [Validate].
func Parse(s string, m int) ([]float64, error) {
	if m < 0 {
		return nil, fmt.Errorf("lambda: parse %q: dimension count m = %d is negative", s, m)
	}
	if strings.TrimSpace(s) == "" {
		return nil, fmt.Errorf("lambda: parse %q: empty preference vector", s)
	}
	fields := strings.Split(s, ",")
	if m > 0 && len(fields) != m {
		return nil, fmt.Errorf("lambda: parse %q: %d weights, want m = %d", s, len(fields), m)
	}

	// Read each weight.
	lambda := make([]float64, len(fields))
	for i, f := range fields {
		v, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
		if err != nil {
			return nil, fmt.Errorf("lambda: parse %q: weight %d (%q): %w", s, i, f, err)
		}
		lambda[i] = v
	}
	if err := checkWeights(lambda); err != nil {
		return nil, fmt.Errorf("lambda: parse %q: %w", s, err)
	}

	// Repair a sum that is off by rounding only.
	sum := 0.0
	for _, v := range lambda {
		sum += v
	}
	d := math.Abs(sum - 1)
	if d > ParseTolerance {
		return nil, fmt.Errorf("lambda: parse %q: weights sum to %.9g, want 1 (off by %.3g > %g)",
			s, sum, d, ParseTolerance)
	}
	if d > SumTolerance {
		for i := range lambda {
			lambda[i] /= sum
		}
	}
	if err := Validate(lambda, len(lambda)); err != nil {
		return nil, fmt.Errorf("lambda: parse %q: %w", s, err)
	}
	return lambda, nil
}

// Format writes λ as Parse reads it: comma-separated, shortest exact decimals.
func Format(lambda []float64) string {
	parts := make([]string, len(lambda))
	for i, v := range lambda {
		parts[i] = strconv.FormatFloat(v, 'g', -1, 64)
	}
	return strings.Join(parts, ",")
}
