package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/panacea-go/toolkit/internal/testutil"
	"github.com/panacea-go/toolkit/trainer"
)

// TestDemoFrontMovesWithLambda runs the README's main job (examples/panacea-dpo.yaml: DPO on
// the real PKU-SafeRLHF rows, helpful and harmless) and evaluates the front at the two
// vertices. On the training rows, the helpful dimension's accuracy and margin must be higher
// at λ = (1, 0) than at (0, 1), the harmless dimension's the other way round, and the
// accuracy front's hypervolume must exceed the base model's. Held-out figures are logged.
func TestDemoFrontMovesWithLambda(t *testing.T) {
	if testing.Short() {
		t.Skip("the demo training run takes about two minutes")
	}
	src := testutil.SharedData(t, "stories260k-hf")
	dir := t.TempDir()
	model, runDir := filepath.Join(dir, "s260k"), filepath.Join(dir, "run")
	if _, err := run(t, "export", "--model", src, "--out", model, "--with-past"); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(testutil.RepoRoot(t), "examples", "panacea-dpo.yaml")
	if _, err := run(t, "train", "--config", cfg, "--model", model, "--out", runDir); err != nil {
		t.Fatal(err)
	}
	if _, err := run(t, "eval", "--model", runDir, "--grid", "2"); err != nil {
		t.Fatal(err)
	}
	tr := readFront(t, runDir, "train")
	// Grid(2, 2) is [(0, 1), (1, 0)]: index 1 favours dimension 0 (helpful).
	if tr.Lambdas[1][0] != 1 || tr.Dimensions[0] != "helpful" {
		t.Fatalf("unexpected grid %v or dimensions %v", tr.Lambdas, tr.Dimensions)
	}
	help1, help0 := tr.Scores[1][0], tr.Scores[0][0]
	harm1, harm0 := tr.Scores[1][1], tr.Scores[0][1]
	t.Logf("train: helpful acc %.3f→%.3f margin %.4f→%.4f; harmless acc %.3f→%.3f "+
		"margin %.4f→%.4f (λ (0,1) → (1,0)); hypervolume %.4f vs base %.4f",
		help0.Accuracy, help1.Accuracy, help0.Margin, help1.Margin, harm0.Accuracy,
		harm1.Accuracy, harm0.Margin, harm1.Margin, tr.Accuracy.Hypervolume, tr.BaseHypervolume)
	if help1.Accuracy <= help0.Accuracy || help1.Margin <= help0.Margin {
		t.Errorf("helpful does not improve toward λ = (1, 0)")
	}
	if harm0.Accuracy <= harm1.Accuracy || harm0.Margin <= harm1.Margin {
		t.Errorf("harmless does not improve toward λ = (0, 1)")
	}
	if tr.Accuracy.Hypervolume <= tr.BaseHypervolume {
		t.Errorf("front hypervolume %.4f does not exceed the base model's %.4f",
			tr.Accuracy.Hypervolume, tr.BaseHypervolume)
	}
	ev := readFront(t, runDir, "eval")
	t.Logf("held out: helpful acc %.3f→%.3f, harmless acc %.3f→%.3f; hypervolume %.4f vs base %.4f",
		ev.Scores[0][0].Accuracy, ev.Scores[1][0].Accuracy, ev.Scores[0][1].Accuracy,
		ev.Scores[1][1].Accuracy, ev.Accuracy.Hypervolume, ev.BaseHypervolume)
}

// TestSFT3RunsEndToEnd runs the 3-dimension SFT example (helpful, harmless, concise from the
// real PKU-SafeRLHF rows) for a few steps, then evaluates its NLL front at the vertices and
// generates at one λ: every command of an SFT run works on the real data.
func TestSFT3RunsEndToEnd(t *testing.T) {
	src := testutil.SharedData(t, "stories260k-hf")
	dir := t.TempDir()
	model, runDir := filepath.Join(dir, "s260k"), filepath.Join(dir, "run")
	if _, err := run(t, "export", "--model", src, "--out", model); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(testutil.RepoRoot(t), "examples", "panacea-sft3.yaml")
	if _, err := run(t, "train", "--config", cfg, "--model", model, "--out", runDir,
		"--steps", "6"); err != nil {
		t.Fatal(err)
	}
	if _, err := run(t, "eval", "--model", runDir, "--grid", "2", "--splits", "eval"); err != nil {
		t.Fatal(err)
	}
	se := readFront(t, runDir, "eval")
	if len(se.Dimensions) != 3 || len(se.Lambdas) != 3 || se.NLL == nil {
		t.Fatalf("front has dimensions %v, %d points, NLL front %v", se.Dimensions,
			len(se.Lambdas), se.NLL != nil)
	}
	for i, row := range se.Scores {
		for d, s := range row {
			if !(s.NLL > 0) || s.NLL >= se.Base[d].NLL {
				t.Errorf("λ %v, %s: NLL %.4f not below the base model's %.4f", se.Lambdas[i],
					se.Dimensions[d], s.NLL, se.Base[d].NLL)
			}
		}
	}
	for _, p := range []string{"front-eval-0-1.png", "front-eval-1-2.svg"} {
		if _, err := os.Stat(filepath.Join(runDir, "eval", p)); err != nil {
			t.Errorf("missing plot: %v", err)
		}
	}
	text, err := run(t, "generate", "--model", runDir, "--lambda", "0.2,0.3,0.5", "--prompt",
		"Once upon a time", "--max-new-tokens", "8")
	if err != nil || len(text) <= len("Once upon a time") {
		t.Fatalf("generate on the SFT run: %q, %v", text, err)
	}
}

