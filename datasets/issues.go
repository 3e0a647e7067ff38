package datasets

import (
	"fmt"
	"log/slog"
	"sort"
)

// Reason says why a row did not become an example. Invalid reasons are errors unless
// skip_invalid is set; filter reasons are options doing their job. Both are counted.
type Reason string

// Reasons a row is invalid.
const (
	ReasonMalformed      Reason = "malformed row"
	ReasonMissingField   Reason = "missing or mistyped field"
	ReasonEmptyPrompt    Reason = "empty prompt"
	ReasonEmptyResponse  Reason = "empty response"
	ReasonIdentical      Reason = "identical chosen and rejected"
	ReasonLabelRange     Reason = "label out of range"
	ReasonTie            Reason = "label is a tie (set drop_ties to drop ties)"
	ReasonPromptsDiffer  Reason = "chosen and rejected prompts differ"
	ReasonNoAssistant    Reason = "no assistant turn"
	ReasonTemplateFailed Reason = "template failed"
)

// Reasons a row is filtered out by an option.
const (
	FilterTie        Reason = "tie (drop_ties)"
	FilterSafetySame Reason = "safety flags equal (only_safety_differs)"
)

// maxLinesKept is how many line numbers a tally keeps per reason.
const maxLinesKept = 5

// InvalidRowError is a row that cannot become an example. Its message names the file and line
// (or Parquet row) but never quotes the row's text, which may be harmful.
type InvalidRowError struct {
	File   string // the file as the config names it
	Line   int    // 1-based line (JSONL, JSON) or row (Parquet)
	Row    bool   // Line is a Parquet row number
	Reason Reason
	Detail string // e.g. the field at fault
	Err    error  // underlying error, if any
}

// Error writes "file:line: reason: detail".
func (e *InvalidRowError) Error() string {
	msg := fmt.Sprintf("datasets: %s: %s", position{e.File, e.Line, e.Row}, e.Reason)
	if e.Detail != "" {
		msg += ": " + e.Detail
	}
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Unwrap returns the underlying error, if any.
func (e *InvalidRowError) Unwrap() error { return e.Err }

// rowProblem is what a row parser returns for a row it cannot use.
type rowProblem struct {
	reason Reason
	detail string
	err    error
	filter bool // an option filtered the row; not an error
}

func invalid(reason Reason, detail string) *rowProblem {
	return &rowProblem{reason: reason, detail: detail}
}

func filtered(reason Reason) *rowProblem {
	return &rowProblem{reason: reason, filter: true}
}

func (p *rowProblem) at(pos position) *InvalidRowError {
	return &InvalidRowError{File: pos.file, Line: pos.line, Row: pos.row,
		Reason: p.reason, Detail: p.detail, Err: p.err}
}

// ReasonCount is how many rows one reason removed, with the first few line numbers.
type ReasonCount struct {
	Reason Reason `json:"reason"`
	Count  int    `json:"count"`
	Lines  []int  `json:"lines"`
}

// tally counts rows per reason.
type tally map[Reason]*ReasonCount

func (t tally) add(r Reason, line int) {
	c := t[r]
	if c == nil {
		c = &ReasonCount{Reason: r}
		t[r] = c
	}
	c.Count++
	if len(c.Lines) < maxLinesKept {
		c.Lines = append(c.Lines, line)
	}
}

// sorted lists the counts, largest first, then by reason.
func (t tally) sorted() []ReasonCount {
	out := make([]ReasonCount, 0, len(t))
	for _, c := range t {
		out = append(out, *c)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Count != out[j].Count {
			return out[i].Count > out[j].Count
		}
		return out[i].Reason < out[j].Reason
	})
	return out
}

func total(cs []ReasonCount) int {
	n := 0
	for _, c := range cs {
		n += c.Count
	}
	return n
}

// logSkipped logs, once per source, the rows skipped as invalid or filtered.
func logSkipped(dim string, s SourceStats) {
	if n := total(s.Invalid); n > 0 {
		slog.Warn("datasets: skipped invalid rows", "dimension", dim, "file", s.File,
			"skipped", n, "of", s.Rows, "reasons", reasonSummary(s.Invalid))
	}
	if n := total(s.Filtered); n > 0 {
		slog.Info("datasets: filtered rows", "dimension", dim, "file", s.File,
			"filtered", n, "of", s.Rows, "reasons", reasonSummary(s.Filtered))
	}
}

func reasonSummary(cs []ReasonCount) string {
	s := ""
	for i, c := range cs {
		if i > 0 {
			s += "; "
		}
		s += fmt.Sprintf("%s: %d (first at %v)", c.Reason, c.Count, c.Lines)
	}
	return s
}
