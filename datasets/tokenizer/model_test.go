package tokenizer

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
)

// byteVocab is a byte-level vocabulary: each byte's character with the byte as id, plus
// extra tokens numbered from 256.
func byteVocab(extra ...string) map[string]any {
	v := map[string]any{}
	for b := 0; b < 256; b++ {
		v[byteToCharStr[b]] = b
	}
	for i, e := range extra {
		v[e] = 256 + i
	}
	return v
}

// fixture returns a small GPT-2 style tokenizer.json (merges "Ġ t", "h e", "Ġt he"), after
// edit has changed its top-level keys.
func fixture(t testing.TB, edit func(map[string]any)) []byte {
	t.Helper()
	f := map[string]any{
		"version":      "1.0",
		"added_tokens": []any{map[string]any{"id": 300, "content": "<|endoftext|>", "special": true}},
		"normalizer":   nil,
		"pre_tokenizer": map[string]any{
			"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true,
		},
		"post_processor": map[string]any{"type": "ByteLevel"},
		"decoder":        map[string]any{"type": "ByteLevel"},
		"model": map[string]any{
			"type": "BPE", "dropout": nil, "unk_token": nil,
			"vocab":  byteVocab("Ġt", "he", "Ġthe"),
			"merges": []any{"Ġ t", []any{"h", "e"}, "Ġt he"},
		},
	}
	if edit != nil {
		edit(f)
	}
	data, err := json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestFixtureEncodeDecode(t *testing.T) {
	tok, err := Parse(fixture(t, nil))
	if err != nil {
		t.Fatal(err)
	}
	// " the" merges to Ġthe; "the" has no Ġ so only "he" merges.
	got := tok.Encode("the the<|endoftext|>", false)
	want := []int{'t', 257, 258, 300}
	if !slices.Equal(got, want) {
		t.Errorf("Encode = %v, want %v", got, want)
	}
	if s := tok.Decode(got, false); s != "the the<|endoftext|>" {
		t.Errorf("Decode = %q", s)
	}
	if s := tok.Decode(got, true); s != "the the" {
		t.Errorf("Decode(skip specials) = %q", s)
	}
	if n := tok.VocabSize(); n != 301 {
		t.Errorf("VocabSize = %d, want 301", n)
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name        string
		edit        func(map[string]any)
		key         string // JSON key the error must name
		unsupported bool
	}{
		{"normalizer type", func(f map[string]any) {
			f["normalizer"] = map[string]any{"type": "BertNormalizer"}
		}, "normalizer.type", true},
		{"nested normalizer type", func(f map[string]any) {
			f["normalizer"] = map[string]any{"type": "Sequence", "normalizers": []any{
				map[string]any{"type": "NFC"}, map[string]any{"type": "Precompiled"}}}
		}, "normalizer.normalizers[1].type", true},
		{"pre-tokenizer type", func(f map[string]any) {
			f["pre_tokenizer"] = map[string]any{"type": "BertPreTokenizer"}
		}, "pre_tokenizer.type", true},
		{"split behavior", func(f map[string]any) {
			f["pre_tokenizer"] = map[string]any{"type": "Split", "pattern": map[string]any{"String": " "},
				"behavior": "Sideways"}
		}, "pre_tokenizer.behavior", true},
		{"decoder type", func(f map[string]any) {
			f["decoder"] = map[string]any{"type": "WordPiece"}
		}, "decoder.type", true},
		{"post-processor type", func(f map[string]any) {
			f["post_processor"] = map[string]any{"type": "Bogus"}
		}, "post_processor.type", true},
		{"model type", func(f map[string]any) {
			f["model"] = map[string]any{"type": "Unigram", "vocab": []any{}}
		}, "model.type", true},
		{"bad regex", func(f map[string]any) {
			f["pre_tokenizer"] = map[string]any{"type": "Split",
				"pattern":  map[string]any{"Regex": "(unclosed"},
				"behavior": "Isolated"}
		}, "pre_tokenizer.pattern", false},
		{"merge of unknown tokens", func(f map[string]any) {
			f["model"].(map[string]any)["merges"] = []any{"Ġ t", "x yz"}
		}, "model.merges[1]", false},
		{"malformed merge", func(f map[string]any) {
			f["model"].(map[string]any)["merges"] = []any{"a b c"}
		}, "model", false},
		{"missing vocab", func(f map[string]any) {
			delete(f["model"].(map[string]any), "vocab")
		}, "model.vocab", false},
		{"unk not in vocab", func(f map[string]any) {
			f["model"].(map[string]any)["unk_token"] = "<unk>"
		}, "model.unk_token", false},
		{"added token without id", func(f map[string]any) {
			f["added_tokens"] = []any{map[string]any{"content": "<x>"}}
		}, "added_tokens[0].id", false},
		{"template names a missing token", func(f map[string]any) {
			f["post_processor"] = map[string]any{"type": "TemplateProcessing",
				"single": []any{map[string]any{"SpecialToken": map[string]any{"id": "<s>"}}}}
		}, "post_processor.single[0]", false},
	}
	for _, tc := range tests {
		_, err := Parse(fixture(t, tc.edit))
		var fe *FormatError
		if !errors.As(err, &fe) {
			t.Errorf("%s: error %v, want a *FormatError", tc.name, err)
			continue
		}
		if fe.Key != tc.key {
			t.Errorf("%s: error names key %q, want %q (%v)", tc.name, fe.Key, tc.key, err)
		}
		if errors.Is(err, ErrUnsupported) != tc.unsupported {
			t.Errorf("%s: errors.Is(ErrUnsupported) = %v, want %v", tc.name, !tc.unsupported, tc.unsupported)
		}
	}
	if _, err := Parse([]byte(`{"model": `)); err == nil {
		t.Error("truncated JSON parsed")
	}
	p := filepath.Join(t.TempDir(), "tokenizer.json")
	if err := os.WriteFile(p, fixture(t, func(f map[string]any) {
		f["decoder"] = map[string]any{"type": "CTC"}
	}), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Load(p)
	if err == nil || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), `"CTC"`) {
		t.Errorf("Load error %v should name the file and the type", err)
	}
}

