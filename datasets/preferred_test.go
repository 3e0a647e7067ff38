package datasets

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"

	"github.com/panacea-go/toolkit/internal/testutil"
)

// shorter returns the index of r's response with fewer Unicode characters, or -1 on a tie.
func (r pkuRaw) shorter() int {
	n0, n1 := utf8.RuneCountInString(r.Response0), utf8.RuneCountInString(r.Response1)
	switch {
	case n0 < n1:
		return 0
	case n1 < n0:
		return 1
	}
	return -1
}

// sft3Config is the three-dimension SFT config of examples/panacea-sft3.yaml without its
// truncation, so that every response decodes back whole.
func sft3Config(t *testing.T, source string) *DataConfig {
	return &DataConfig{
		Dimensions: []DimensionConfig{
			{Name: "helpful", Source: source, Label: "better_response_id", SFT: SFTPreferred},
			{Name: "harmless", Source: source, Label: "safer_response_id", SFT: SFTPreferred},
			{Name: "concise", Source: source, Label: LabelLength, Prefer: "lower",
				DropTies: true, SFT: SFTPreferred},
		},
		Template: TemplateConfig{Style: StyleHH, EOSToken: "</s>"},
	}
}

// TestPreferredSFTReal loads the real PKU rows as three SFT dimensions with the stories260k
// tokenizer and checks that every example is the prompt and the response its label prefers.
func TestPreferredSFTReal(t *testing.T) {
	tok := storiesTok(t)
	raw := readPKURaw(t)
	ds := mustLoad(t, sft3Config(t, pkuFile(t)), tok)
	prefer := []func(r pkuRaw) int{
		func(r pkuRaw) int { return r.Better },
		func(r pkuRaw) int { return r.Safer },
		pkuRaw.shorter,
	}
	ties := 0
	for _, r := range raw {
		if r.shorter() < 0 {
			ties++
		}
	}

	// Every row becomes an SFT example of every dimension (the sample has no length ties).
	for di, d := range ds.Dims {
		s := d.Stats.Sources[0]
		if d.Train.Kind != KindSFT || d.Eval.Kind != KindSFT || len(d.Train.Pairs) != 0 {
			t.Fatalf("%s: kind %s, %d pairs; want sft examples only", d.Name, d.Train.Kind,
				len(d.Train.Pairs))
		}
		wantKept := 190
		if d.Name == "concise" {
			wantKept -= ties
		}
		if d.Train.Len() != wantKept || s.Kept != wantKept || total(s.Filtered) != 190-wantKept ||
			len(s.Invalid) != 0 || len(d.Stats.ChosenLens) != wantKept ||
			len(d.Stats.RejectedLens) != 0 {
			t.Fatalf("%s: %d examples, kept %d, filtered %v, invalid %v; want %d", d.Name,
				d.Train.Len(), s.Kept, s.Filtered, s.Invalid, wantKept)
		}
		for _, e := range d.Train.SFT {
			r := raw[e.Line-1]
			w := prefer[di](r)
			prompt := "\n\nHuman: " + r.Prompt + "\n\nAssistant:"
			if e.Dim != di || e.ID != ExampleID(d.Name, pkuFile(t), e.Line) {
				t.Fatalf("%s line %d: dim %d id %x", d.Name, e.Line, e.Dim, e.ID)
			}
			if e.Response[len(e.Response)-1] != 2 || tok.Decode(e.Prompt, true) != prompt {
				t.Fatalf("%s line %d: want the raw prompt and EOS 2 last", d.Name, e.Line)
			}
			full := tok.Decode(append(append([]int{}, e.Prompt...), e.Response...), true)
			if full != prompt+" "+r.response(w) {
				t.Fatalf("%s line %d: the response is not response_%d, the one the label "+
					"prefers", d.Name, e.Line, w)
			}
		}
	}

	// The dimensions disagree where the data says they do.
	differ := func(a, b int) int {
		n := 0
		for i := range ds.Dims[a].Train.SFT {
			if !slicesEqual(ds.Dims[a].Train.SFT[i].Response, ds.Dims[b].Train.SFT[i].Response) {
				n++
			}
		}
		return n
	}
	for _, c := range []struct{ a, b, want int }{{0, 1, 35}, {0, 2, 124}, {1, 2, 111}} {
		if got := differ(c.a, c.b); got != c.want {
			t.Errorf("%s and %s prefer different responses on %d rows, want %d",
				ds.Dims[c.a].Name, ds.Dims[c.b].Name, got, c.want)
		}
	}

	// sft: preferred keeps exactly the chosen side of the pairs the same label gives.
	pairsCfg := sft3Config(t, pkuFile(t))
	for i := range pairsCfg.Dimensions {
		pairsCfg.Dimensions[i].SFT = ""
	}
	pairs := mustLoad(t, pairsCfg, tok)
	for di, d := range pairs.Dims {
		for i, p := range d.Train.Pairs {
			e := ds.Dims[di].Train.SFT[i]
			if p.ID != e.ID || !slicesEqual(p.Prompt, e.Prompt) || !slicesEqual(p.Chosen, e.Response) {
				t.Fatalf("%s line %d: SFT example differs from the pair's chosen side", d.Name,
					p.Line)
			}
		}
	}
}

