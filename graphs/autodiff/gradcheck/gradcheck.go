// Package gradcheck checks the adapter gradients of an exported model against finite
// differences: it converts the model to float64, inserts the SVD-LoRA adapter with random
// non-zero parameters, builds a token-level cross-entropy loss, differentiates it with
// package autodiff, and compares every sampled gradient entry with a central difference of
// the loss computed by ONNX Runtime. It is what `toolkit gradcheck --model EXPORT_DIR` runs;
// people adding an architecture run it first.
//
// Glossary:
//   - parameter group: all adapter tensors of one kind across layers (U, V, sigma, s).
//   - central difference: D(h) = (L(θ + h·eᵢ) − L(θ − h·eᵢ)) / 2h, the numeric derivative
//     along coordinate i, with error O(h²) plus rounding of order ε·|L|/h; the check uses
//     the Richardson extrapolation (4·D(h/2) − D(h))/3, whose error is O(h⁴).
//   - absolute error: |analytic − numeric| for one entry.
//   - relative error: |analytic − numeric| / max(|analytic|, |numeric|, floor), the floor being
//     10⁻³ times the root mean square of the group's gradient, so that entries whose
//     gradient is nearly zero do not report noise as large relative errors.
package gradcheck

import (
	"fmt"
	"io"
	"math"
	"strings"
	"text/tabwriter"
)

// Options configure a check; zero values take the defaults in brackets.
type Options struct {
	// ModelFile is the graph's file name inside the export folder ["model.onnx"].
	ModelFile string
	// Targets are the adapted layers' patterns [lora.DefaultTargets of the model's
	// model_type metadata, or of every family when absent].
	Targets []string
	// Rank is k [4]; Dims is m [2]; Alpha is α [2·Rank].
	Rank, Dims int
	Alpha      float64
	// Seed seeds the inputs, λ, and the adapter values [1].
	Seed uint64
	// Batch and Seq are the token batch's shape [2 × 8]. Row 0 is unpadded; the other rows
	// are left-padded by two tokens when Seq > 3.
	Batch, Seq int
	// Vocab bounds the random token ids [the logits' last dimension].
	Vocab int
	// Samples is the number of entries checked per adapter tensor [4]; σ and s are checked
	// whole when smaller.
	Samples int
	// Step is the finite-difference step h [1e-4].
	Step float64
	// Tolerance is the largest relative error that passes [1e-5].
	Tolerance float64
	// Threads is ONNX Runtime's intra-op thread count [1].
	Threads int
}

func (o *Options) defaults() {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&o.Rank, 4)
	def(&o.Dims, 2)
	def(&o.Batch, 2)
	def(&o.Seq, 8)
	def(&o.Samples, 4)
	def(&o.Threads, 1)
	if o.ModelFile == "" {
		o.ModelFile = "model.onnx"
	}
	if o.Alpha == 0 {
		o.Alpha = 2 * float64(o.Rank)
	}
	if o.Seed == 0 {
		o.Seed = 1
	}
	if o.Step == 0 {
		o.Step = 1e-4
	}
	if o.Tolerance == 0 {
		o.Tolerance = 1e-5
	}
}

// Group is the result for one parameter group.
type Group struct {
	// Name is U, V, sigma or s.
	Name string
	// Tensors is the number of adapter tensors in the group; Checked the entries compared.
	Tensors, Checked int
	// MaxAbs and MaxRel are the largest absolute and relative errors (see the glossary).
	MaxAbs, MaxRel float64
	// Worst names the entry with the largest relative error ("tensor[index]").
	Worst string
}

// Report is the outcome of [Run].
type Report struct {
	// Model is the checked graph's path; Family its model_type metadata.
	Model, Family string
	// Layers is the number of adapted layers; Params the adapter's parameter count.
	Layers int
	Params int64
	// Loss is the cross-entropy at the random adapter values.
	Loss float64
	// Groups hold the errors per parameter group, in the order U, V, sigma, s.
	Groups []Group
	// Tolerance is the relative error that passes.
	Tolerance float64
}

// MaxRel returns the largest relative error over all groups.
func (r *Report) MaxRel() float64 {
	worst := 0.0
	for _, g := range r.Groups {
		worst = math.Max(worst, g.MaxRel)
	}
	return worst
}

// OK reports whether every relative error is within the tolerance (and finite).
func (r *Report) OK() bool {
	m := r.MaxRel()
	return m <= r.Tolerance && !math.IsNaN(m)
}

// Write prints the report as a table, one line per parameter group.
func (r *Report) Write(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "gradcheck %s (%s): %d adapted layers, %d adapter parameters, loss %.6g\n",
		r.Model, r.Family, r.Layers, r.Params, r.Loss)
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "group\ttensors\tchecked\tmax abs err\tmax rel err\tworst entry")
	for _, g := range r.Groups {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%.3g\t%.3g\t%s\n", g.Name, g.Tensors, g.Checked, g.MaxAbs,
			g.MaxRel, g.Worst)
	}
	tw.Flush()
	verdict := "ok"
	if !r.OK() {
		verdict = "FAILED"
	}
	fmt.Fprintf(&b, "result: %s (max rel err %.3g, tolerance %.3g)\n", verdict, r.MaxRel(),
		r.Tolerance)
	_, err := io.WriteString(w, b.String())
	return err
}
