package datasets

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
)

// Dataset is every dimension of a config, loaded, tokenized and split.
type Dataset struct {
	Config   DataConfig
	Template *Template
	Dims     []*Dimension
}

// Dimension is one preference dimension's examples and what loading them found.
type Dimension struct {
	Index     int
	Name      string
	Weight    float64 // weight in evaluation
	Format    string  // canonical row format, detected when the config left it out
	BatchSize int     // examples (pairs, for preference data) per sub-batch
	Train     Examples
	Eval      Examples
	Stats     DimStats

	// Label is what orders pku-saferlhf pairs: the label, with its prefer for score and
	// computed labels (e.g. "length, prefer lower"); empty for formats ordered already.
	Label string
	// SFT is the config's sft option: "preferred" when the examples are the preferred
	// responses of a pair format (Train.Kind is then KindSFT).
	SFT string
}

// DimStats is what loading one dimension found: per-source row counts and token lengths.
type DimStats struct {
	Sources []SourceStats
	// Token counts before truncation, one per kept example (train and eval) in file order.
	// ChosenLens holds SFT response lengths too; RejectedLens is empty for SFT and prompts.
	PromptLens, ChosenLens, RejectedLens []int
	// PromptTruncated and ResponseTruncated count examples whose prompt (or a response) was
	// cut by max_prompt_len (or max_len).
	PromptTruncated, ResponseTruncated int
}

// SourceStats counts the rows of one file read for one dimension.
type SourceStats struct {
	File     string // as the config names it
	Split    string // "train", "eval" or "train+eval" (split by eval_fraction)
	Rows     int    // rows read (blank lines are not rows)
	Kept     int    // rows that became examples
	Invalid  []ReasonCount
	Filtered []ReasonCount
}

// Load reads, parses, renders and tokenizes every dimension of cfg and splits each into
// train and eval. cfg is validated (and its defaults filled) first. An invalid row is an
// error naming its file and line unless cfg.SkipInvalid is set.
func Load(cfg *DataConfig, tok Tokenizer) (*Dataset, error) {
	if tok == nil {
		return nil, errors.New("datasets: load: nil tokenizer")
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("datasets: config: %w", err)
	}
	tpl, err := NewTemplate(cfg.Template, cfg.BaseDir)
	if err != nil {
		return nil, err
	}
	enc, err := newEncoder(tok, tpl, cfg)
	if err != nil {
		return nil, err
	}
	l := &loader{cfg: cfg, enc: enc, files: map[string][]record{}}
	ds := &Dataset{Config: *cfg, Template: tpl}
	for i, dc := range cfg.Dimensions {
		d, err := l.dimension(i, dc)
		if err != nil {
			return nil, fmt.Errorf("datasets: dimension %s: %w", dc.Name, err)
		}
		ds.Dims = append(ds.Dims, d)
	}
	if enc.boundaryMismatch > 0 {
		slog.Debug("datasets: responses tokenized apart from their prompt",
			"count", enc.boundaryMismatch)
	}
	return ds, nil
}

// loader holds what one Load call shares between dimensions: the encoder (and its memo) and
// the files already read.
type loader struct {
	cfg   *DataConfig
	enc   *encoder
	files map[string][]record
}

func (l *loader) read(name string) ([]record, error) {
	path := l.cfg.Resolve(name)
	if recs, ok := l.files[path]; ok {
		return recs, nil
	}
	recs, err := readFile(path, name)
	if err != nil {
		return nil, err
	}
	l.files[path] = recs
	return recs, nil
}

func (l *loader) dimension(index int, dc DimensionConfig) (*Dimension, error) {
	d := &Dimension{Index: index, Name: dc.Name, Weight: dc.Weight, Format: dc.Format,
		BatchSize: dc.BatchSize, SFT: dc.SFT}
	train, err := l.read(dc.Source)
	if err != nil {
		return nil, err
	}
	if d.Format == "" {
		if d.Format, err = detect(train, columnsFor(dc.Columns), dc.Source); err != nil {
			return nil, err
		}
		key := fmt.Sprintf("dimensions[%d]", index)
		switch {
		case d.Format != FormatPKU && (dc.Label != "" || dc.OnlySafetyDiffers):
			return nil, fmt.Errorf("%s.label: %s: detected format %s, which reads no label",
				key, dc.Source, d.Format)
		case d.Format == FormatPKU && dc.Label == "":
			return nil, fmt.Errorf("%s.label: %s: detected format %s; set label (e.g. "+
				"better_response_id)", key, dc.Source, d.Format)
		case dc.SFT != "" && kindOf(d.Format) != KindPreference:
			return nil, fmt.Errorf("%s.sft: %s: detected format %s, which has no pairs to "+
				"take the preferred response from", key, dc.Source, d.Format)
		}
	}
	if d.Format == FormatPKU {
		d.Label = dc.Label
		if dc.Label == LabelLength || strings.Contains(dc.Label, "{}") {
			d.Label += ", prefer " + dc.Prefer
		}
	}
	kind := kindFor(d.Format, dc)
	d.Train.Kind, d.Eval.Kind = kind, kind
	parse := newRowParser(d.Format, dc)

	evalFile := dc.EvalFile
	if evalFile == "" {
		evalFile = l.cfg.EvalFile
	}
	fraction := l.cfg.EvalFraction
	split := "train+eval"
	if evalFile != "" || fraction == 0 {
		fraction, split = 0, "train"
	}
	if err := l.source(d, dc.Source, train, parse, split, fraction); err != nil {
		return nil, err
	}
	if evalFile != "" {
		recs, err := l.read(evalFile)
		if err != nil {
			return nil, err
		}
		if err := l.source(d, evalFile, recs, parse, "eval", 0); err != nil {
			return nil, err
		}
	}
	if d.Train.Len() == 0 {
		return nil, fmt.Errorf("%s: no usable training rows (%d read)", dc.Source, len(train))
	}
	return d, nil
}

