package trainer

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/panacea-go/toolkit/export"
	"github.com/panacea-go/toolkit/ort"
)

// TestTokenizerBeyondVocabulary: a base model whose tokenizer yields ids past the model's
// vocabulary (here: the stories260k export with its manifest claiming 100 ids) is refused
// before any graph runs, by every training objective, naming the data row and the model.
func TestTokenizerBeyondVocabulary(t *testing.T) {
	src := storiesExport(t)
	model := t.TempDir()
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if err := copyFile(filepath.Join(src, e.Name()), filepath.Join(model, e.Name())); err != nil {
			t.Fatal(err)
		}
	}
	man, err := export.ReadManifest(model)
	if err != nil {
		t.Fatal(err)
	}
	man.VocabSize = 100
	js, err := json.Marshal(man)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(model, export.ManifestFile), js, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, objective := range []string{"dpo", "reward"} {
		cfg := smallConfig(t, t.TempDir())
		cfg.Model, cfg.Objective = model, objective
		if objective == "reward" {
			cfg.Data.Dimensions = cfg.Data.Dimensions[:1]
		}
		err := Train(context.Background(), cfg, ort.Options{Threads: 1}, false, Hooks{})
		if err == nil || !strings.Contains(err.Error(), "outside the vocabulary") ||
			!strings.Contains(err.Error(), "alpaca7b-test-head190.jsonl:") ||
			!strings.Contains(err.Error(), model) {
			t.Errorf("%s: got %v, want an error naming the row, the vocabulary and %s",
				objective, err, model)
		}
		t.Logf("%s: %v", objective, err)
	}
}
