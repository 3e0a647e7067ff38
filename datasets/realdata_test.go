package datasets

import (
	"bufio"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
)

// pkuRaw is the part of a PKU-SafeRLHF row the tests compare against.
type pkuRaw struct {
	Prompt    string `json:"prompt" parquet:"prompt"`
	Response0 string `json:"response_0" parquet:"response_0"`
	Response1 string `json:"response_1" parquet:"response_1"`
	Better    int    `json:"better_response_id" parquet:"better_response_id"`
	Safer     int    `json:"safer_response_id" parquet:"safer_response_id"`
	Safe0     bool   `json:"is_response_0_safe" parquet:"is_response_0_safe"`
	Safe1     bool   `json:"is_response_1_safe" parquet:"is_response_1_safe"`
	Severity0 int    `json:"response_0_severity_level" parquet:"response_0_severity_level"`
	Severity1 int    `json:"response_1_severity_level" parquet:"response_1_severity_level"`
}

func (r pkuRaw) response(i int) string {
	if i == 0 {
		return r.Response0
	}
	return r.Response1
}

func readPKURaw(t *testing.T) []pkuRaw {
	t.Helper()
	f, err := os.Open(pkuFile(t))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var rows []pkuRaw
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var r pkuRaw
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatal(err)
		}
		rows = append(rows, r)
	}
	return rows
}

func pkuConfig(t *testing.T) *DataConfig {
	return &DataConfig{
		Dimensions: []DimensionConfig{
			{Name: "helpful", Source: pkuFile(t), Label: "better_response_id"},
			{Name: "harmless", Source: pkuFile(t), Label: "safer_response_id"},
		},
		Template: TemplateConfig{Style: StyleHH, EOSToken: "</s>"},
	}
}

func TestPKUReal(t *testing.T) {
	raw := readPKURaw(t)
	if len(raw) != 190 {
		t.Fatalf("%d raw rows, want 190 (see the data README)", len(raw))
	}
	ds := mustLoad(t, pkuConfig(t), byteTok{})
	tok := byteTok{}
	disagree := 0
	for di, d := range ds.Dims {
		if d.Format != FormatPKU || d.Train.Len() != 190 || d.Stats.Sources[0].Rows != 190 {
			t.Fatalf("%s: format %s, %d examples of %d rows", d.Name, d.Format, d.Train.Len(),
				d.Stats.Sources[0].Rows)
		}
		for i, e := range d.Train.Pairs {
			r := raw[i]
			label := []int{r.Better, r.Safer}[di]
			wantPrompt := "<s>\n\nHuman: " + r.Prompt + "\n\nAssistant:"
			if e.Line != i+1 || tok.Decode(e.Prompt, false) != wantPrompt {
				t.Fatalf("%s line %d: prompt differs from the raw row", d.Name, e.Line)
			}
			if tok.Decode(e.Chosen, false) != " "+r.response(label)+"</s>" ||
				tok.Decode(e.Rejected, false) != " "+r.response(1-label)+"</s>" {
				t.Fatalf("%s line %d: pair not ordered by %s", d.Name, e.Line, []string{
					"better_response_id", "safer_response_id"}[di])
			}
			if di == 1 && !slicesEqual(e.Chosen, ds.Dims[0].Train.Pairs[i].Chosen) {
				disagree++
			}
		}
	}
	if disagree != 35 {
		t.Errorf("helpful and harmless disagree on %d pairs, the README says 35", disagree)
	}
}

func slicesEqual(a, b []int) bool { return fmt.Sprint(a) == fmt.Sprint(b) }

