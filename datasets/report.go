package datasets

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
)

// Report is what `toolkit data` prints before training: per dimension, the rows read and
// skipped (and why), token-length percentiles, how many examples truncation cuts, and the
// first training example rendered with its loss mask visible.
type Report struct {
	Style        string // template style
	MaxPromptLen int
	MaxLen       int
	EOSToken     string
	Dims         []DimReport
}

// DimReport is one dimension of a [Report].
type DimReport struct {
	Name              string
	Format            string
	Label             string // what orders pku-saferlhf pairs; see [Dimension]
	SFT               string // "preferred": SFT examples of the preferred responses
	Kind              Kind
	Weight            float64
	BatchSize         int
	Train, Eval       int
	Sources           []SourceStats
	Prompt            LengthSummary
	Chosen            LengthSummary // the response, for SFT
	Rejected          LengthSummary
	PromptTruncated   int
	ResponseTruncated int
	// Example is the first training example; nil when the split is empty.
	Example *RenderedExample
}

// LengthSummary summarises token counts (before truncation).
type LengthSummary struct {
	N                  int
	Mean               float64
	P50, P90, P99, Max int
}

// RenderedExample is one example decoded with its loss mask shown: the tokens in the loss
// are wrapped in MaskOpen … MaskClose.
type RenderedExample struct {
	Source        string
	Line          int
	Text          string // the chosen (or only) row
	Rejected      string // the rejected row's response part, for preference data
	Tokens        int    // tokens of the chosen (or only) row
	Targets       int    // of which in the loss
	RejectedToks  int
	RejectedTargs int
}

// Markers around the loss-masked tokens in a rendered example.
const (
	MaskOpen  = "«"
	MaskClose = "»"
)

// Inspect loads cfg with tok and summarises what training would see.
func Inspect(cfg DataConfig, tok Tokenizer) (*Report, error) {
	ds, err := Load(&cfg, tok)
	if err != nil {
		return nil, err
	}
	return NewReport(ds, tok)
}

// NewReport summarises a loaded dataset; tok decodes the first example of each dimension.
func NewReport(ds *Dataset, tok Tokenizer) (*Report, error) {
	r := &Report{Style: ds.Template.Style(), MaxPromptLen: ds.Config.MaxPromptLen,
		MaxLen: ds.Config.MaxLen, EOSToken: ds.Template.EOSToken}
	for _, d := range ds.Dims {
		dr := DimReport{Name: d.Name, Format: d.Format, Label: d.Label, SFT: d.SFT,
			Kind: d.Train.Kind, Weight: d.Weight,
			BatchSize: d.BatchSize, Train: d.Train.Len(), Eval: d.Eval.Len(),
			Sources: d.Stats.Sources, Prompt: summarize(d.Stats.PromptLens),
			Chosen: summarize(d.Stats.ChosenLens), Rejected: summarize(d.Stats.RejectedLens),
			PromptTruncated: d.Stats.PromptTruncated, ResponseTruncated: d.Stats.ResponseTruncated}
		ex, err := renderFirst(d, tok)
		if err != nil {
			return nil, fmt.Errorf("datasets: report: dimension %s: %w", d.Name, err)
		}
		dr.Example = ex
		r.Dims = append(r.Dims, dr)
	}
	return r, nil
}

// summarize computes nearest-rank percentiles.
func summarize(lens []int) LengthSummary {
	if len(lens) == 0 {
		return LengthSummary{}
	}
	s := slices.Clone(lens)
	slices.Sort(s)
	sum := 0
	for _, v := range s {
		sum += v
	}
	rank := func(p float64) int {
		return s[max(int(math.Ceil(p/100*float64(len(s))))-1, 0)]
	}
	return LengthSummary{N: len(s), Mean: float64(sum) / float64(len(s)),
		P50: rank(50), P90: rank(90), P99: rank(99), Max: s[len(s)-1]}
}

// renderFirst decodes the first training example of d through the batch path, so what is
// shown is exactly what the loss mask covers.
func renderFirst(d *Dimension, tok Tokenizer) (*RenderedExample, error) {
	if d.Train.Len() == 0 {
		return nil, nil
	}
	opt := BatchOptions{Side: PadRight}
	var b *Batch
	var err error
	out := &RenderedExample{}
	switch d.Train.Kind {
	case KindSFT:
		e := d.Train.SFT[0]
		out.Source, out.Line = e.Source, e.Line
		b, err = SFTBatch(d.Train.SFT[:1], opt)
	case KindPrompt:
		e := d.Train.Prompts[0]
		out.Source, out.Line = e.Source, e.Line
		b, err = PromptBatch(d.Train.Prompts[:1], opt)
	default:
		e := d.Train.Pairs[0]
		out.Source, out.Line = e.Source, e.Line
		b, err = PreferenceBatch(d.Train.Pairs[:1], opt)
	}
	if err != nil {
		return nil, err
	}
	out.Text, out.Tokens, out.Targets = renderRow(b, 0, 0, tok)
	if b.Pairs == 1 {
		out.Rejected, out.RejectedToks, out.RejectedTargs = renderRow(b, 1, b.PromptLens[1], tok)
	}
	return out, nil
}

