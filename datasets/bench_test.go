package datasets

import (
	"io"
	"testing"
)

// BenchmarkPKU measures load+tokenize+batch on the shared PKU-SafeRLHF file (190 rows) with
// the stories260k tokenizer, split into its stages:
//
//	parse:    read the file and parse rows into ordered pairs (one dimension)
//	tokenize: render the hh template and tokenize prompt and both responses (one dimension)
//	batch:    one epoch of sampler steps over two dimensions (batch size 8)
//	all:      Load with two dimensions sharing the file, then one epoch of steps
//
// Run with: go test ./datasets/ -run '^$' -bench PKU -benchtime 20x
func BenchmarkPKU(b *testing.B) {
	tok := storiesTok(b)
	path := pkuFile(b)
	dim := DimensionConfig{Name: "helpful", Source: path, Label: "better_response_id",
		Prefer: "higher"}
	parse := newRowParser(FormatPKU, dim)

	// Parse once to get the texts the tokenize stage starts from.
	recs, err := readFile(path, path)
	if err != nil {
		b.Fatal(err)
	}
	var texts []textExample
	for _, r := range recs {
		ex, p := parse(r)
		if p != nil {
			b.Fatal(p.reason)
		}
		texts = append(texts, ex)
	}
	cfg := &DataConfig{Dimensions: []DimensionConfig{dim, {Name: "harmless", Source: path,
		Label: "safer_response_id"}}, Template: TemplateConfig{Style: StyleHH, EOSToken: "</s>"},
		BatchSize: 8}
	if err := cfg.Validate(); err != nil {
		b.Fatal(err)
	}
	tpl, err := NewTemplate(cfg.Template, "")
	if err != nil {
		b.Fatal(err)
	}

	b.Run("parse", func(b *testing.B) {
		for b.Loop() {
			recs, err := readFile(path, path)
			if err != nil {
				b.Fatal(err)
			}
			for _, r := range recs {
				if _, p := parse(r); p != nil {
					b.Fatal(p.reason)
				}
			}
		}
		b.ReportMetric(float64(len(recs)*b.N)/b.Elapsed().Seconds(), "rows/s")
	})

	b.Run("tokenize", func(b *testing.B) {
		tokens := 0
		for b.Loop() {
			enc, err := newEncoder(tok, tpl, cfg) // a fresh memo: nothing carried over
			if err != nil {
				b.Fatal(err)
			}
			tokens = 0
			for i := range texts {
				e, p := enc.encodeExample(&texts[i], texts[i].chosen, texts[i].rejected)
				if p != nil {
					b.Fatal(p.reason)
				}
				tokens += len(e.prompt) + len(e.responses[0]) + len(e.responses[1])
			}
		}
		b.ReportMetric(float64(len(texts)*b.N)/b.Elapsed().Seconds(), "rows/s")
		b.ReportMetric(float64(tokens*b.N)/b.Elapsed().Seconds(), "tokens/s")
	})

	ds, err := Load(cfg, tok)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("batch", func(b *testing.B) {
		tokens := 0
		for b.Loop() {
			tokens = epoch(b, ds)
		}
		b.ReportMetric(float64(tokens*b.N)/b.Elapsed().Seconds(), "tokens/s")
	})

	b.Run("all", func(b *testing.B) {
		tokens := 0
		for b.Loop() {
			ds, err := Load(cfg, tok)
			if err != nil {
				b.Fatal(err)
			}
			tokens = epoch(b, ds)
		}
		b.ReportMetric(float64(2*len(texts)*b.N)/b.Elapsed().Seconds(), "rows/s")
		b.ReportMetric(float64(tokens*b.N)/b.Elapsed().Seconds(), "tokens/s")
	})
}

// epoch draws every step of a sampler and returns the number of real (attended) tokens.
func epoch(b *testing.B, ds *Dataset) int {
	s, err := NewSampler(ds)
	if err != nil {
		b.Fatal(err)
	}
	tokens := 0
	for {
		st, err := s.Next()
		if err == io.EOF {
			return tokens
		}
		if err != nil {
			b.Fatal(err)
		}
		for _, bt := range st.Batches {
			for _, m := range bt.AttentionMask {
				tokens += int(m)
			}
		}
	}
}
