package tokenizer

import (
	"fmt"
	"path/filepath"
	"testing"
)

// benchRows builds n rows of story-like and chat-like text, with enough variety that not
// every word is already cached.
func benchRows(n int) []string {
	names := []string{"Lily", "Tom", "Sue", "Ben", "Mia", "Max"}
	things := []string{"ball", "kite", "red box", "big tree", "little dog", "blue car"}
	rows := make([]string, n)
	for i := range rows {
		rows[i] = fmt.Sprintf("Once upon a time, %s found a %s near the park. "+
			"%s said, \"It's day %d and I have %d apples!\"\n"+
			"User: can you write `for i := 0; i < %d; i++ {}` in Go?\tAssistant: Sure — here it is. 😀",
			names[i%len(names)], things[i%len(things)], names[(i+1)%len(names)], i, i*37%1000, i%97)
	}
	return rows
}

// BenchmarkEncode measures Encode on the stories260k (SentencePiece-style BPE) and Llama 3
// (byte-level BPE) tokenizers, reporting tokens per second.
func BenchmarkEncode(b *testing.B) {
	rows := benchRows(2000)
	cases := []struct {
		name string
		load func(testing.TB) *Tokenizer
	}{
		{"stories260k", func(tb testing.TB) *Tokenizer { return loadStories(tb) }},
		{"llama3", func(tb testing.TB) *Tokenizer {
			dir := requireNPMCache(tb)
			tok, err := Load(filepath.Join(dir, "pkg", "tokenizer-llama3", "models", "tokenizer.json"))
			if err != nil {
				tb.Fatal(err)
			}
			return tok
		}},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			tok := c.load(b)
			tokens, bytes := 0, 0
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				row := rows[i%len(rows)]
				tokens += len(tok.Encode(row, true))
				bytes += len(row)
			}
			b.ReportMetric(float64(tokens)/b.Elapsed().Seconds(), "tokens/s")
			b.SetBytes(int64(bytes / max(b.N, 1)))
		})
	}
}
