package tokenizer

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/panacea-go/toolkit/internal/testutil"
)

// loadStories loads the tokenizer of the shared stories260k model (Llama 2 style).
func loadStories(t testing.TB) *Tokenizer {
	t.Helper()
	tok, err := Load(filepath.Join(testutil.SharedData(t, "stories260k-hf"), "tokenizer.json"))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// storiesReference is the part of stories260k-hf/reference.json the tests use.
type storiesReference struct {
	Record struct {
		Prompt       string `json:"prompt"`
		PromptIDs    []int  `json:"prompt_ids"`
		GeneratedIDs []int  `json:"generated_ids"`
		Text         string `json:"text"`
		Continuation string `json:"continuation"`
	} `json:"record"`
}

func TestStoriesReference(t *testing.T) {
	dir := testutil.SharedData(t, "stories260k-hf")
	tok := loadStories(t)
	data, err := os.ReadFile(filepath.Join(dir, "reference.json"))
	if err != nil {
		t.Fatal(err)
	}
	var ref storiesReference
	if err := json.Unmarshal(data, &ref); err != nil {
		t.Fatalf("reference.json: %v", err)
	}
	r := ref.Record

	want := []int{1, 403, 407, 261, 378}
	if got := tok.Encode("Once upon a time", true); !slices.Equal(got, want) {
		t.Errorf("Encode(%q, true) = %v, want %v", "Once upon a time", got, want)
	}
	if got := tok.Encode(r.Prompt, true); !slices.Equal(got, r.PromptIDs) {
		t.Errorf("Encode(%q, true) = %v, want reference %v", r.Prompt, got, r.PromptIDs)
	}
	if got := tok.Encode(r.Prompt, false); !slices.Equal(got, r.PromptIDs[1:]) {
		t.Errorf("Encode(%q, false) = %v, want %v", r.Prompt, got, r.PromptIDs[1:])
	}
	if got := tok.Decode(r.GeneratedIDs, true); got != r.Continuation {
		t.Errorf("Decode(generated) = %q, want %q", got, r.Continuation)
	}
	all := append(slices.Clone(r.PromptIDs), r.GeneratedIDs...)
	if got := tok.Decode(all, true); got != r.Text {
		t.Errorf("Decode(prompt+generated) = %q, want %q", got, r.Text)
	}
	if got, want := tok.Decode(r.PromptIDs, false), "<s> Once upon a time"; got != want {
		t.Errorf("Decode(prompt, keep specials) = %q, want %q", got, want)
	}
	if n := tok.VocabSize(); n != 512 {
		t.Errorf("VocabSize = %d, want 512", n)
	}
}

// tokens spells ids as vocabulary strings, for readable failures.
func tokens(tok *Tokenizer, ids []int) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i], _ = tok.Token(id)
	}
	return out
}

func TestStoriesEdgeCases(t *testing.T) {
	tok := loadStories(t)
	// Byte-fallback ids: <0x00> is id 3, so byte b is id 3+b.
	b := func(bs ...byte) []string {
		out := make([]string, len(bs))
		for i, x := range bs {
			out[i] = byteToken(x)
		}
		return out
	}
	cat := func(parts ...[]string) []string { return slices.Concat(parts...) }
	tests := []struct {
		name, in string
		want     []string
	}{
		{"empty", "", nil},
		{"one space", " ", []string{"▁", "▁"}},
		{"space run", "  x  ", []string{"▁", "▁", "▁", "x", "▁", "▁"}},
		{"newline is a byte", "a\nb", cat([]string{"▁a"}, b('\n'), []string{"b"})},
		{"tab and CR", "\t\r", cat([]string{"▁"}, b('\t', '\r'))},
		{"emoji falls back to bytes", "😀", cat([]string{"▁"}, b(0xF0, 0x9F, 0x98, 0x80))},
		{"CJK falls back to bytes", "中", cat([]string{"▁"}, b(0xE4, 0xB8, 0xAD))},
		{"literal BOS text is the special token", "<s>hi", []string{"<s>", "▁h", "i"}},
		{"special in the middle splits the text", "a</s>b", []string{"▁a", "</s>", "▁b"}},
		{"literal metaspace reads as space", "▁", []string{"▁", "▁"}},
	}
	for _, tc := range tests {
		got := tokens(tok, tok.Encode(tc.in, false))
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s: Encode(%q) = %q, want %q", tc.name, tc.in, got, tc.want)
		}
	}
}

