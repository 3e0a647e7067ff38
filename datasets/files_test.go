package datasets

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/parquet-go/parquet-go"
)

// prefRows is a small generic preference file: line 3 is blank, line 5 is malformed and
// line 6 has identical responses.
const prefRows = `{"prompt": "p1", "chosen": "good one", "rejected": "bad one"}
{"prompt": "p2", "chosen": "good two", "rejected": "bad two"}

{"prompt": "p4", "chosen": "good four", "rejected": "bad four"}
{"prompt": "p5", "chosen": 
{"prompt": "p6", "chosen": "same", "rejected": "same"}
`

func TestContainersAgree(t *testing.T) {
	dir := t.TempDir()
	good := []struct{ Prompt, Chosen, Rejected string }{
		{"p1", "good one", "bad one"}, {"p2", "good two", "bad two"},
		{"p4", "good four", "bad four"},
	}
	var arr strings.Builder
	arr.WriteString("[\n")
	for i, r := range good {
		if i > 0 {
			arr.WriteString(",\n")
		}
		fmt.Fprintf(&arr, "  {\"prompt\": %q,\n   \"chosen\": %q, \"rejected\": %q}", r.Prompt,
			r.Chosen, r.Rejected)
	}
	arr.WriteString("\n]\n")
	type pq struct {
		Prompt   string `parquet:"prompt"`
		Chosen   string `parquet:"chosen"`
		Rejected string `parquet:"rejected"`
	}
	var buf bytes.Buffer
	rows := make([]pq, len(good))
	for i, r := range good {
		rows[i] = pq(r)
	}
	if err := parquet.Write(&buf, rows); err != nil {
		t.Fatal(err)
	}
	pqPath := filepath.Join(dir, "rows.parquet")
	if err := os.WriteFile(pqPath, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	jsonl := strings.Join(strings.Split(prefRows, "\n")[:4], "\n")
	cases := []struct {
		name      string
		path      string
		wantLines []int
	}{
		{"jsonl", writeFile(t, dir, "a.jsonl", jsonl), []int{1, 2, 4}},
		{"jsonl.gz", writeFile(t, dir, "a.jsonl.gz", jsonl), []int{1, 2, 4}},
		{"json array", writeFile(t, dir, "a.json", arr.String()), []int{2, 4, 6}},
		{"json array gz", writeFile(t, dir, "b.json.gz", arr.String()), []int{2, 4, 6}},
		{"parquet", pqPath, []int{1, 2, 3}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := &DataConfig{Dimensions: []DimensionConfig{{Name: "d", Source: tc.path}},
				Template: TemplateConfig{Style: StylePlain, Separator: "|"}}
			ds := mustLoad(t, cfg, byteTok{})
			d := ds.Dims[0]
			if d.Format != FormatPreference {
				t.Errorf("detected format %q, want %q", d.Format, FormatPreference)
			}
			if d.Train.Len() != len(good) {
				t.Fatalf("%d examples, want %d", d.Train.Len(), len(good))
			}
			for i, e := range d.Train.Pairs {
				tok := byteTok{}
				got := []string{tok.Decode(e.Prompt, false), tok.Decode(e.Chosen, false),
					tok.Decode(e.Rejected, false)}
				want := []string{"<s>" + good[i].Prompt, "|" + good[i].Chosen,
					"|" + good[i].Rejected}
				if fmt.Sprint(got) != fmt.Sprint(want) {
					t.Errorf("example %d: got %q, want %q", i, got, want)
				}
				if e.Line != tc.wantLines[i] {
					t.Errorf("example %d: line %d, want %d", i, e.Line, tc.wantLines[i])
				}
			}
		})
	}
}

func TestInvalidRows(t *testing.T) {
	dir := t.TempDir()
	p := writeFile(t, dir, "rows.jsonl", prefRows)
	cfg := &DataConfig{Dimensions: []DimensionConfig{{Name: "d", Source: p}}}

	// Without skip_invalid the first bad row is an error naming file and line.
	_, err := Load(cfg, byteTok{})
	var rowErr *InvalidRowError
	if !errors.As(err, &rowErr) {
		t.Fatalf("Load error %v, want an *InvalidRowError", err)
	}
	if rowErr.Line != 5 || rowErr.Reason != ReasonMalformed || rowErr.File != p {
		t.Errorf("error at %s:%d (%s), want %s:5 (%s)", rowErr.File, rowErr.Line,
			rowErr.Reason, p, ReasonMalformed)
	}
	if !strings.Contains(err.Error(), p+":5") {
		t.Errorf("message %q does not name %s:5", err, p)
	}

	// With skip_invalid the rows are counted with their lines, and the rest load.
	cfg.SkipInvalid = true
	ds := mustLoad(t, cfg, byteTok{})
	s := ds.Dims[0].Stats.Sources[0]
	if s.Rows != 5 || s.Kept != 3 {
		t.Errorf("rows %d kept %d, want 5 and 3", s.Rows, s.Kept)
	}
	want := map[Reason][]int{ReasonMalformed: {5}, ReasonIdentical: {6}}
	if len(s.Invalid) != len(want) {
		t.Fatalf("invalid reasons %v, want %v", s.Invalid, want)
	}
	for _, c := range s.Invalid {
		if fmt.Sprint(c.Lines) != fmt.Sprint(want[c.Reason]) || c.Count != 1 {
			t.Errorf("reason %q: count %d lines %v, want 1 at %v", c.Reason, c.Count, c.Lines,
				want[c.Reason])
		}
	}
}

func TestBrokenFiles(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name, file, content, wantIn string
	}{
		{"missing", "", "", "no such file"},
		{"array syntax", "a.json", "[\n{\"prompt\": \"x\"},\n{\"prompt\": }\n]", "a.json:3"},
		{"array unclosed", "b.json", "[\n{\"prompt\": \"x\"}\n", "b.json:"},
		{"parquet garbage", "c.parquet", "PAR1 this is not parquet", "c.parquet"},
		{"bad gzip", "d.jsonl.gz", "", "gzip"},
		{"undetectable", "e.jsonl", `{"question": "q", "answer": "a"}`, "question"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, "absent.jsonl")
			if tc.file != "" {
				path = writeFile(t, dir, tc.file, tc.content)
			}
			if tc.name == "bad gzip" {
				if err := os.WriteFile(path, []byte{0x1f, 0x8b, 1, 2, 3}, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			cfg := &DataConfig{Dimensions: []DimensionConfig{{Name: "d", Source: path}},
				SkipInvalid: true}
			_, err := Load(cfg, byteTok{})
			if err == nil || !strings.Contains(err.Error(), tc.wantIn) {
				t.Fatalf("Load error %v, want one containing %q", err, tc.wantIn)
			}
		})
	}
}

func TestParseJSONLine(t *testing.T) {
	cases := []struct {
		line string
		ok   bool
	}{
		{`{"prompt": "p"}`, true},
		{"  {\"prompt\": \"p\"}\r\n", true},
		{`{"a": 1} {"b": 2}`, false},
		{`{"a": 1}]`, false},
		{`[{"a": 1}]`, false},
		{`null`, false},
		{`"text"`, false},
		{`{"a": }`, false},
	}
	for _, tc := range cases {
		r := parseJSONLine([]byte(tc.line))
		if (r.err == nil) != tc.ok {
			t.Errorf("parseJSONLine(%q): err %v, want ok=%v", tc.line, r.err, tc.ok)
		}
	}
}
