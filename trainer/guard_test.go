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

// TestResumeNoticesRemovedSettings: a setting present in the run's checkpoint but left out
// now (omitempty fields: reward_lora, targets, ideal_point…) refuses the resume, while
// log and save intervals may change.
func TestResumeNoticesRemovedSettings(t *testing.T) {
	dir := t.TempDir()
	was := Defaults()
	was.Out, was.Model, was.Objective = dir, "m", "reward"
	was.RewardLoRA, was.IdealPoint = true, []float64{0.5, 0.5}
	conf, err := json.Marshal(was)
	if err != nil {
		t.Fatal(err)
	}
	js, _ := json.Marshal(map[string]any{"config": json.RawMessage(conf)})
	if err := os.WriteFile(filepath.Join(dir, CheckpointFile), js, 0o644); err != nil {
		t.Fatal(err)
	}
	now := was
	now.RewardLoRA, now.IdealPoint = false, nil
	err = sameSettings(now)
	if err == nil || !strings.Contains(err.Error(), "reward_lora") ||
		!strings.Contains(err.Error(), "ideal_point") {
		t.Fatalf("resume without reward_lora and ideal_point: got %v", err)
	}
	now = was
	now.LogEvery, now.SaveEvery = was.LogEvery+3, was.SaveEvery+5
	if err := sameSettings(now); err != nil {
		t.Fatalf("resume with other log and save intervals: %v", err)
	}
}

// TestRewardTokenizerMustMatch: a PPO reward model whose tokenizer files or vocabulary
// differ from the policy's is refused (its scores would read other text).
func TestRewardTokenizerMustMatch(t *testing.T) {
	model := storiesExport(t)
	man, err := export.ReadManifest(model)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, f := range append([]string{export.ManifestFile}, man.TokenizerFiles...) {
		if err := copyFile(filepath.Join(model, f), filepath.Join(dir, f)); err != nil {
			t.Fatal(err)
		}
	}
	if err := sameTokenizer(model, man, dir); err != nil {
		t.Fatalf("identical tokenizer refused: %v", err)
	}
	tj := filepath.Join(dir, man.TokenizerFiles[0])
	raw, err := os.ReadFile(tj)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(tj, append(raw, ' '), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := sameTokenizer(model, man, dir); err == nil ||
		!strings.Contains(err.Error(), man.TokenizerFiles[0]) {
		t.Fatalf("changed %s: got %v", man.TokenizerFiles[0], err)
	}
	other := *man
	other.VocabSize++
	if err := sameTokenizer(model, &other, dir); err == nil ||
		!strings.Contains(err.Error(), "vocabulary") {
		t.Fatalf("other vocabulary: got %v", err)
	}
}
