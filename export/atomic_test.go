package export

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/panacea-go/toolkit/internal/testutil"
)

// TestFailedExportKeepsThePreviousOne exports stories260k, then fails an export into the
// same folder half-way (a tokenizer_config.json that is a folder): the earlier export's
// files must be untouched and no staging folder left behind. A training run's folder is
// refused as an output.
func TestFailedExportKeepsThePreviousOne(t *testing.T) {
	src := testutil.SharedData(t, "stories260k-hf")
	root := t.TempDir()
	dst := filepath.Join(root, "out")
	if _, err := Export(src, dst, Options{}); err != nil {
		t.Fatal(err)
	}
	before := map[string][]byte{}
	for _, f := range []string{ModelFile, DataFile, ManifestFile, "tokenizer_config.json"} {
		b, err := os.ReadFile(filepath.Join(dst, f))
		if err != nil {
			t.Fatal(err)
		}
		before[f] = b
	}

	broken := filepath.Join(root, "broken")
	if err := os.MkdirAll(filepath.Join(broken, "tokenizer_config.json"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"config.json", "model.safetensors", "tokenizer.json"} {
		b, err := os.ReadFile(filepath.Join(src, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(broken, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := Export(broken, dst, Options{}); err == nil {
		t.Fatal("export of a source with a folder for tokenizer_config.json succeeded")
	}
	for f, want := range before {
		got, err := os.ReadFile(filepath.Join(dst, f))
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("%s changed or vanished after a failed export (%v)", f, err)
		}
	}
	entries, _ := os.ReadDir(root)
	for _, e := range entries {
		if strings.Contains(e.Name(), ".partial-") {
			t.Fatalf("staging folder %s left behind", e.Name())
		}
	}

	if err := os.WriteFile(filepath.Join(dst, "panacea.json"), []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Export(src, dst, Options{}); err == nil || !strings.Contains(err.Error(), "training run") {
		t.Fatalf("export into a run folder: %v", err)
	}
}