func TestBPEOptions(t *testing.T) {
	tests := []struct {
		name   string
		vocab  map[string]int
		merges []mergeJSON
		opts   bpeOptions
		in     string
		want   []int
	}{
		{"unk fused", map[string]int{"<unk>": 0, "a": 1, "b": 2}, nil,
			bpeOptions{unk: "<unk>", fuseUnk: true}, "accb", []int{1, 0, 2}},
		{"unk not fused", map[string]int{"<unk>": 0, "a": 1, "b": 2}, nil,
			bpeOptions{unk: "<unk>"}, "accb", []int{1, 0, 0, 2}},
		{"no unk token drops", map[string]int{"a": 1, "b": 2}, nil, bpeOptions{}, "acb", []int{1, 2}},
		{"byte fallback", map[string]int{"<unk>": 0, "a": 1, "<0x63>": 2}, nil,
			bpeOptions{unk: "<unk>", byteFallback: true}, "acd", []int{1, 2, 0}},
		{"merges by rank", map[string]int{"a": 0, "b": 1, "c": 2, "ab": 3, "bc": 4},
			[]mergeJSON{{"b", "c"}, {"a", "b"}}, bpeOptions{}, "abc", []int{0, 4}},
		{"leftmost on equal rank", map[string]int{"a": 0, "aa": 1},
			[]mergeJSON{{"a", "a"}}, bpeOptions{}, "aaa", []int{1, 0}},
		{"ignore merges takes whole words", map[string]int{"a": 0, "b": 1, "c": 2, "bc": 3, "abc": 4},
			[]mergeJSON{{"b", "c"}}, bpeOptions{ignoreMerges: true}, "abc", []int{4}},
		{"continuing subword prefix", map[string]int{"a": 0, "##b": 1, "##c": 2, "ab": 3, "abc": 4},
			[]mergeJSON{{"a", "##b"}, {"ab", "##c"}}, bpeOptions{prefix: "##"}, "abc", []int{4}},
		{"end of word suffix", map[string]int{"a": 0, "b</w>": 1, "ab</w>": 2},
			[]mergeJSON{{"a", "b</w>"}}, bpeOptions{suffix: "</w>"}, "ab", []int{2}},
	}
	for _, tc := range tests {
		m, err := newBPE(tc.vocab, tc.merges, tc.opts, "model")
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		for pass := range 2 { // the second pass reads the word cache
			if got := m.tokenize(nil, tc.in); !slices.Equal(got, tc.want) {
				t.Errorf("%s (pass %d): %q → %v, want %v", tc.name, pass, tc.in, got, tc.want)
			}
		}
	}
}

