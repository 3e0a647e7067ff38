package lambda

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
)

// Front is an evaluated front: the objective vector ξ(λ_k) measured at each
// preference vector λ_k. There is one objective per preference dimension
// (d = m), as in Panacea, so that ⟨λ, ξ(λ)⟩ is defined.
type Front struct {
	// Names holds one name per objective; nil means "f1" … "fm".
	Names []string `json:"names,omitempty"`
	// Lambdas is (N, m): the preference vector of each point.
	Lambdas [][]float64 `json:"lambdas"`
	// Values is (N, m): the objective vector measured at each λ_k.
	Values [][]float64 `json:"values"`
	// Maximize says per objective whether larger is better; nil means all
	// objectives are maximised.
	Maximize []bool `json:"maximize,omitempty"`
}

// Validate checks that the front has N ≥ 1 points, that every λ_k passes
// [Validate] with m = the number of objectives, that every value is finite,
// and that Names and Maximize are nil or of length m.
func (f Front) Validate() error {
	m, err := checkPoints(f.Values, f.Maximize)
	if err != nil {
		return err
	}
	if len(f.Lambdas) != len(f.Values) {
		return fmt.Errorf("lambda: front: %d preference vectors for %d points",
			len(f.Lambdas), len(f.Values))
	}
	for k, l := range f.Lambdas {
		if err := Validate(l, m); err != nil {
			return fmt.Errorf("lambda: front: point %d: %w", k, err)
		}
	}
	if f.Names != nil && len(f.Names) != m {
		return fmt.Errorf("lambda: front: %d names for %d objectives", len(f.Names), m)
	}
	return nil
}

// names returns f.Names, or "f1" … "fm" when nil; f is valid.
func (f Front) names() []string {
	if f.Names != nil {
		return f.Names
	}
	out := make([]string, len(f.Values[0]))
	for i := range out {
		out[i] = "f" + strconv.Itoa(i+1)
	}
	return out
}

// Report bundles a front with its metrics. Dominance, hypervolume and the
// inner-product mean use the oriented objectives (see [Front.Maximize]);
// sparsity and spacing are computed over all N points, dominated ones
// included, since each stands for one λ of the evaluation grid.
type Report struct {
	// Objectives names the objectives, one per preference dimension.
	Objectives []string `json:"objectives"`
	// Maximize says per objective whether larger is better (always filled).
	Maximize []bool `json:"maximize"`
	// Reference is the hypervolume reference point, in raw objective units.
	Reference []float64 `json:"reference"`
	// Points holds one entry per λ, in input order.
	Points []ReportPoint `json:"points"`
	// NonDominated lists the indices of the non-dominated points.
	NonDominated []int `json:"non_dominated"`
	// Hypervolume is [Hypervolume] of all points against Reference.
	Hypervolume float64 `json:"hypervolume"`
	// IPMean is [IPMean], (1/N) Σ_k ⟨λ_k, o(ξ(λ_k))⟩.
	IPMean float64 `json:"ip_mean"`
	// Sparsity is [Sparsity] of all points.
	Sparsity float64 `json:"sparsity"`
	// Spacing is [Spacing] (Schott) of all points.
	Spacing float64 `json:"spacing"`
}

// ReportPoint is one evaluated preference vector.
type ReportPoint struct {
	// Lambda is the preference vector λ_k.
	Lambda []float64 `json:"lambda"`
	// Values is ξ(λ_k), in raw objective units.
	Values []float64 `json:"values"`
	// Dominated is true when another point dominates this one.
	Dominated bool `json:"dominated"`
}

