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

	"github.com/panacea-go/toolkit/export"
	"github.com/panacea-go/toolkit/graphs"
	"github.com/panacea-go/toolkit/graphs/onnxpb"
	"github.com/panacea-go/toolkit/ort"
)

// ppoConfig is a short PPO run on the real PKU prompts with two quickly trained reward
// models (helpful, harmless) on the stories260k export.
func ppoConfig(t *testing.T, rewardDirs []string) Config {
	t.Helper()
	cfg := smallConfig(t, t.TempDir())
	cfg.Objective = "ppo"
	cfg.Steps, cfg.SaveEvery, cfg.LR = 4, 2, 2e-3
	cfg.PPO.RewardModels = rewardDirs
	cfg.PPO.RolloutBatch, cfg.PPO.MiniBatch, cfg.PPO.MaxNewTokens = 4, 2, 6
	cfg.PPO.EntCoef = 0.01
	return cfg
}

func trainRewardModels(t *testing.T) []string {
	t.Helper()
	var dirs []string
	for i := range 2 { // helpful (better_response_id), harmless (safer_response_id)
		cfg := smallConfig(t, t.TempDir())
		cfg.Objective = "reward"
		cfg.Steps, cfg.SaveEvery, cfg.LR = 3, 0, 1e-2
		cfg.Data.Dimensions = cfg.Data.Dimensions[i : i+1]
		if err := Train(context.Background(), cfg, ort.Options{Threads: 1}, false, Hooks{}); err != nil {
			t.Fatal(err)
		}
		dirs = append(dirs, cfg.Out)
	}
	return dirs
}

func readPPOMetrics(t *testing.T, dir string) []PPOMetrics {
	return readJSONLines[PPOMetrics](t, filepath.Join(dir, MetricsFile))
}

