package export

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/panacea-go/toolkit/internal/testutil"
)

// fixtureDir returns testdata/export/<name> of the repository.
func fixtureDir(t *testing.T, name string) string {
	t.Helper()
	return filepath.Join(testutil.RepoRoot(t), "testdata", "export", name)
}

// fixtureCases lists the case folders of testdata/export (those with a reference.json).
func fixtureCases(t *testing.T) []string {
	t.Helper()
	entries, err := os.ReadDir(fixtureDir(t, ""))
	if err != nil {
		t.Fatal(err)
	}
	var cases []string
	for _, e := range entries {
		if _, err := os.Stat(fixtureDir(t, filepath.Join(e.Name(), "reference.json"))); err == nil {
			cases = append(cases, e.Name())
		}
	}
	if len(cases) == 0 {
		t.Fatal("no cases with a reference.json in testdata/export")
	}
	return cases
}

// TestFixturesMatchReference exports every fixture (f32, with and without past; also f16
// when the checkpoint itself is stored in 16 bits, so that the reference's rounded weights
// are what f16 storage holds) and compares the logits with the PyTorch float64 reference
// at the non-padded positions.
func TestFixturesMatchReference(t *testing.T) {
	for _, name := range fixtureCases(t) {
		dir := fixtureDir(t, name)
		ref := readReference(t, dir)
		variants := []Options{{DType: "f32"}, {DType: "f32", WithPast: true}}
		if ref.WeightsDType == "F16" || ref.WeightsDType == "BF16" {
			variants = append(variants, Options{DType: "f16"}, Options{DType: "f16", WithPast: true})
		}
		for _, o := range variants {
			label := fmt.Sprintf("%s/%s/past=%v", name, o.DType, o.WithPast)
			t.Run(label, func(t *testing.T) {
				l := exportAndOpen(t, dir, o)
				got := []int{len(ref.InputIDs), len(ref.InputIDs[0]), l.m.VocabSize}
				if !slices.Equal(got, ref.LogitsShape) {
					t.Fatalf("logits shape %v, reference %v", got, ref.LogitsShape)
				}
				logits, cache := l.run(t, ref.InputIDs, ref.AttentionMask, nil)
				cache.destroy()
				d := compareLogits(t, label, logits, ref.Logits, ref.CompareMask, l.m.VocabSize, 1e-4)
				t.Logf("%s: max |Δ| vs reference = %.3g", label, d)
			})
		}
	}
}

// TestManifestAndFolder checks what Export writes besides the graph.
func TestManifestAndFolder(t *testing.T) {
	src := testutil.SharedData(t, "stories260k-hf")
	dst := t.TempDir()
	var calls, lastDone, lastTotal int64
	progress := func(done, total int64) {
		if done < lastDone || done > total {
			t.Errorf("progress went from %d to %d of %d", lastDone, done, total)
		}
		calls, lastDone, lastTotal = calls+1, done, total
	}
	m, err := Export(src, dst, Options{WithPast: true, DType: "f16", Progress: progress})
	if err != nil {
		t.Fatal(err)
	}
	// 47 tensors of 260,032 parameters, 2 bytes each in f16.
	if calls != 47 || lastDone != lastTotal || lastTotal != 2*260032 {
		t.Errorf("progress: %d calls, last %d of %d; want 47 calls ending at %d",
			calls, lastDone, lastTotal, 2*260032)
	}
	back, err := ReadManifest(dst)
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		what      string
		got, want any
	}{
		{"family", back.Family, "llama"},
		{"model_type", back.ModelType, "llama"},
		{"layers", back.NumLayers, 5},
		{"hidden", back.HiddenSize, 64},
		{"heads", back.NumHeads, 8},
		{"kv heads", back.NumKVHeads, 4},
		{"head dim", back.HeadDim, 8},
		{"vocab", back.VocabSize, 512},
		{"max positions", back.MaxPositions, 512},
		{"with past", back.WithPast, true},
		{"dtype", back.DType, "f16"},
		{"tied", back.TiedEmbeddings, true},
		{"bos", *back.BOSTokenID, 1},
		{"eos from generation_config.json", fmt.Sprint(back.EOSTokenIDs), "[1 2]"},
		{"pad", back.PadTokenID == nil, true},
		{"tokenizer files", fmt.Sprint(back.TokenizerFiles),
			"[tokenizer.json tokenizer_config.json special_tokens_map.json]"},
		{"same as returned", mustJSON(t, back), mustJSON(t, m)},
		{"inputs", len(back.InputNames()), 2 + 2*5},
		{"first past", back.PastInputs()[1], "past_key_values.0.value"},
		{"last present", back.PresentOutputs()[9], "present.4.value"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.what, c.got, c.want)
		}
	}
	for _, f := range []string{ModelFile, DataFile, ManifestFile, "config.json",
		"generation_config.json", "tokenizer.json"} {
		if _, err := os.Stat(filepath.Join(dst, f)); err != nil {
			t.Errorf("missing %s: %v", f, err)
		}
	}
	if _, err := Export(src, src, Options{}); err == nil {
		t.Error("export into the source folder accepted")
	}
}

// TestEOSFromConfigWhenNoGenerationConfig: without generation_config.json the ids come
// from config.json, where eos_token_id may also be a list.
func TestEOSFromConfigWhenNoGenerationConfig(t *testing.T) {
	cases := []struct {
		eos  any
		want string
	}{{2, "[2]"}, {[]int{2, 7}, "[2 7]"}}
	for _, c := range cases {
		src := copyFixture(t, "llama_gqa_tied")
		editConfig(t, src, func(cfg map[string]any) { cfg["eos_token_id"] = c.eos })
		m, err := Export(src, t.TempDir(), Options{})
		if err != nil {
			t.Fatal(err)
		}
		if got := fmt.Sprint(m.EOSTokenIDs); got != c.want {
			t.Errorf("eos %v: got %s, want %s", c.eos, got, c.want)
		}
	}
}

// copyFixture copies testdata/export/<name> into a temporary folder.
func copyFixture(t *testing.T, name string) string {
	t.Helper()
	src, dst := fixtureDir(t, name), t.TempDir()
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

// editConfig rewrites dir/config.json through edit.
func editConfig(t *testing.T, dir string, edit func(map[string]any)) {
	t.Helper()
	path := filepath.Join(dir, "config.json")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	cfg := map[string]any{}
	if err := json.Unmarshal(data, &cfg); err != nil {
		t.Fatal(err)
	}
	edit(cfg)
	if data, err = json.Marshal(cfg); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// TestMain keeps the exporter's progress logs out of the test output.
func TestMain(m *testing.M) {
	h := slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})
	slog.SetDefault(slog.New(h))
	os.Exit(m.Run())
}