// renderRow decodes row i from token `from` on, wrapping runs of loss-masked tokens in
// MaskOpen … MaskClose. Special tokens are kept visible. The row is decoded as a whole and
// the markers placed where the decoded prefixes end, so that decoders which treat the first
// token specially (e.g. stripping a leading space) show the text as the model reads it; when
// a prefix does not decode to a prefix of the whole, runs are decoded one by one instead.
func renderRow(b *Batch, i, from int, tok Tokenizer) (text string, tokens, targets int) {
	ids, attn, loss := b.Row(i)
	var real []int // attended tokens
	var inLoss []bool
	for t := range ids {
		if attn[t] == 1 {
			real = append(real, int(ids[t]))
			inLoss = append(inLoss, loss[t] == 1)
			if loss[t] == 1 {
				targets++
			}
		}
	}
	tokens = len(real)

	// Boundaries: from, every change of mask, the end.
	cuts := []int{from}
	for t := from + 1; t < len(real); t++ {
		if inLoss[t] != inLoss[t-1] {
			cuts = append(cuts, t)
		}
	}
	cuts = append(cuts, len(real))
	full := tok.Decode(real, false)
	offsets := make([]int, len(cuts))
	whole := true
	for k, c := range cuts {
		pre := tok.Decode(real[:c], false)
		if !strings.HasPrefix(full, pre) || (k > 0 && len(pre) < offsets[k-1]) {
			whole = false
			break
		}
		offsets[k] = len(pre)
	}

	var sb strings.Builder
	for k := 0; k+1 < len(cuts); k++ {
		var s string
		if whole {
			s = full[offsets[k]:offsets[k+1]]
		} else {
			s = tok.Decode(real[cuts[k]:cuts[k+1]], false)
		}
		if cuts[k] < len(real) && inLoss[cuts[k]] {
			s = MaskOpen + s + MaskClose
		}
		sb.WriteString(s)
	}
	return sb.String(), tokens, targets
}

// Write prints the report as text. Only the first example of each dimension is printed.
func (r *Report) Write(w io.Writer) error {
	ew := &errWriter{w: w}
	limit := func(n int) string {
		if n == 0 {
			return "none"
		}
		return fmt.Sprint(n)
	}
	ew.printf("template: %s, eos_token: %q, max_prompt_len: %s, max_len: %s\n",
		r.Style, r.EOSToken, limit(r.MaxPromptLen), limit(r.MaxLen))
	for i, d := range r.Dims {
		ew.printf("\ndimension %d: %s (%s, weight %g, batch %d)\n", i, d.Name, d.origin(),
			d.Weight, d.BatchSize)
		ew.printf("  examples: %d train, %d eval\n", d.Train, d.Eval)
		for _, s := range d.Sources {
			ew.printf("  %s [%s]: %d rows, %d kept, %d invalid, %d filtered\n",
				s.File, s.Split, s.Rows, s.Kept, total(s.Invalid), total(s.Filtered))
			for _, c := range s.Invalid {
				ew.printf("    invalid  %-45s %5d  first at %v\n", c.Reason, c.Count, c.Lines)
			}
			for _, c := range s.Filtered {
				ew.printf("    filtered %-45s %5d  first at %v\n", c.Reason, c.Count, c.Lines)
			}
		}
		ew.printf("  %-26s %6s %8s %6s %6s %6s %6s\n", "tokens (before truncation)", "n", "mean",
			"p50", "p90", "p99", "max")
		writeLengths(ew, "prompt", d.Prompt)
		if d.Kind == KindSFT {
			writeLengths(ew, "response", d.Chosen)
		} else if d.Kind == KindPreference {
			writeLengths(ew, "chosen", d.Chosen)
			writeLengths(ew, "rejected", d.Rejected)
		}
		ew.printf("  truncated: %d prompts (max_prompt_len), %d with a response cut (max_len)\n",
			d.PromptTruncated, d.ResponseTruncated)
		if e := d.Example; e != nil {
			ew.printf("  first training example (%s), %s…%s = tokens in the loss:\n",
				position{file: e.Source, line: e.Line}, MaskOpen, MaskClose)
			ew.printf("  -- %d tokens, %d in the loss --\n%s\n", e.Tokens, e.Targets,
				indent(e.Text))
			if d.Kind == KindPreference {
				ew.printf("  -- rejected: %d tokens, %d in the loss (same prompt) --\n%s\n",
					e.RejectedToks, e.RejectedTargs, indent(e.Rejected))
			}
		}
	}
	return ew.err
}

// origin says where a dimension's examples come from, e.g. "format pku-saferlhf, label
// length, prefer lower, sft examples (preferred responses)".
func (d *DimReport) origin() string {
	s := "format " + d.Format
	if d.Label != "" {
		s += ", label " + d.Label
	}
	s += fmt.Sprintf(", %s examples", d.Kind)
	if d.SFT != "" {
		s += " (" + d.SFT + " responses)"
	}
	return s
}

func writeLengths(ew *errWriter, name string, s LengthSummary) {
	ew.printf("    %-24s %6d %8.1f %6d %6d %6d %6d\n", name, s.N, s.Mean, s.P50, s.P90, s.P99,
		s.Max)
}

func indent(s string) string {
	return "    | " + strings.ReplaceAll(s, "\n", "\n    | ")
}

// errWriter keeps the first write error so that Write can print without checking each line.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) printf(format string, args ...any) {
	if e.err == nil {
		_, e.err = fmt.Fprintf(e.w, format, args...)
	}
}