// TestPPORunsResumesAndEvaluates runs PPO for a few steps: the first step's KL against the
// base model is zero (the adapter starts at the base model), every step has finite losses
// and rewards for both dimensions, phase timings that are positive and fit in the step's
// time, a run killed after step 3 and resumed ends with the same adapter bytes, and eval
// reports a reward front.
func TestPPORunsResumesAndEvaluates(t *testing.T) {
	o := ort.Options{Threads: 1}
	rms := trainRewardModels(t)
	full := ppoConfig(t, rms)
	if err := Train(context.Background(), full, o, false, Hooks{}); err != nil {
		t.Fatal(err)
	}
	met := readPPOMetrics(t, full.Out)
	if len(met) != full.Steps {
		t.Fatalf("%d metrics lines, want %d", len(met), full.Steps)
	}
	if met[0].KL != 0 {
		t.Errorf("first rollout KL %v, want 0 (policy starts at the base model)", met[0].KL)
	}
	for _, m := range met {
		if len(m.Rewards) != 2 || m.RespLen <= 0 || m.GradNorm <= 0 || m.Entropy <= 0 {
			t.Fatalf("step %d metrics incomplete: %+v", m.Step, m)
		}
		if !(m.GenerateS > 0 && m.ScoreS > 0 && m.UpdateS > 0 && m.GenTokensPerS > 0) ||
			m.GenerateS+m.ScoreS+m.UpdateS > m.Seconds {
			t.Errorf("step %d phases: generate %gs (%g tokens/s) + score %gs + update %gs, "+
				"want each > 0 and together ≤ the step's %gs", m.Step, m.GenerateS,
				m.GenTokensPerS, m.ScoreS, m.UpdateS, m.Seconds)
		}
	}
	if _, err := os.Stat(filepath.Join(full.Out, "samples.md")); err != nil {
		t.Errorf("no sample table: %v", err)
	}
	want := adapterBytes(t, full.Out)

	swapped := ppoConfig(t, []string{rms[1], rms[0]})
	err := Train(context.Background(), swapped, o, false, Hooks{})
	if err == nil || !strings.Contains(err.Error(), "reward-models[0]") ||
		!strings.Contains(err.Error(), "order of data.dimensions") {
		t.Errorf("reward models in the wrong order: got %v", err)
	}

	killed := ppoConfig(t, rms)
	err = Train(context.Background(), killed, o, false, Hooks{AfterStep: func(s int) error {
		if s == 3 {
			return errKilled
		}
		return nil
	}})
	if !errors.Is(err, errKilled) {
		t.Fatalf("kill hook: %v", err)
	}
	if err := Train(context.Background(), killed, o, true, Hooks{}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(adapterBytes(t, killed.Out), want) {
		t.Fatal("killed-and-resumed PPO adapter differs from the uninterrupted one")
	}

	res, err := Evaluate(full.Out, o, EvalOptions{Grid: 2, Splits: []string{"eval"}, Batch: 4,
		Prompts: 4})
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 1 || res[0].Reward == nil || len(res[0].Scores) != 2 {
		t.Fatalf("eval result %+v", res)
	}
}

// TestPPOFailedStepSavesStateBefore: a step whose later minibatch update fails (a huge
// learning rate makes the loss NaN) saves the parameters and optimiser from before the
// step, not the ones its earlier updates changed.
func TestPPOFailedStepSavesStateBefore(t *testing.T) {
	cfg := ppoConfig(t, trainRewardModels(t))
	cfg.LR, cfg.Warmup, cfg.SaveEvery = 3e5, 0, 0
	cfg.PPO.RolloutBatch, cfg.PPO.MiniBatch, cfg.PPO.PPOEpochs = 8, 1, 2
	err := Train(context.Background(), cfg, ort.Options{Threads: 1}, false, Hooks{})
	if err == nil || !strings.Contains(err.Error(), "state before the step") {
		t.Fatalf("want a failed step saved as the state before it, got %v", err)
	}
	raw, err := os.ReadFile(filepath.Join(cfg.Out, CheckpointFile))
	if err != nil {
		t.Fatal(err)
	}
	var st struct {
		Step      int `json:"step"`
		OptimStep int `json:"optim_step"`
	}
	if err := json.Unmarshal(raw, &st); err != nil {
		t.Fatal(err)
	}
	if st.OptimStep != 0 {
		t.Errorf("checkpoint %d holds %d optimiser updates, want those before the step (0)",
			st.Step, st.OptimStep)
	}
}

// TestPPOLogProbsFollowTemperature: the PPO score graph takes log-probs of logits / T, the
// distribution the rollouts are sampled from, and of the plain logits at T = 1.
func TestPPOLogProbsFollowTemperature(t *testing.T) {
	model := storiesExport(t)
	for _, c := range []struct {
		temp  float64
		scale float32 // 0: no scaling node
	}{{2, 0.5}, {1, 0}} {
		m, err := graphs.Load(filepath.Join(model, ModelFile))
		if err != nil {
			t.Fatal(err)
		}
		if err := addPPOScore(m, 64, c.temp); err != nil {
			t.Fatal(err)
		}
		producer := map[string]*onnxpb.NodeProto{}
		var logSoftmax *onnxpb.NodeProto
		for _, n := range m.GetGraph().GetNode() {
			for _, o := range n.GetOutput() {
				producer[o] = n
			}
			if n.GetOpType() == "LogSoftmax" {
				logSoftmax = n
			}
		}
		in := logSoftmax.GetInput()[0]
		if c.scale == 0 {
			if in != export.Logits {
				t.Errorf("T = 1: log-probs of %q, want the logits", in)
			}
			continue
		}
		mul := producer[in]
		if mul == nil || mul.GetOpType() != "Mul" || mul.GetInput()[0] != export.Logits {
			t.Fatalf("T = %g: log-probs of %q, want logits · 1/T", c.temp, in)
		}
		var k *onnxpb.TensorProto
		for _, init := range m.GetGraph().GetInitializer() {
			if init.GetName() == mul.GetInput()[1] {
				k = init
			}
		}
		if k == nil {
			t.Fatalf("T = %g: scale %q is not a constant", c.temp, mul.GetInput()[1])
		}
		if v, err := graphs.TensorFloats(k, ""); err != nil || len(v) != 1 || v[0] != c.scale {
			t.Errorf("T = %g: logits scaled by %v (%v), want %v", c.temp, v, err, c.scale)
		}
	}
}