// NewReport validates f and computes its dominance flags and metrics against
// the reference point ref (raw objective units, one entry per objective).
func NewReport(f Front, ref []float64) (*Report, error) {
	if err := f.Validate(); err != nil {
		return nil, fmt.Errorf("lambda: report: %w", err)
	}
	m := len(f.Values[0])
	if err := checkVector(ref, m, "reference point"); err != nil {
		return nil, fmt.Errorf("lambda: report: %w", err)
	}
	maximize := f.Maximize
	if maximize == nil {
		maximize = make([]bool, m)
		for i := range maximize {
			maximize[i] = true
		}
	}
	r := &Report{
		Objectives: append([]string(nil), f.names()...),
		Maximize:   append([]bool(nil), maximize...),
		Reference:  append([]float64(nil), ref...),
	}

	// Dominance.
	dom, err := Dominated(f.Values, maximize)
	if err != nil {
		return nil, fmt.Errorf("lambda: report: %w", err)
	}
	r.NonDominated = []int{}
	for k := range f.Values {
		r.Points = append(r.Points, ReportPoint{
			Lambda:    append([]float64(nil), f.Lambdas[k]...),
			Values:    append([]float64(nil), f.Values[k]...),
			Dominated: dom[k],
		})
		if !dom[k] {
			r.NonDominated = append(r.NonDominated, k)
		}
	}

	// Metrics.
	if r.Hypervolume, err = Hypervolume(f.Values, ref, maximize); err != nil {
		return nil, fmt.Errorf("lambda: report: %w", err)
	}
	if r.IPMean, err = IPMean(f.Lambdas, f.Values, maximize); err != nil {
		return nil, fmt.Errorf("lambda: report: %w", err)
	}
	if r.Sparsity, err = Sparsity(f.Values); err != nil {
		return nil, fmt.Errorf("lambda: report: %w", err)
	}
	if r.Spacing, err = Spacing(f.Values); err != nil {
		return nil, fmt.Errorf("lambda: report: %w", err)
	}
	return r, nil
}

// Front returns the report's points as a [Front], e.g. to plot a report read
// back from JSON.
func (r *Report) Front() Front {
	f := Front{
		Names:    append([]string(nil), r.Objectives...),
		Maximize: append([]bool(nil), r.Maximize...),
	}
	for _, p := range r.Points {
		f.Lambdas = append(f.Lambdas, append([]float64(nil), p.Lambda...))
		f.Values = append(f.Values, append([]float64(nil), p.Values...))
	}
	return f
}

// WriteCSV writes one header row and one row per point:
//
//	lambda_1, …, lambda_m, <objective names…>, dominated
//
// with numbers in the shortest form that reads back exactly and dominated as
// true or false.
func (r *Report) WriteCSV(w io.Writer) error {
	if len(r.Points) == 0 {
		return fmt.Errorf("lambda: write csv: report has no points")
	}
	m := len(r.Points[0].Lambda)
	cw := csv.NewWriter(w)
	header := make([]string, 0, m+len(r.Objectives)+1)
	for i := range m {
		header = append(header, "lambda_"+strconv.Itoa(i+1))
	}
	header = append(header, r.Objectives...)
	header = append(header, "dominated")
	if err := cw.Write(header); err != nil {
		return fmt.Errorf("lambda: write csv: %w", err)
	}
	for k, p := range r.Points {
		if len(p.Lambda)+len(p.Values)+1 != len(header) {
			return fmt.Errorf("lambda: write csv: point %d has %d weights and %d values, "+
				"header has %d columns", k, len(p.Lambda), len(p.Values), len(header))
		}
		row := make([]string, 0, len(header))
		for _, v := range p.Lambda {
			row = append(row, strconv.FormatFloat(v, 'g', -1, 64))
		}
		for _, v := range p.Values {
			row = append(row, strconv.FormatFloat(v, 'g', -1, 64))
		}
		row = append(row, strconv.FormatBool(p.Dominated))
		if err := cw.Write(row); err != nil {
			return fmt.Errorf("lambda: write csv: %w", err)
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("lambda: write csv: %w", err)
	}
	return nil
}

// WriteJSON writes the report as indented JSON with the field names of the
// struct tags (objectives, maximize, reference, points, non_dominated,
// hypervolume, ip_mean, sparsity, spacing).
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(r); err != nil {
		return fmt.Errorf("lambda: write json: %w", err)
	}
	return nil
}