// TestLengthLabelTies makes length ties in real rows (response_1 becomes response_0 with its
// characters reversed: a different text of the same length) and checks that drop_ties drops
// and counts exactly those, and that without drop_ties the first is an error naming its line.
func TestLengthLabelTies(t *testing.T) {
	src, err := os.ReadFile(pkuFile(t))
	if err != nil {
		t.Fatal(err)
	}
	tieLines := map[int]bool{3: true, 50: true, 190: true}
	var out bytes.Buffer
	for i, line := range bytes.Split(bytes.TrimSuffix(src, []byte("\n")), []byte("\n")) {
		if tieLines[i+1] {
			var row map[string]json.RawMessage
			if err := json.Unmarshal(line, &row); err != nil {
				t.Fatal(err)
			}
			var r0 string
			if err := json.Unmarshal(row["response_0"], &r0); err != nil {
				t.Fatal(err)
			}
			rs := []rune(r0)
			for a, b := 0, len(rs)-1; a < b; a, b = a+1, b-1 {
				rs[a], rs[b] = rs[b], rs[a]
			}
			if row["response_1"], err = json.Marshal(string(rs)); err != nil {
				t.Fatal(err)
			}
			if line, err = json.Marshal(row); err != nil {
				t.Fatal(err)
			}
		}
		out.Write(line)
		out.WriteByte('\n')
	}
	path := writeFile(t, t.TempDir(), "pku-ties.jsonl", out.String())

	ds := mustLoad(t, sft3Config(t, path), byteTok{})
	concise := ds.Dims[2]
	s := concise.Stats.Sources[0]
	if s.Rows != 190 || s.Kept != 187 || len(s.Filtered) != 1 || s.Filtered[0].Reason != FilterTie ||
		s.Filtered[0].Count != 3 || !slicesEqual(s.Filtered[0].Lines, []int{3, 50, 190}) {
		t.Fatalf("concise: rows %d kept %d filtered %v; want 187 kept, ties at [3 50 190]",
			s.Rows, s.Kept, s.Filtered)
	}
	for _, e := range concise.Train.SFT {
		if tieLines[e.Line] {
			t.Errorf("line %d: a length tie became an example", e.Line)
		}
	}
	if ds.Dims[0].Train.Len() != 190 || ds.Dims[1].Train.Len() != 190 {
		t.Errorf("id labels lost rows: %d, %d", ds.Dims[0].Train.Len(), ds.Dims[1].Train.Len())
	}

	cfg := sft3Config(t, path)
	cfg.Dimensions[2].DropTies = false
	_, err = Load(cfg, byteTok{})
	var rowErr *InvalidRowError
	if !errors.As(err, &rowErr) || rowErr.Line != 3 || rowErr.Reason != ReasonTie ||
		!strings.Contains(err.Error(), "label length") {
		t.Fatalf("without drop_ties: %v; want a tie at line 3 naming label length", err)
	}
}

// TestLengthLabelCountsRunes checks that length counts Unicode characters, not bytes, and
// that prefer picks the shorter or the longer response.
func TestLengthLabelCountsRunes(t *testing.T) {
	// "ééé" is 3 characters but 6 bytes; "abcd" is 4 of each.
	path := writeFile(t, t.TempDir(), "len.jsonl",
		`{"prompt": "p", "response_0": "abcd", "response_1": "ééé"}`+"\n"+
			`{"prompt": "q", "response_0": "a", "response_1": "bb"}`+"\n")
	cases := []struct {
		prefer string
		want   []string
	}{
		{"lower", []string{"ééé", "a"}},
		{"higher", []string{"abcd", "bb"}},
	}
	for _, tc := range cases {
		cfg := &DataConfig{Dimensions: []DimensionConfig{{Name: "len", Source: path,
			Label: LabelLength, Prefer: tc.prefer}}, Template: TemplateConfig{Style: StylePlain}}
		d := mustLoad(t, cfg, byteTok{}).Dims[0]
		if d.Train.Kind != KindPreference || d.Label != "length, prefer "+tc.prefer {
			t.Fatalf("prefer %s: kind %s, label %q", tc.prefer, d.Train.Kind, d.Label)
		}
		for i, p := range d.Train.Pairs {
			if got := (byteTok{}).Decode(p.Chosen, true); got != tc.want[i] {
				t.Errorf("prefer %s, line %d: chose %q, want %q", tc.prefer, p.Line, got,
					tc.want[i])
			}
		}
	}
}

