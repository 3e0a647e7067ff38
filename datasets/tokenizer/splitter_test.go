package tokenizer

import (
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/dlclark/regexp2"
)

// knownPatterns are the patterns that have a hand-written matcher.
var knownPatterns = []struct {
	name, pattern string
	hand          matcher
}{
	{"gpt2", gpt2Pattern, handMatcher{}},
	{"llama3", llama3Pattern, handMatcher{llama: true, maxDigits: 3}},
	{"qwen2", qwen2Pattern, handMatcher{llama: true, maxDigits: 1}},
}

// regexp2Matcher compiles a pattern on regexp2 only, bypassing the hand-written matchers.
func regexp2Matcher(t testing.TB, pattern string) matcher {
	t.Helper()
	re, err := regexp2.Compile(pattern, regexp2.None)
	if err != nil {
		t.Fatalf("compile %q: %v", pattern, err)
	}
	return regexMatcher{re: re}
}

// pieces cuts s at the spans.
func pieces(s string, spans []span) []string {
	out := make([]string, len(spans))
	for i, sp := range spans {
		out[i] = s[sp.start:sp.end]
	}
	return out
}

// trickyRunes are the characters random strings are drawn from: every class boundary the
// patterns care about.
var trickyRunes = []rune("aZsStTrReEvVmMlLdD'’ \t\n\r\v\f0123456789½Ⅻ٣!?.,-_()<>|\"" +
	"\u0085\u00a0\u2028\u3000\ufeff\u200b\u200dſKİéüß中文한あ😀👍\u0301\u0308\U0001F3FB\x00")

// randomString draws a string of up to n runes from trickyRunes.
func randomString(r *rand.Rand, n int) string {
	var sb strings.Builder
	for k := r.IntN(n + 1); k > 0; k-- {
		sb.WriteRune(trickyRunes[r.IntN(len(trickyRunes))])
	}
	return sb.String()
}

// TestHandMatchersEqualRegexp2 proves each hand-written matcher equal to regexp2 running its
// pattern, on the parity strings, hand-picked cases and random strings.
func TestHandMatchersEqualRegexp2(t *testing.T) {
	var inputs []string
	data, err := os.ReadFile(filepath.Join("testdata", "parity_strings.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &inputs); err != nil {
		t.Fatal(err)
	}
	inputs = append(inputs,
		"", " ", "  ", "a", "'", "''", "'s", "'S", "'sa", "'ll'", "'LL", "'lL", "'re'", "'r",
		"'ſ", " 'll", "x\n", "\n x", " \n", "\n\n  \n a", "\r\n\r\n", "a  ", "a \t b",
		"1234567", " 1234", "٣٤٥٦", "  !!", " !!\n\n", "!\r\nx", "\tword", "(word", "\u00a0word",
		"\xff\xfe invalid", "ok\xc3", "\u0085\u0085x", "a \ufeffb",
	)
	r := rand.New(rand.NewPCG(1, 2))
	for range 3000 {
		inputs = append(inputs, randomString(r, 24))
	}

	for _, p := range knownPatterns {
		t.Run(p.name, func(t *testing.T) {
			ref := regexp2Matcher(t, p.pattern)
			for _, s := range inputs {
				want := ref.appendMatches(nil, s)
				got := p.hand.appendMatches(nil, s)
				if !slices.Equal(got, want) {
					t.Errorf("%q:\n regexp2 %q\n hand    %q", s, pieces(s, want), pieces(s, got))
				}
			}
		})
	}
}

// TestSplitExamples pins down what the patterns do on readable cases.
func TestSplitExamples(t *testing.T) {
	tests := []struct {
		pattern, in string
		want        []string
	}{
		{gpt2Pattern, "Hello world", []string{"Hello", " world"}},
		{gpt2Pattern, "I'm  fine", []string{"I", "'m", " ", " fine"}},
		{gpt2Pattern, "a \t\n", []string{"a", " \t\n"}},
		{gpt2Pattern, "12345 x", []string{"12345", " x"}},
		{gpt2Pattern, "'Hello", []string{"'", "Hello"}},
		{llama3Pattern, "'Hello", []string{"'Hello"}},
		{llama3Pattern, "I'M here", []string{"I", "'M", " here"}},
		{llama3Pattern, "12345 x", []string{"123", "45", " x"}},
		{qwen2Pattern, "123", []string{"1", "2", "3"}},
		{llama3Pattern, "a\n\n  b", []string{"a", "\n\n", " ", " b"}},
		{llama3Pattern, " !!\n\nx", []string{" !!\n\n", "x"}},
		{llama3Pattern, "(word", []string{"(word"}},
		// U+0085 is whitespace and U+FEFF is not, as in Oniguruma (the Rust library).
		{llama3Pattern, "!\u0085", []string{"!", "\u0085"}},
		{llama3Pattern, "a \ufeffb", []string{"a", " \ufeff", "b"}},
	}
	for _, tc := range tests {
		m, err := newRegexMatcher(tc.pattern, "test")
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := m.(handMatcher); !ok {
			t.Fatalf("pattern %q did not get its hand-written matcher", tc.pattern)
		}
		if got := pieces(tc.in, m.appendMatches(nil, tc.in)); !slices.Equal(got, tc.want) {
			t.Errorf("%q: got %q, want %q", tc.in, got, tc.want)
		}
	}
}

// FuzzHandMatchers checks the hand-written matchers against regexp2 on any input.
func FuzzHandMatchers(f *testing.F) {
	for _, s := range []string{"Hello, world!", "I'm  here\n\n", "'LL 123456", "a \ufeffb\u0085"} {
		f.Add(s)
	}
	refs := make([]matcher, len(knownPatterns))
	for i, p := range knownPatterns {
		refs[i] = regexp2Matcher(f, p.pattern)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for i, p := range knownPatterns {
			want := refs[i].appendMatches(nil, s)
			if got := p.hand.appendMatches(nil, s); !slices.Equal(got, want) {
				t.Fatalf("%s %q:\n regexp2 %q\n hand    %q", p.name, s, pieces(s, want), pieces(s, got))
			}
		}
	})
}
