package trainer

import (
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/panacea-go/toolkit/datasets"
	"github.com/panacea-go/toolkit/export"
	"github.com/panacea-go/toolkit/internal/testutil"
)

var (
	storiesOnce sync.Once
	storiesDir  string
	storiesErr  error
	scratch     string
)

func TestMain(m *testing.M) {
	var err error
	scratch, err = os.MkdirTemp("", "trainer-test")
	if err != nil {
		panic(err)
	}
	code := m.Run()
	os.RemoveAll(scratch)
	os.Exit(code)
}

// storiesExport exports the real stories260k model once per test binary and returns the
// folder. It also points the reference log-prob cache at a scratch folder.
func storiesExport(t *testing.T) string {
	t.Helper()
	testutil.InitORT(t)
	src := testutil.SharedData(t, "stories260k-hf")
	storiesOnce.Do(func() {
		storiesDir = filepath.Join(scratch, "s260k")
		_, storiesErr = export.Export(src, storiesDir, export.Options{})
	})
	if storiesErr != nil {
		t.Fatal(storiesErr)
	}
	// Keep the library where it is, but put reference log-probs in a fresh cache.
	t.Setenv("TOOLKIT_ORT_LIB", testutil.ORTLib(t))
	t.Setenv("TOOLKIT_CACHE", filepath.Join(scratch, "cache"))
	return storiesDir
}

// smallConfig is a quick DPO run on the real PKU rows: two dimensions, 1 pair per
// dimension per step, short sequences.
func smallConfig(t *testing.T, out string) Config {
	t.Helper()
	pku := filepath.Join(testutil.SharedData(t, "pku-saferlhf"), "alpaca7b-test-head190.jsonl")
	cfg := Defaults()
	cfg.Model, cfg.Out = storiesExport(t), out
	cfg.Steps, cfg.SaveEvery, cfg.LR, cfg.Warmup = 6, 2, 5e-3, 1
	cfg.Data = datasets.DataConfig{
		Dimensions: []datasets.DimensionConfig{
			{Name: "helpful", Source: pku, Label: "better_response_id"},
			{Name: "harmless", Source: pku, Label: "safer_response_id"},
		},
		Template:     datasets.TemplateConfig{Style: "hh"},
		MaxPromptLen: 24, MaxLen: 48, BatchSize: 1, Epochs: 1, EvalFraction: 0.2, Seed: 3,
	}
	return cfg
}