// TestPreferredSFTValidation checks that sft: preferred is refused, naming the key, where
// the rows have no pairs, and accepted on HH-RLHF pairs.
func TestPreferredSFTValidation(t *testing.T) {
	for _, tc := range []struct {
		name string
		dim  DimensionConfig
		want string
	}{
		{"unknown value", DimensionConfig{SFT: "chosen"}, `dimensions[0].sft: "chosen"`},
		{"sft rows", DimensionConfig{Format: "messages", SFT: SFTPreferred},
			"dimensions[0].sft: format sft has no pairs"},
		{"prompt rows", DimensionConfig{Format: FormatPrompt, SFT: SFTPreferred},
			"dimensions[0].sft: format prompt has no pairs"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.dim.Name, tc.dim.Source = "d", "x.jsonl"
			cfg := DataConfig{Dimensions: []DimensionConfig{tc.dim}}
			if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate() = %v, want %q", err, tc.want)
			}
		})
	}

	// A detected SFT file is refused at load time, naming the key and the file.
	sftFile := writeFile(t, t.TempDir(), "sft.jsonl", `{"prompt": "p", "response": "r"}`+"\n")
	cfg := &DataConfig{Dimensions: []DimensionConfig{{Name: "d", Source: sftFile,
		SFT: SFTPreferred}}}
	_, err := Load(cfg, byteTok{})
	if err == nil || !strings.Contains(err.Error(), "dimensions[0].sft") ||
		!strings.Contains(err.Error(), "detected format sft") {
		t.Fatalf("Load on SFT rows with sft: preferred: %v", err)
	}

	// HH-RLHF pairs become SFT examples of their chosen transcripts.
	hh := func(sft string) *Dimension {
		cfg := &DataConfig{Dimensions: []DimensionConfig{{Name: "harmless", Source: hhFile(t),
			SFT: sft}}, Template: TemplateConfig{Style: StyleHH}, SkipInvalid: true}
		return mustLoad(t, cfg, byteTok{}).Dims[0]
	}
	pairs, sft := hh(""), hh(SFTPreferred)
	if sft.Train.Kind != KindSFT || sft.Format != FormatHH || sft.Train.Len() != 2303 ||
		pairs.Train.Len() != 2303 {
		t.Fatalf("hh sft: kind %s format %s, %d examples (pairs: %d); want 2303", sft.Train.Kind,
			sft.Format, sft.Train.Len(), pairs.Train.Len())
	}
	for i, p := range pairs.Train.Pairs {
		if !slicesEqual(p.Chosen, sft.Train.SFT[i].Response) {
			t.Fatalf("hh line %d: SFT response is not the chosen one", p.Line)
		}
	}
}

// TestPreferredSFTSamplerAndReport checks that the sampler draws SFT sub-batches for
// preferred-response dimensions and that the report says where they come from.
func TestPreferredSFTSamplerAndReport(t *testing.T) {
	cfg := sft3Config(t, pkuFile(t))
	cfg.BatchSize, cfg.Epochs, cfg.EvalFraction, cfg.Seed = 4, 2, 0.2, 1
	tok := storiesTok(t)
	ds := mustLoad(t, cfg, tok)
	s, err := NewSampler(ds)
	if err != nil {
		t.Fatal(err)
	}
	train := ds.Dims[0].Train.Len()
	if want := (2*train + 3) / 4; s.TotalSteps() != want {
		t.Fatalf("%d steps for %d training rows, want %d", s.TotalSteps(), train, want)
	}
	for step := 0; step < 3; step++ {
		st, err := s.Next()
		if err != nil {
			t.Fatal(err)
		}
		for di, b := range st.Batches {
			targets := 0
			for _, v := range b.LossMask {
				targets += int(v)
			}
			if b.Kind != KindSFT || b.Rows != 4 || b.Pairs != 0 || targets == 0 ||
				b.Dims[0] != int64(di) || b.Dims[3] != int64(di) {
				t.Fatalf("step %d dim %d: kind %s, %d rows, %d pairs, %d targets", step, di,
					b.Kind, b.Rows, b.Pairs, targets)
			}
		}
	}

	rep, err := NewReport(ds, tok)
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	if err := rep.Write(&out); err != nil {
		t.Fatal(err)
	}
	text := out.String()
	for _, want := range []string{
		"dimension 0: helpful (format pku-saferlhf, label better_response_id, " +
			"sft examples (preferred responses), weight 1, batch 4)",
		"dimension 2: concise (format pku-saferlhf, label length, prefer lower, " +
			"sft examples (preferred responses), weight 1, batch 4)",
		"    response   ",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("report lacks %q", want) // the report itself quotes harmful rows
		}
	}
	if strings.Contains(text, "\n    rejected ") || rep.Dims[2].Kind != KindSFT ||
		rep.Dims[2].Chosen.N != rep.Dims[2].Train+rep.Dims[2].Eval ||
		rep.Dims[2].Example == nil || rep.Dims[2].Example.Targets == 0 {
		t.Errorf("report on SFT dimensions shows pairs or no response (dims %d)", len(rep.Dims))
	}
}

