package datasets

import (
	"bytes"
	"compress/gzip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/panacea-go/toolkit/datasets/tokenizer"
	"github.com/panacea-go/toolkit/internal/testutil"
)

// The real tokenizer satisfies the interface this package codes against.
var _ Tokenizer = (*tokenizer.Tokenizer)(nil)

// byteTok is a lossless test tokenizer: one token per byte (id = byte + 3), "<s>" = 1 and
// "</s>" = 2; Encode with special tokens prepends "<s>".
type byteTok struct{}

func (byteTok) Encode(text string, special bool) []int {
	var ids []int
	if special {
		ids = append(ids, 1)
	}
	for _, c := range []byte(text) {
		ids = append(ids, int(c)+3)
	}
	return ids
}

func (byteTok) Decode(ids []int, skipSpecial bool) string {
	var b []byte
	for _, id := range ids {
		switch {
		case id >= 3:
			b = append(b, byte(id-3))
		case !skipSpecial && id == 1:
			b = append(b, "<s>"...)
		case !skipSpecial && id == 2:
			b = append(b, "</s>"...)
		}
	}
	return string(b)
}

func (byteTok) TokenID(tok string) (int, bool) {
	switch tok {
	case "<s>":
		return 1, true
	case "</s>":
		return 2, true
	}
	return 0, false
}

// writeFile writes content to dir/name, gzipped when name ends in .gz, and returns the path.
func writeFile(t testing.TB, dir, name, content string) string {
	t.Helper()
	data := []byte(content)
	if strings.HasSuffix(name, ".gz") {
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		if _, err := zw.Write(data); err != nil {
			t.Fatal(err)
		}
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
		data = buf.Bytes()
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// storiesTok loads the real stories260k tokenizer from shared data.
func storiesTok(t testing.TB) *tokenizer.Tokenizer {
	t.Helper()
	tok, err := tokenizer.Load(filepath.Join(testutil.SharedData(t, "stories260k-hf"),
		"tokenizer.json"))
	if err != nil {
		t.Fatalf("load stories260k tokenizer: %v", err)
	}
	return tok
}

func pkuFile(t testing.TB) string {
	return filepath.Join(testutil.SharedData(t, "pku-saferlhf"), "alpaca7b-test-head190.jsonl")
}

func hhFile(t testing.TB) string {
	return filepath.Join(testutil.SharedData(t, "hh-rlhf"), "harmless-base-test.jsonl.gz")
}

// mustLoad loads cfg with tok and fails the test on error.
func mustLoad(t testing.TB, cfg *DataConfig, tok Tokenizer) *Dataset {
	t.Helper()
	ds, err := Load(cfg, tok)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return ds
}
