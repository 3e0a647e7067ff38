package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/panacea-go/toolkit/internal/testutil"
	"github.com/panacea-go/toolkit/trainer"
)

// writeTrainConfig writes a small DPO config on the real PKU rows into dir.
func writeTrainConfig(t *testing.T, dir, model string) string {
	t.Helper()
	pku := filepath.Join(testutil.SharedData(t, "pku-saferlhf"), "alpaca7b-test-head190.jsonl")
	cfg := fmt.Sprintf(`model: %s
out: run
steps: 8
save-every: 1
lr: 0.005
threads: 1
data:
  dimensions:
    - {name: helpful, source: %s, label: better_response_id}
    - {name: harmless, source: %s, label: safer_response_id}
  template: {style: hh}
  max_prompt_len: 24
  max_len: 48
  batch_size: 1
  epochs: 1
  seed: 5
`, model, pku, pku)
	path := filepath.Join(dir, "train.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestTrainSIGKILLResume kills a real `toolkit train` process with SIGKILL once it has
// written a checkpoint, resumes it with --resume, and checks that the final adapter is
// byte-for-byte the one an uninterrupted run produces.
func TestTrainSIGKILLResume(t *testing.T) {
	src := testutil.SharedData(t, "stories260k-hf")
	model := filepath.Join(t.TempDir(), "s260k")
	if _, err := run(t, "export", "--model", src, "--out", model); err != nil {
		t.Fatal(err)
	}

	straight := writeTrainConfig(t, t.TempDir(), model)
	if _, err := run(t, "train", "--config", straight); err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(filepath.Join(filepath.Dir(straight), "run", trainer.AdapterFile))
	if err != nil {
		t.Fatal(err)
	}

	killedCfg := writeTrainConfig(t, t.TempDir(), model)
	runDir := filepath.Join(filepath.Dir(killedCfg), "run")
	cmd := exec.Command(os.Args[0], "train", "--config", killedCfg, "--ort-lib",
		testutil.ORTLib(t), "--log-level", "warn")
	cmd.Env = append(os.Environ(), "TOOLKIT_TEST_MAIN=1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killedAt := -1
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		var st trainer.State
		raw, err := os.ReadFile(filepath.Join(runDir, trainer.CheckpointFile))
		if err == nil && json.Unmarshal(raw, &st) == nil && st.Step >= 3 {
			cmd.Process.Kill() // SIGKILL: no chance to save anything more
			killedAt = st.Step
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	werr := cmd.Wait()
	if killedAt < 0 {
		t.Fatalf("no checkpoint at step ≥ 3 within the deadline (exit %v): %s", werr, stderr.String())
	}
	if killedAt >= 8 {
		t.Fatal("the run finished before it could be killed: the test checked nothing")
	}
	if _, err := os.Stat(filepath.Join(runDir, trainer.AdapterFile)); err == nil {
		t.Fatalf("killed at checkpoint %d, yet the final adapter exists", killedAt)
	}
	if _, err := run(t, "train", "--config", killedCfg, "--resume"); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(runDir, trainer.AdapterFile))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("run killed after checkpoint %d and resumed ends with another adapter", killedAt)
	}
	t.Logf("killed after checkpoint %d; resumed adapter equals the uninterrupted one", killedAt)
}