// roundTripStrings are texts that must survive Encode then Decode unchanged.
var roundTripStrings = []string{
	"", " ", "  leading", "trailing  ", "a  b   c", "\n", "line one\nline two\n\n", "\t\ttabs\t",
	"Once upon a time, there was a little girl named Lily.", "It's 3:45pm; 100% sure!",
	"😀 emoji 👨‍👩‍👧 ZWJ", "中文 日本語 한국어", "café naïve", "e\u0301",
	"مرحبا", "Привет",
	"code: if (x) { return y; }", "\x00\x01\x7f", "\u00a0\u3000", "~!@#$%^&*()_+",
}

func TestStoriesRoundTrip(t *testing.T) {
	tok := loadStories(t)
	for _, s := range roundTripStrings {
		ids := tok.Encode(s, true)
		if got := tok.Decode(ids, true); got != s {
			t.Errorf("Decode(Encode(%q)) = %q (ids %v)", s, got, ids)
		}
	}
}

// naiveBPE is a slow, obviously correct BPE: merge the lowest-ranked adjacent pair, leftmost
// first, until none applies. It checks the heap-based merge loop.
func naiveBPE(m *bpeModel, ids []int) []int {
	ids = slices.Clone(ids)
	for {
		best, at := int32(-1), -1
		var merged int
		for k := 0; k+1 < len(ids); k++ {
			if r, ok := m.merges[pairKey(ids[k], ids[k+1])]; ok && (best < 0 || r.rank < best) {
				best, at, merged = r.rank, k, int(r.id)
			}
		}
		if at < 0 {
			return ids
		}
		ids = slices.Replace(ids, at, at+2, merged)
	}
}

func TestMergeLoopMatchesNaiveBPE(t *testing.T) {
	tok := loadStories(t)
	texts := append(slices.Clone(roundTripStrings),
		"the cat sat on the mat and the dog ran after the ball",
		strings.Repeat("aaaa bbb ", 20), "She wanted to play with it, but it was too high.")
	for _, s := range texts {
		word := tok.normalizer.normalize(s)
		if word == "" {
			continue
		}
		// Symbols before merging: one per character, bytes for characters outside the vocab.
		var start []int
		for _, r := range word {
			if id, ok := tok.model.vocab[string(r)]; ok {
				start = append(start, id)
				continue
			}
			for _, c := range []byte(string(r)) {
				start = append(start, tok.model.byteIDs[c])
			}
		}
		want := naiveBPE(tok.model, start)
		if got := tok.model.merge(nil, word); !slices.Equal(got, want) {
			t.Errorf("%q: merge %v, naive %v", s, got, want)
		}
	}
}

func TestTokenLookups(t *testing.T) {
	tok := loadStories(t)
	tests := []struct {
		token string
		id    int
	}{{"<unk>", 0}, {"<s>", 1}, {"</s>", 2}, {"<0x0A>", 13}, {",", 432}, {"▁there", 383}}
	for _, tc := range tests {
		if id, ok := tok.TokenID(tc.token); !ok || id != tc.id {
			t.Errorf("TokenID(%q) = %d, %v; want %d", tc.token, id, ok, tc.id)
		}
		if s, ok := tok.Token(tc.id); !ok || s != tc.token {
			t.Errorf("Token(%d) = %q, %v; want %q", tc.id, s, ok, tc.token)
		}
	}
	for _, id := range []int{-1, 512, 1 << 20} {
		if s, ok := tok.Token(id); ok {
			t.Errorf("Token(%d) = %q, want none", id, s)
		}
	}
	if _, ok := tok.TokenID("no such token"); ok {
		t.Error("TokenID of an unknown string reported ok")
	}
	if !tok.IsSpecial(1) || tok.IsSpecial(432) {
		t.Error("IsSpecial: want <s> special and ',' not")
	}
	if got := tok.Decode([]int{-5, 383, 99999}, true); got != "there" {
		t.Errorf("Decode skips unknown ids: got %q, want %q", got, "there")
	}
}

func TestLoadDir(t *testing.T) {
	tok, err := LoadDir(testutil.SharedData(t, "stories260k-hf"))
	if err != nil {
		t.Fatal(err)
	}
	if got := tok.Encode("Once upon a time", true); !slices.Equal(got, []int{1, 403, 407, 261, 378}) {
		t.Errorf("LoadDir tokenizer: Encode = %v", got)
	}
	if _, err := LoadDir(t.TempDir()); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("LoadDir(empty dir) error = %v, want a not-exist error", err)
	}
}