// detect finds the row format from the first well-formed record.
func detect(recs []record, cols columns, name string) (string, error) {
	for _, r := range recs {
		if r.err == nil {
			return detectFormat(r, cols)
		}
	}
	return "", fmt.Errorf("%s: no well-formed rows to detect the format from", name)
}

// source turns the records of one file into examples of d. Rows go to eval when split is
// "eval", or when their prompt hashes below fraction.
func (l *loader) source(d *Dimension, name string, recs []record, parse rowParser,
	split string, fraction float64) error {
	stats := SourceStats{File: name, Split: split, Rows: len(recs)}
	bad, drop := tally{}, tally{}
	for _, rec := range recs {
		ex, enc, p := l.row(rec, parse, d.Train.Kind)
		if p != nil {
			if p.filter {
				drop.add(p.reason, rec.pos.line)
				continue
			}
			if !l.cfg.SkipInvalid {
				return p.at(rec.pos)
			}
			bad.add(p.reason, rec.pos.line)
			continue
		}
		stats.Kept++
		toEval := split == "eval" || inEval(l.cfg.Seed, ex.splitKey(), fraction)
		d.add(rec.pos, enc, toEval)
	}
	stats.Invalid, stats.Filtered = bad.sorted(), drop.sorted()
	logSkipped(d.Name, stats)
	d.Stats.Sources = append(d.Stats.Sources, stats)
	return nil
}

// row parses and encodes one record into an example of the given kind (an SFT example of a
// pair format keeps the chosen response only).
func (l *loader) row(rec record, parse rowParser, kind Kind) (*textExample, *encoded,
	*rowProblem) {
	if rec.err != nil {
		return nil, nil, &rowProblem{reason: ReasonMalformed, err: rec.err}
	}
	ex, p := parse(rec)
	if p != nil {
		return nil, nil, p
	}
	var responses []string
	switch kind {
	case KindPreference:
		responses = []string{ex.chosen, ex.rejected}
	case KindSFT:
		responses = []string{ex.chosen}
	}
	enc, p := l.enc.encodeExample(&ex, responses...)
	if p != nil {
		return nil, nil, p
	}
	return &ex, enc, nil
}

// add files an encoded example under train or eval and records its lengths.
func (d *Dimension) add(pos position, enc *encoded, toEval bool) {
	st := &d.Stats
	st.PromptLens = append(st.PromptLens, enc.rawPrompt)
	if enc.promptCut {
		st.PromptTruncated++
	}
	if enc.respCut {
		st.ResponseTruncated++
	}
	dst := &d.Train
	if toEval {
		dst = &d.Eval
	}
	id := ExampleID(d.Name, pos.file, pos.line)
	switch d.Train.Kind {
	case KindPreference:
		st.ChosenLens = append(st.ChosenLens, enc.rawResp[0])
		st.RejectedLens = append(st.RejectedLens, enc.rawResp[1])
		dst.Pairs = append(dst.Pairs, PreferenceExample{ID: id, Dim: d.Index, Source: pos.file,
			Line: pos.line, Prompt: enc.prompt, Chosen: enc.responses[0],
			Rejected: enc.responses[1]})
	case KindSFT:
		st.ChosenLens = append(st.ChosenLens, enc.rawResp[0])
		dst.SFT = append(dst.SFT, SFTExample{ID: id, Dim: d.Index, Source: pos.file,
			Line: pos.line, Prompt: enc.prompt, Response: enc.responses[0]})
	default:
		dst.Prompts = append(dst.Prompts, PromptExample{ID: id, Dim: d.Index, Source: pos.file,
			Line: pos.line, Prompt: enc.prompt})
	}
}