// TestSFT3ExampleConfig reads examples/panacea-sft3.yaml as the trainer does (its data:
// section through ParseDataConfig, paths against the file's folder), loads it with the
// stories260k tokenizer and draws every step its steps: key asks for.
func TestSFT3ExampleConfig(t *testing.T) {
	path := filepath.Join(testutil.RepoRoot(t), "examples", "panacea-sft3.yaml")
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var probe struct {
		Objective string    `yaml:"objective"`
		Steps     int       `yaml:"steps"`
		Data      yaml.Node `yaml:"data"`
	}
	if err := yaml.Unmarshal(raw, &probe); err != nil {
		t.Fatal(err)
	}
	section, err := yaml.Marshal(&probe.Data)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := ParseDataConfig(section)
	if err != nil {
		t.Fatalf("%s: data: %v", path, err)
	}
	cfg.BaseDir = filepath.Dir(path)
	if err := cfg.Validate(); err != nil {
		t.Fatalf("%s: data: %v", path, err)
	}
	if probe.Objective != "sft" || probe.Steps < 50 || len(cfg.Dimensions) != 3 ||
		cfg.MaxLen != 160 || cfg.BatchSize != 4 || cfg.EvalFraction != 0.2 {
		t.Fatalf("objective %q, steps %d, %d dimensions, max_len %d, batch %d, eval %v",
			probe.Objective, probe.Steps, len(cfg.Dimensions), cfg.MaxLen, cfg.BatchSize,
			cfg.EvalFraction)
	}
	for i, d := range cfg.Dimensions {
		if filepath.Clean(cfg.Resolve(d.Source)) != filepath.Clean(pkuFile(t)) &&
			os.Getenv("TOOLKIT_SHARED_DATA") != "" {
			cfg.Dimensions[i].Source = pkuFile(t) // shared data moved by the environment
		}
	}

	tok := storiesTok(t)
	ds := mustLoad(t, cfg, tok)
	evalN := ds.Dims[0].Eval.Len()
	for _, d := range ds.Dims {
		if d.Train.Kind != KindSFT || d.SFT != SFTPreferred || d.Train.Len()+d.Eval.Len() != 190 ||
			d.Eval.Len() != evalN || evalN < 19 || evalN > 57 {
			t.Fatalf("%s: kind %s, %d train + %d eval", d.Name, d.Train.Kind, d.Train.Len(),
				d.Eval.Len())
		}
		t.Logf("%s: %d prompts and %d responses cut by the caps", d.Name,
			d.Stats.PromptTruncated, d.Stats.ResponseTruncated)
		for _, e := range d.Train.SFT {
			if len(e.Prompt) > cfg.MaxPromptLen || len(e.Prompt)+len(e.Response) > cfg.MaxLen {
				t.Fatalf("%s line %d: %d+%d tokens exceed the caps", d.Name, e.Line,
					len(e.Prompt), len(e.Response))
			}
		}
	}

	// The trainer needs steps sub-batches per dimension within data.epochs.
	s, err := NewSampler(ds)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d train + %d eval rows per dimension, %d steps of data for %d asked",
		ds.Dims[0].Train.Len(), evalN, s.TotalSteps(), probe.Steps)
	if s.TotalSteps() < probe.Steps || s.TotalSteps() > 2*probe.Steps {
		t.Fatalf("the data gives %d steps, the config asks for %d", s.TotalSteps(), probe.Steps)
	}
	for step := 0; step < probe.Steps; step++ {
		st, err := s.Next()
		if err != nil {
			t.Fatalf("step %d: %v", step, err)
		}
		for _, b := range st.Batches {
			if b.Kind != KindSFT || b.Rows != 4 || b.Len > cfg.MaxLen {
				t.Fatalf("step %d: kind %s, %d rows of %d tokens", step, b.Kind, b.Rows, b.Len)
			}
		}
	}
}