func TestPKUFilters(t *testing.T) {
	raw := readPKURaw(t)
	cases := []struct {
		name         string
		dim          DimensionConfig
		kept, filter int
		check        func(r pkuRaw, chosenIs int) bool
	}{
		{"only safety differs", DimensionConfig{Label: "safer_response_id",
			OnlySafetyDiffers: true}, 23, 167,
			func(r pkuRaw, c int) bool { return []bool{r.Safe0, r.Safe1}[c] }},
		{"safety flag label, ties dropped", DimensionConfig{Label: "is_response_{}_safe",
			DropTies: true}, 23, 167,
			func(r pkuRaw, c int) bool { return c == r.Safer }},
		{"severity label", DimensionConfig{Label: "response_{}_severity_level", Prefer: "lower",
			DropTies: true}, 34, 156,
			func(r pkuRaw, c int) bool {
				return []int{r.Severity0, r.Severity1}[c] < []int{r.Severity0, r.Severity1}[1-c]
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.dim.Name, tc.dim.Source = "d", pkuFile(t)
			cfg := &DataConfig{Dimensions: []DimensionConfig{tc.dim},
				Template: TemplateConfig{Style: StylePlain}}
			ds := mustLoad(t, cfg, byteTok{})
			d := ds.Dims[0]
			s := d.Stats.Sources[0]
			if s.Kept != tc.kept || total(s.Filtered) != tc.filter || len(s.Invalid) != 0 {
				t.Fatalf("kept %d filtered %v invalid %v; want %d and %d", s.Kept, s.Filtered,
					s.Invalid, tc.kept, tc.filter)
			}
			for _, e := range d.Train.Pairs {
				r := raw[e.Line-1]
				c := 0
				if (byteTok{}).Decode(e.Chosen, true) == r.Response1 {
					c = 1
				}
				if !tc.check(r, c) {
					t.Errorf("line %d: chosen response %d breaks the label rule", e.Line, c)
				}
			}
		})
	}
}