// TestRLHFAcceptance runs the README's three RLHF commands on the real data: the two reward
// models of examples/reward-helpful.yaml and examples/reward-harmless.yaml (PKU-SafeRLHF
// better_response_id and safer_response_id), PPO with examples/panacea-ppo.yaml against
// them, and eval. Each reward model's held-out pair accuracy must be above chance; on the
// held-out prompts, each dimension's mean reward at its vertex λ must be above the base
// model's (the policy starts as the base model, so the reward rose over training), and
// the swept front's hypervolume must exceed the base model's.
func TestRLHFAcceptance(t *testing.T) {
	src := testutil.SharedData(t, "stories260k-hf")
	dir := t.TempDir()
	model := filepath.Join(dir, "s260k")
	if _, err := run(t, "export", "--model", src, "--out", model, "--with-past"); err != nil {
		t.Fatal(err)
	}
	examples := filepath.Join(testutil.RepoRoot(t), "examples")
	var rms []string
	for _, dim := range []string{"helpful", "harmless"} {
		out := filepath.Join(dir, "reward-"+dim)
		if _, err := run(t, "train", "--config", filepath.Join(examples, "reward-"+dim+".yaml"),
			"--model", model, "--out", out); err != nil {
			t.Fatal(err)
		}
		raw, err := os.ReadFile(filepath.Join(out, trainer.RewardFile))
		if err != nil {
			t.Fatal(err)
		}
		var info trainer.RewardInfo
		if err := json.Unmarshal(raw, &info); err != nil {
			t.Fatal(err)
		}
		t.Logf("reward model %s: train accuracy %.3f (%d/%d), held-out %.3f (%d/%d)", dim,
			info.Train.Accuracy, info.Train.Correct, info.Train.Pairs, info.Eval.Accuracy,
			info.Eval.Correct, info.Eval.Pairs)
		if info.Eval.Pairs < 20 || info.Eval.Accuracy <= 0.5 {
			t.Errorf("reward model %s: held-out accuracy %.3f on %d pairs is not above chance",
				dim, info.Eval.Accuracy, info.Eval.Pairs)
		}
		rms = append(rms, out)
	}
	runDir := filepath.Join(dir, "ppo")
	if _, err := run(t, "train", "--config", filepath.Join(examples, "panacea-ppo.yaml"),
		"--model", model, "--out", runDir, "--reward-models", strings.Join(rms, ",")); err != nil {
		t.Fatal(err)
	}
	if _, err := run(t, "eval", "--model", runDir, "--grid", "2", "--prompts", "32"); err != nil {
		t.Fatal(err)
	}
	for _, split := range []string{"train", "eval"} {
		se := readFront(t, runDir, split)
		// Grid(2, 2) is [(0, 1), (1, 0)]: index 1 favours dimension 0 (helpful).
		if len(se.Lambdas) != 2 || se.Lambdas[1][0] != 1 || se.Reward == nil ||
			se.Dimensions[0] != "helpful" {
			t.Fatalf("%s: unexpected front: grid %v, dimensions %v", split, se.Lambdas,
				se.Dimensions)
		}
		help, harm := se.Scores[1][0].Reward, se.Scores[0][1].Reward
		t.Logf("%s prompts: helpful reward base %.3f → %.3f at λ (1,0); harmless base %.3f → "+
			"%.3f at λ (0,1); hypervolume %.3f vs base %.3f", split, se.Base[0].Reward, help,
			se.Base[1].Reward, harm, se.Reward.Hypervolume, se.BaseHypervolume)
		if split != "eval" {
			continue
		}
		if help <= se.Base[0].Reward || harm <= se.Base[1].Reward {
			t.Errorf("held-out vertex rewards (helpful %.3f, harmless %.3f) not above the base "+
				"model's (%.3f, %.3f)", help, harm, se.Base[0].Reward, se.Base[1].Reward)
		}
		if se.Reward.Hypervolume <= se.BaseHypervolume {
			t.Errorf("held-out reward front hypervolume %.3f does not exceed the base model's %.3f",
				se.Reward.Hypervolume, se.BaseHypervolume)
		}
	}
}

// readFront reads a run's eval/front-SPLIT.json.
func readFront(t *testing.T, runDir, split string) *trainer.SplitEval {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(runDir, "eval", "front-"+split+".json"))
	if err != nil {
		t.Fatal(err)
	}
	var se trainer.SplitEval
	if err := json.Unmarshal(raw, &se); err != nil {
		t.Fatal(err)
	}
	return &se
}
