package trainer

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/panacea-go/toolkit/ort"
)

var errKilled = errors.New("killed")

func readMetrics(t *testing.T, dir string) []StepMetrics {
	return readJSONLines[StepMetrics](t, filepath.Join(dir, MetricsFile))
}

// readJSONLines decodes one T per line of a JSON-lines file.
func readJSONLines[T any](t *testing.T, path string) []T {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []T
	for _, line := range bytes.Split(bytes.TrimSpace(raw), []byte("\n")) {
		var m T
		if err := json.Unmarshal(line, &m); err != nil {
			t.Fatalf("%s: line %q: %v", path, line, err)
		}
		out = append(out, m)
	}
	return out
}

func adapterBytes(t *testing.T, dir string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, AdapterFile))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestKillAndResumeMatchesUninterrupted runs the same training three ways: straight
// through; killed after step 5 (the last checkpoint is at step 4, nothing saved after it)
// then resumed; interrupted by a cancelled context at step 3 (which saves) then resumed.
// All three must end with the same adapter bytes and the same metrics.
func TestKillAndResumeMatchesUninterrupted(t *testing.T) {
	o := ort.Options{Threads: 1}
	ctx := context.Background()

	full := smallConfig(t, t.TempDir())
	if err := Train(ctx, full, o, false, Hooks{}); err != nil {
		t.Fatal(err)
	}
	want := adapterBytes(t, full.Out)
	wantMet := readMetrics(t, full.Out)
	if len(wantMet) != full.Steps {
		t.Fatalf("%d metrics lines, want %d", len(wantMet), full.Steps)
	}

	killed := smallConfig(t, t.TempDir())
	err := Train(ctx, killed, o, false, Hooks{AfterStep: func(step int) error {
		if step == 5 {
			return errKilled
		}
		return nil
	}})
	if !errors.Is(err, errKilled) {
		t.Fatalf("kill hook: got %v", err)
	}
	if err := Train(ctx, killed, o, false, Hooks{}); err == nil {
		t.Fatal("a second run into a folder with a checkpoint started without --resume")
	}
	changed := killed
	changed.Steps = 9
	if err := Train(ctx, changed, o, true, Hooks{}); err == nil ||
		!strings.Contains(err.Error(), "steps") {
		t.Fatalf("resume with another step count: %v, want a refusal naming steps", err)
	}
	if err := Train(ctx, killed, o, true, Hooks{}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(adapterBytes(t, killed.Out), want) {
		t.Fatal("killed-and-resumed adapter differs from the uninterrupted one")
	}
	gotMet := readMetrics(t, killed.Out)
	if len(gotMet) != len(wantMet) {
		t.Fatalf("resumed run has %d metrics lines, want %d", len(gotMet), len(wantMet))
	}
	for i := range gotMet {
		if gotMet[i].Loss != wantMet[i].Loss || gotMet[i].Step != wantMet[i].Step {
			t.Fatalf("step %d: loss %v after resume, %v uninterrupted", i+1, gotMet[i].Loss,
				wantMet[i].Loss)
		}
	}

	stopped := smallConfig(t, t.TempDir())
	cctx, cancel := context.WithCancel(ctx)
	err = Train(cctx, stopped, o, false, Hooks{AfterStep: func(step int) error {
		if step == 3 {
			cancel()
		}
		return nil
	}})
	if !errors.Is(err, ErrInterrupted) {
		t.Fatalf("cancelled run returned %v, want ErrInterrupted", err)
	}
	if _, err := os.Stat(filepath.Join(stopped.Out, ModelFile)); err == nil {
		t.Fatal("an interrupted run wrote the final model")
	}
	if err := Train(ctx, stopped, o, true, Hooks{}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(adapterBytes(t, stopped.Out), want) {
		t.Fatal("interrupted-and-resumed adapter differs from the uninterrupted one")
	}
}
