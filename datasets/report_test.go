package datasets

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
)

func TestInspect(t *testing.T) {
	dir := t.TempDir()
	cfgPath := writeFile(t, dir, "data.yaml", fmt.Sprintf(`
dimensions:
  - {name: helpful, source: %q, label: better_response_id}
  - {name: harmless, source: %q, label: safer_response_id}
  - {name: hh-harmless, source: %q, weight: 0.5}
template: {style: hh, eos_token: "</s>"}
max_prompt_len: 64
max_len: 256
skip_invalid: true
eval_fraction: 0.1
seed: 1
`, pkuFile(t), pkuFile(t), hhFile(t)))
	cfg, err := LoadDataConfig(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	tok := storiesTok(t)
	rep, err := Inspect(*cfg, tok)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Dims) != 3 {
		t.Fatalf("%d dimensions", len(rep.Dims))
	}
	hh := rep.Dims[2]
	if hh.Format != FormatHH || hh.Train+hh.Eval != 2303 || total(hh.Sources[0].Invalid) != 9 {
		t.Errorf("hh: format %s, %d+%d examples, invalid %v", hh.Format, hh.Train, hh.Eval,
			hh.Sources[0].Invalid)
	}
	for _, d := range rep.Dims {
		if d.Prompt.N != d.Train+d.Eval || d.Prompt.P50 > d.Prompt.P90 || d.Prompt.P90 > d.Prompt.Max {
			t.Errorf("%s: prompt lengths %+v", d.Name, d.Prompt)
		}
		if d.PromptTruncated == 0 || d.ResponseTruncated == 0 {
			t.Errorf("%s: expected some truncation at 64/256 tokens, got %d/%d", d.Name,
				d.PromptTruncated, d.ResponseTruncated)
		}
		e := d.Example
		if e == nil || e.Targets == 0 || e.Targets >= e.Tokens || e.Tokens > 256 {
			t.Fatalf("%s: first example %+v", d.Name, e)
		}
		// The brackets hold exactly the response: its text ends with the EOS or was cut.
		open := strings.Index(e.Text, MaskOpen)
		if open < 0 || !strings.HasSuffix(e.Text, MaskClose) ||
			strings.Count(e.Text, MaskOpen) != 1 || !strings.HasSuffix(e.Text[:open], "Assistant:") {
			t.Errorf("%s: loss mask not shown around the response alone", d.Name)
		}
	}

	var buf bytes.Buffer
	if err := rep.Write(&buf); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{
		"dimension 0: helpful (format pku-saferlhf",
		"dimension 2: hh-harmless (format hh-rlhf, preference examples, weight 0.5",
		"2312 rows, 2303 kept, 9 invalid, 0 filtered",
		"first at [1255 1689 1951 1953 2037]",
		"max_prompt_len: 64, max_len: 256",
		"p50",
		MaskOpen,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	// One example per dimension: one chosen block and one rejected block each.
	if n := strings.Count(out, "-- rejected:"); n != 3 {
		t.Errorf("%d rejected blocks, want 3", n)
	}
}

func TestSummarize(t *testing.T) {
	cases := []struct {
		in   []int
		want LengthSummary
	}{
		{nil, LengthSummary{}},
		{[]int{5}, LengthSummary{N: 1, Mean: 5, P50: 5, P90: 5, P99: 5, Max: 5}},
		{[]int{10, 1, 2, 3, 4, 5, 6, 7, 8, 9},
			LengthSummary{N: 10, Mean: 5.5, P50: 5, P90: 9, P99: 10, Max: 10}},
	}
	for _, tc := range cases {
		if got := summarize(tc.in); got != tc.want {
			t.Errorf("summarize(%v) = %+v, want %+v", tc.in, got, tc.want)
		}
	}
}