func TestPKUContainers(t *testing.T) {
	raw := readPKURaw(t)
	dir := t.TempDir()

	// The same rows as a JSON array and as Parquet give the same examples.
	arr, err := json.MarshalIndent(raw, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	jsonPath := writeFile(t, dir, "pku.json.gz", string(arr))
	pqPath := writeParquet(t, dir, "pku.parquet", raw)
	want := mustLoad(t, pkuConfig(t), byteTok{})
	for _, path := range []string{jsonPath, pqPath} {
		cfg := pkuConfig(t)
		cfg.Dimensions[0].Source, cfg.Dimensions[1].Source = path, path
		got := mustLoad(t, cfg, byteTok{})
		for di := range got.Dims {
			g, w := got.Dims[di].Train.Pairs, want.Dims[di].Train.Pairs
			if len(g) != len(w) {
				t.Fatalf("%s: %d examples, want %d", path, len(g), len(w))
			}
			for i := range g {
				if !slicesEqual(g[i].Prompt, w[i].Prompt) || !slicesEqual(g[i].Chosen, w[i].Chosen) ||
					!slicesEqual(g[i].Rejected, w[i].Rejected) {
					t.Fatalf("%s: example %d differs from the JSONL one", path, i)
				}
			}
			if strings.HasSuffix(path, ".parquet") && g[189].Line != 190 {
				t.Errorf("parquet: last row numbered %d, want 190", g[189].Line)
			}
		}
	}
}

func TestPKUStoriesTokenizer(t *testing.T) {
	tok := storiesTok(t)
	raw := readPKURaw(t)
	ds := mustLoad(t, pkuConfig(t), tok)
	for di, d := range ds.Dims {
		if d.Train.Len() != 190 {
			t.Fatalf("%s: %d examples", d.Name, d.Train.Len())
		}
		for _, e := range d.Train.Pairs {
			r := raw[e.Line-1]
			label := []int{r.Better, r.Safer}[di]
			if e.Prompt[0] != 1 || e.Chosen[len(e.Chosen)-1] != 2 || e.Rejected[len(e.Rejected)-1] != 2 {
				t.Fatalf("line %d: want BOS 1 first and EOS 2 last", e.Line)
			}
			prompt := "\n\nHuman: " + r.Prompt + "\n\nAssistant:"
			if tok.Decode(e.Prompt, true) != prompt {
				t.Fatalf("line %d: decoded prompt differs from the raw prompt", e.Line)
			}
			full := tok.Decode(append(append([]int{}, e.Prompt...), e.Chosen...), true)
			if full != prompt+" "+r.response(label) {
				t.Fatalf("line %d: decoded prompt+chosen differs from the raw text", e.Line)
			}
		}
	}
}

func TestHHReal(t *testing.T) {
	cfg := &DataConfig{Dimensions: []DimensionConfig{{Name: "harmless", Source: hhFile(t)}},
		Template: TemplateConfig{Style: StyleHH, EOSToken: "</s>"}}
	_, err := Load(cfg, byteTok{})
	var rowErr *InvalidRowError
	if !errors.As(err, &rowErr) || rowErr.Line != 87 || rowErr.Reason != ReasonEmptyResponse {
		t.Fatalf("Load without skip_invalid: %v, want an empty response at line 87", err)
	}

	cfg.SkipInvalid = true
	ds := mustLoad(t, cfg, byteTok{})
	d := ds.Dims[0]
	s := d.Stats.Sources[0]
	if d.Format != FormatHH || s.Rows != 2312 || s.Kept != 2303 {
		t.Fatalf("format %s, rows %d, kept %d; want %s, 2312, 2303", d.Format, s.Rows, s.Kept,
			FormatHH)
	}
	want := map[Reason]string{ReasonPromptsDiffer: "[1255 1689 1951 1953 2037]",
		ReasonEmptyResponse: "[87 517 926 1104]"}
	for _, c := range s.Invalid {
		if want[c.Reason] != fmt.Sprint(c.Lines) {
			t.Errorf("%s at %v, want %s", c.Reason, c.Lines, want[c.Reason])
		}
	}

	// Every example renders back to the raw transcript: prompt + chosen == raw chosen.
	f, err := os.Open(hhFile(t))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	var rawRows []struct{ Chosen, Rejected string }
	dec := json.NewDecoder(zr)
	for dec.More() {
		var r struct{ Chosen, Rejected string }
		if err := dec.Decode(&r); err != nil {
			t.Fatal(err)
		}
		rawRows = append(rawRows, r)
	}
	multi := 0
	tok := byteTok{}
	for _, e := range d.Train.Pairs {
		r := rawRows[e.Line-1]
		if tok.Decode(e.Prompt, true)+tok.Decode(e.Chosen, true) != r.Chosen ||
			tok.Decode(e.Prompt, true)+tok.Decode(e.Rejected, true) != r.Rejected {
			t.Fatalf("line %d: prompt+response does not give the raw transcripts back", e.Line)
		}
		if strings.Count(tok.Decode(e.Prompt, true), hhHuman) > 1 {
			multi++
		}
	}
	if multi < 1500 {
		t.Errorf("%d multi-turn prompts, want most of 2303 (662 rows are single-turn)", multi)
	}
}

func TestEvalSplit(t *testing.T) {
	cfg := pkuConfig(t)
	cfg.EvalFraction = 0.2
	cfg.Seed = 5
	cfg.Dimensions[1].OnlySafetyDiffers = true
	ds := mustLoad(t, cfg, byteTok{})
	helpful, harmless := ds.Dims[0], ds.Dims[1]
	if n := helpful.Eval.Len(); n < 20 || n > 60 || n+helpful.Train.Len() != 190 {
		t.Fatalf("helpful: %d eval + %d train", n, helpful.Train.Len())
	}
	// No prompt is trained on in one dimension and evaluated in another.
	evalLines := map[int]bool{}
	for _, e := range helpful.Eval.Pairs {
		evalLines[e.Line] = true
	}
	for _, e := range harmless.Train.Pairs {
		if evalLines[e.Line] {
			t.Errorf("line %d: harmless trains on a helpful eval row", e.Line)
		}
	}
	for _, e := range harmless.Eval.Pairs {
		if !evalLines[e.Line] {
			t.Errorf("line %d: harmless evaluates on a helpful training row", e.Line)
		}
	}

	// A separate eval file is read with each dimension's own label.
	cfg = pkuConfig(t)
	cfg.EvalFile = pkuFile(t)
	ds = mustLoad(t, cfg, byteTok{})
	for _, d := range ds.Dims {
		if d.Train.Len() != 190 || d.Eval.Len() != 190 || d.Stats.Sources[1].Split != "eval" {
			t.Errorf("%s: %d train %d eval", d.Name, d.Train.Len(), d.Eval.Len())
		}
		if !slicesEqual(d.Eval.Pairs[7].Chosen, d.Train.Pairs[7].Chosen) {
			t.Errorf("%s: eval pair ordered differently from train", d.Name)
		}
	}
	bs, err := ds.Dims[0].EvalBatches(64, ds.Config.BatchOptions())
	if err != nil || len(bs) != 3 || bs[2].Pairs != 190-128 {
		t.Fatalf("EvalBatches: %d batches, err %v", len(bs), err)
	}
}