func TestMergeSpellings(t *testing.T) {
	var merges []mergeJSON
	if err := json.Unmarshal([]byte(`["a b", ["c d", "e"]]`), &merges); err != nil {
		t.Fatal(err)
	}
	if want := []mergeJSON{{"a", "b"}, {"c d", "e"}}; !slices.Equal(merges, want) {
		t.Errorf("merges = %q, want %q", merges, want)
	}
	for _, bad := range []string{`["a b c"]`, `["ab"]`, `[["a"]]`, `[3]`} {
		if err := json.Unmarshal([]byte(bad), &merges); err == nil {
			t.Errorf("merges %s parsed", bad)
		}
	}
}

func TestAddedTokenOptions(t *testing.T) {
	// Every byte is its own id, so the text between added tokens shows up byte for byte.
	data := fixture(t, func(f map[string]any) {
		f["normalizer"] = map[string]any{"type": "Lowercase"}
		f["pre_tokenizer"] = map[string]any{
			"type": "ByteLevel", "add_prefix_space": false, "use_regex": false,
		}
		f["added_tokens"] = []any{
			map[string]any{"id": 300, "content": "[CLS]", "special": true, "normalized": false},
			map[string]any{"id": 301, "content": "[SEP]", "special": true, "normalized": false},
			map[string]any{"id": 302, "content": "my", "lstrip": true, "rstrip": true, "normalized": true},
			map[string]any{"id": 303, "content": "name", "normalized": true},
			map[string]any{"id": 304, "content": "ony", "single_word": true, "normalized": true},
			map[string]any{"id": 305, "content": "ONE", "normalized": false},
		}
		f["model"].(map[string]any)["merges"] = []any{}
	})
	tok, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	bytesOf := func(s string) []int {
		var ids []int
		for _, b := range []byte(s) {
			ids = append(ids, int(b))
		}
		return ids
	}
	tests := []struct {
		in   string
		want []int
	}{
		// "my" swallows the spaces around it; "ony" inside "anthony" is not a single word.
		{"[CLS] My name is Anthony [SEP]",
			slices.Concat([]int{300, 302, 303}, bytesOf(" is anthony "), []int{301})},
		{"ony", []int{304}},
		{"a ony.", slices.Concat(bytesOf("a "), []int{304}, bytesOf("."))},
		// A raw (not normalized) token matches the raw text only.
		{"ONE one", slices.Concat([]int{305}, bytesOf(" one"))},
		// Longest match wins among tokens starting at the same place.
		{"[CLS][SEP]", []int{300, 301}},
	}
	for _, tc := range tests {
		if got := tok.Encode(tc.in, false); !slices.Equal(got, tc.want) {
			t.Errorf("Encode(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestVocabMergesFiles(t *testing.T) {
	dir := t.TempDir()
	vocab, err := json.Marshal(byteVocab("Ġt", "he", "Ġthe", "<|endoftext|>"))
	if err != nil {
		t.Fatal(err)
	}
	write := func(name, content string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("encoder.json", string(vocab))
	write("vocab.bpe", "#version: 0.2\nĠ t\nh e\nĠt he\n")

	tok, err := LoadDir(dir) // falls back to OpenAI's file names
	if err != nil {
		t.Fatal(err)
	}
	got, want := tok.Encode("the the<|endoftext|>", false), []int{'t', 257, 258, 259}
	if !slices.Equal(got, want) {
		t.Errorf("Encode = %v, want %v", got, want)
	}
	if !tok.IsSpecial(259) {
		t.Error("<|endoftext|> should be special")
	}
	if got := tok.Decode([]int{258, 259}, true); got != " the" {
		t.Errorf("Decode = %q", got)
	}

	write("vocab.json", string(vocab))
	write("merges.txt", "#version: 0.2\nĠ t\nhe\n")
	_, err = LoadDir(dir)
	if msg := fmt.Sprint(err); !strings.Contains(msg, "merges.txt") || !strings.Contains(msg, "line 3") {
		t.Errorf("bad merges.txt: error %v should name the file and line 3", err)
	}
}

func TestConcurrentEncode(t *testing.T) {
	tok, err := Parse(fixture(t, nil))
	if err != nil {
		t.Fatal(err)
	}
	texts := append(slices.Clone(roundTripStrings), "the theme of the thesis", "<|endoftext|> the end")
	want := make([][]int, len(texts))
	for i, s := range texts {
		want[i] = tok.Encode(s, true)
	}
	tok.model.cache = wordCache{} // start cold so the goroutines race to fill it
	var wg sync.WaitGroup
	errs := make(chan string, 8*len(texts))
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i, s := range texts {
				if got := tok.Encode(s, true); !slices.Equal(got, want[i]) {
					errs <- s
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for s := range errs {
		t.Errorf("concurrent Encode(%q) differs", s)
	}
}

// TestDeferredByteLevel checks that leaving the byte-level mapping to the model (and caching
// raw words) encodes exactly as mapping in the pre-tokenizer does.
func TestDeferredByteLevel(t *testing.T) {
	configs := []string{
		`{"type":"ByteLevel","add_prefix_space":false,"use_regex":true}`,
		`{"type":"ByteLevel","add_prefix_space":true,"use_regex":true}`,
		`{"type":"Sequence","pretokenizers":[{"type":"Split","pattern":{"Regex":"` +
			strings.ReplaceAll(llama3Pattern, `\`, `\\`) + `"},"behavior":"Isolated","invert":false},` +
			`{"type":"ByteLevel","add_prefix_space":false,"use_regex":false}]}`,
		`{"type":"Sequence","pretokenizers":[{"type":"WhitespaceSplit"},` +
			`{"type":"ByteLevel","add_prefix_space":true,"use_regex":false}]}`,
	}
	texts := append(slices.Clone(roundTripStrings), "the theme", " the  the\n\nthe", "Ġ ĠĠ Ä")
	for _, cfg := range configs {
		data := fixture(t, func(f map[string]any) { f["pre_tokenizer"] = json.RawMessage(cfg) })
		deferred, err := Parse(data)
		if err != nil {
			t.Fatalf("%s: %v", cfg, err)
		}
		if !deferred.rawBytes {
			t.Errorf("%s: byte-level mapping was not deferred", cfg)
		}
		eager, err := Parse(data)
		if err != nil {
			t.Fatal(err)
		}
		if eager.pre, err = parsePreTokenizer(json.RawMessage(cfg), "pre_tokenizer"); err != nil {
			t.Fatal(err)
		}
		eager.rawBytes = false
		for _, s := range texts {
			for pass := range 2 { // the second pass reads the caches
				if got, want := deferred.Encode(s, false), eager.Encode(s, false); !slices.Equal(got, want) {
					t.Errorf("%s pass %d: %q → %v, eager mapping gives %v", cfg, pass, s, got, want)
				}
			}
		}
	}
}
