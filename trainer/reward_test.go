package trainer

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	onnx "github.com/yalue/onnxruntime_go"

	"github.com/panacea-go/toolkit/datasets"
	"github.com/panacea-go/toolkit/datasets/tokenizer"
	"github.com/panacea-go/toolkit/export"
	"github.com/panacea-go/toolkit/graphs"
	"github.com/panacea-go/toolkit/graphs/autodiff"
	"github.com/panacea-go/toolkit/internal/testutil"
	"github.com/panacea-go/toolkit/ort"
)

// rewardConfig is a short reward run on the real PKU rows: one dimension, 8 pairs a step,
// about two passes over the training split.
func rewardConfig(t *testing.T, model, label string) Config {
	t.Helper()
	pku := filepath.Join(testutil.SharedData(t, "pku-saferlhf"), "alpaca7b-test-head190.jsonl")
	cfg := Defaults()
	cfg.Objective, cfg.Model, cfg.Out = "reward", model, t.TempDir()
	cfg.Steps, cfg.SaveEvery, cfg.LR, cfg.Warmup = 40, 10, 2e-2, 2 // a head-only lr
	cfg.Data = datasets.DataConfig{
		Dimensions:   []datasets.DimensionConfig{{Name: "dim", Source: pku, Label: label}},
		Template:     datasets.TemplateConfig{Style: "hh"},
		MaxPromptLen: 24, MaxLen: 64, BatchSize: 8, Epochs: 3, EvalFraction: 0.2, Seed: 3,
	}
	return cfg
}

// hiddenExport exports stories260k with the hidden_states output and a KV cache (so that the
// reward model must replace the past inputs by constants).
func hiddenExport(t *testing.T) string {
	t.Helper()
	storiesExport(t) // ORT, cache and library settings
	dir := t.TempDir()
	src := testutil.SharedData(t, "stories260k-hf")
	if _, err := export.Export(src, dir, export.Options{Hidden: true, WithPast: true}); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestRewardModelTrainsAndDeploys trains a head-only reward model (helpfulness, on an
// export with hidden_states and past inputs) and a LoRA one (harmlessness, on a plain
// export, whose hidden state is found before the LM head), then checks: the first loss is
// ln 2 and the training split's loss measured at the end is below it; the folder's
// model.onnx has exactly the inputs input_ids and attention_mask and the output score; opened afresh it reproduces the scores of the
// training graph rebuilt from the checkpoint (offset applied) and reward.json's held-out
// accuracy; left padding gives the same scores as right padding; every kept PKU row is in
// one of the two splits.
func TestRewardModelTrainsAndDeploys(t *testing.T) {
	o := ort.Options{Threads: 1}
	cases := []struct {
		name, label string
		model       func(*testing.T) string
		lora        bool
		lr          float64 // 2e-2 makes the adapter's updates too large to fit the pairs
	}{
		{"helpful/head", "better_response_id", hiddenExport, false, 2e-2},
		{"harmless/lora", "safer_response_id", storiesExport, true, 5e-3},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := rewardConfig(t, c.model(t), c.label)
			cfg.RewardLoRA = c.lora
			cfg.LR = c.lr
			if err := Train(context.Background(), cfg, o, false, Hooks{}); err != nil {
				t.Fatal(err)
			}
			met := readMetrics(t, cfg.Out)
			if len(met) != cfg.Steps {
				t.Fatalf("%d metrics lines, want %d", len(met), cfg.Steps)
			}
			if math.Abs(met[0].Loss-math.Ln2) > 1e-6 {
				t.Errorf("first loss %v, want ln 2 (zero head)", met[0].Loss)
			}
			info := readRewardInfo(t, cfg.Out)
			t.Logf("%s: loss ln 2 → train split %.4f (last 5 steps %.4f); train accuracy "+
				"%.3f (%d/%d), held-out %.3f (%d/%d), loss %.4f; deploy diff %.1e", c.name,
				info.Train.Loss, meanLoss(met[len(met)-5:]), info.Train.Accuracy,
				info.Train.Correct, info.Train.Pairs, info.Eval.Accuracy, info.Eval.Correct,
				info.Eval.Pairs, info.Eval.Loss, info.DeployMaxAbsDiff)
			if !(info.Train.Loss < math.Ln2-0.01) {
				t.Errorf("training-split loss %.4f after training, ln 2 = %.4f before",
					info.Train.Loss, math.Ln2)
			}
			checkRewardGraph(t, cfg.Out)
			if _, err := OpenLM(cfg.Out, LMShape{}, o); err == nil ||
				!strings.Contains(err.Error(), "is a reward model") {
				t.Errorf("OpenLM on a reward folder: got %v", err)
			}
			if !filepath.IsAbs(info.Config.Out) {
				t.Errorf("reward.json records out %q, not an absolute path", info.Config.Out)
			}
			ds := loadRewardData(t, cfg)
			d := ds.Dims[0]
			if info.Train.Pairs != len(d.Train.Pairs) || info.Eval.Pairs != len(d.Eval.Pairs) ||
				info.Eval.Pairs < 20 || info.Train.Pairs+info.Eval.Pairs < 150 {
				t.Fatalf("reward.json counts %d train + %d held-out pairs, the data %d + %d",
					info.Train.Pairs, info.Eval.Pairs, len(d.Train.Pairs), len(d.Eval.Pairs))
			}
			if info.Train.Accuracy <= 0.5 {
				t.Errorf("training pair accuracy %.3f is not above chance", info.Train.Accuracy)
			}
			if info.DeployMaxAbsDiff > 1e-4 {
				t.Errorf("deploy_max_abs_diff %g", info.DeployMaxAbsDiff)
			}

			// A fresh session on the written model against the training graph rebuilt from
			// the checkpoint, in a second fresh session.
			rm, err := OpenRewardModel(cfg.Out, o)
			if err != nil {
				t.Fatal(err)
			}
			defer rm.Close()
			got, err := rm.ScorePairs(d.Eval.Pairs, 5)
			if err != nil {
				t.Fatal(err)
			}
			want := trainingScores(t, cfg, d.Eval.Pairs)
			margins := make([]float32, len(got))
			worst := 0.0
			for i := range got {
				margins[i] = got[i][0] - got[i][1]
				for k := range 2 {
					diff := float64(got[i][k]) - (float64(want[i][k]) + info.Offset)
					worst = math.Max(worst, math.Abs(diff))
				}
			}
			if worst > 1e-4 {
				t.Errorf("deployed scores differ from the training graph's by %g", worst)
			}
			if acc := pairAccuracy(margins); acc != info.Eval {
				t.Errorf("held-out accuracy %+v afresh, reward.json %+v", acc, info.Eval)
			}

			// Left padding reads the same last token.
			opt := cfg.Data.BatchOptions()
			opt.Side = datasets.PadLeft
			b, err := datasets.PreferenceBatch(d.Eval.Pairs[:6], opt)
			if err != nil {
				t.Fatal(err)
			}
			left, err := rm.Score(b)
			if err != nil {
				t.Fatal(err)
			}
			for i := range 6 {
				if math.Abs(float64(left[i]-got[i][0])) > 1e-4 ||
					math.Abs(float64(left[6+i]-got[i][1])) > 1e-4 {
					t.Fatalf("pair %d: left-padded scores (%v, %v), right-padded %v", i,
						left[i], left[6+i], got[i])
				}
			}
		})
	}
}

// TestRewardConfigErrors checks that a reward config names its offending key.
func TestRewardConfigErrors(t *testing.T) {
	cfg := Defaults()
	cfg.Objective, cfg.Model, cfg.Out = "reward", "m", "o"
	cfg.Data.Dimensions = []datasets.DimensionConfig{{Name: "a", Source: "x", Label: "l"},
		{Name: "b", Source: "x", Label: "l"}}
	err := cfg.Validate()
	if err == nil || !strings.Contains(err.Error(), "data.dimensions") {
		t.Fatalf("two dimensions for a reward model: got %v", err)
	}
	cfg.Objective = "rm"
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "objective") {
		t.Fatalf("objective rm: got %v", err)
	}
	cfg.Objective = "dpo"
	if err := TrainReward(context.Background(), cfg, ort.Options{}, false, Hooks{}); err == nil {
		t.Fatal("TrainReward accepted objective dpo")
	}
}

func meanLoss(ms []StepMetrics) float64 {
	var s float64
	for _, m := range ms {
		s += m.Loss
	}
	return s / float64(len(ms))
}

func readRewardInfo(t *testing.T, dir string) *RewardInfo {
	t.Helper()
	js, err := os.ReadFile(filepath.Join(dir, RewardFile))
	if err != nil {
		t.Fatal(err)
	}
	var info RewardInfo
	if err := json.Unmarshal(js, &info); err != nil {
		t.Fatal(err)
	}
	return &info
}

// checkRewardGraph checks the written graph's interface and that the LM head was dropped.
func checkRewardGraph(t *testing.T, dir string) {
	t.Helper()
	model, err := graphs.Load(filepath.Join(dir, ModelFile))
	if err != nil {
		t.Fatal(err)
	}
	var ins, outs []string
	for _, v := range model.GetGraph().GetInput() {
		ins = append(ins, v.GetName())
	}
	for _, v := range model.GetGraph().GetOutput() {
		outs = append(outs, v.GetName())
	}
	if !slices.Equal(ins, []string{export.InputIDs, export.AttentionMask}) ||
		!slices.Equal(outs, []string{OutScore}) {
		t.Fatalf("reward graph inputs %v outputs %v", ins, outs)
	}
	for _, n := range model.GetGraph().GetNode() {
		if strings.HasPrefix(n.GetName(), "lm_head") {
			t.Fatalf("reward graph keeps LM head node %s", n.GetName())
		}
	}
}

func loadRewardData(t *testing.T, cfg Config) *datasets.Dataset {
	t.Helper()
	tok, err := tokenizer.LoadDir(cfg.Model)
	if err != nil {
		t.Fatal(err)
	}
	data := cfg.Data
	ds, err := datasets.Load(&data, tok)
	if err != nil {
		t.Fatal(err)
	}
	return ds
}

// trainingScores rebuilds the step graph, loads the run's last checkpoint into it and scores
// the pairs (no offset).
func trainingScores(t *testing.T, cfg Config, ex []datasets.PreferenceExample) [][2]float32 {
	t.Helper()
	r := &rewardRun{run: run{cfg: &cfg, opts: ort.Options{Threads: 1}, m: 1}}
	defer r.close()
	if err := r.load(); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadCheckpoint(cfg.Out, r.params, r.opt); err != nil {
		t.Fatal(err)
	}
	s, err := r.scorePairs(ex)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestRewardKillAndResume kills a reward run after step 5 (last checkpoint at step 4) and
// resumes it: the final checkpoint's head must equal that of an uninterrupted run.
func TestRewardKillAndResume(t *testing.T) {
	o := ort.Options{Threads: 1}
	model := storiesExport(t)
	man, err := export.ReadManifest(model)
	if err != nil {
		t.Fatal(err)
	}
	H := man.HiddenSize
	head := func(cfg Config) []float32 {
		p := []*Param{{Name: RewardHead, Shape: []int64{int64(H), 1}, Data: make([]float32, H)}}
		if _, err := LoadCheckpoint(cfg.Out, p, NewAdamW(p, 0.9, 0.999, 1e-8, 0)); err != nil {
			t.Fatal(err)
		}
		return p[0].Data
	}
	full := rewardConfig(t, model, "safer_response_id")
	full.Steps, full.SaveEvery = 7, 2
	if err := Train(context.Background(), full, o, false, Hooks{}); err != nil {
		t.Fatal(err)
	}
	killed := full
	killed.Out = t.TempDir()
	err = Train(context.Background(), killed, o, false, Hooks{AfterStep: func(step int) error {
		if step == 5 {
			return errKilled
		}
		return nil
	}})
	if !errors.Is(err, errKilled) {
		t.Fatalf("kill hook: got %v", err)
	}
	changed := killed
	changed.LR *= 2
	if err := Train(context.Background(), changed, o, true, Hooks{}); err == nil ||
		!strings.Contains(err.Error(), "lr") {
		t.Fatalf("resume with another lr: got %v, want an error naming lr", err)
	}
	if err := Train(context.Background(), killed, o, true, Hooks{}); err != nil {
		t.Fatal(err)
	}
	if want, got := head(full), head(killed); !slices.Equal(want, got) {
		t.Fatalf("resumed head %v, uninterrupted %v", got[:4], want[:4])
	}
	if a, b := readRewardInfo(t, full.Out), readRewardInfo(t, killed.Out); a.Eval != b.Eval {
		t.Fatalf("held-out accuracy %+v after resume, %+v uninterrupted", b.Eval, a.Eval)
	}
}

// TestRewardCachedFeaturesMatchFullGraph checks the head-only fast path: on a training
// batch, the loss, row scores and head gradient of the small step graph fed with cached
// pooled states equal those of the full model → score → loss → backward graph, for a
// non-zero head, and every training and held-out row was cached before the first step.
func TestRewardCachedFeaturesMatchFullGraph(t *testing.T) {
	o := ort.Options{Threads: 1}
	cfg := rewardConfig(t, hiddenExport(t), "better_response_id")
	r := &rewardRun{run: run{cfg: &cfg, opts: o, m: 1}}
	defer r.close()
	if err := r.load(); err != nil {
		t.Fatal(err)
	}
	d := r.ds.Dims[0]
	if got, want := len(r.features), 2*(len(d.Train.Pairs)+len(d.Eval.Pairs)); got > want ||
		got < want-10 { // identical responses to one prompt share a row
		t.Fatalf("%d rows cached, the splits hold %d", got, want)
	}
	head := r.params[0].Data
	for i := range head {
		head[i] = float32(math.Sin(float64(i))) * 0.3
	}
	sb, err := nextBatch(r.data, 0)
	if err != nil {
		t.Fatal(err)
	}
	before := len(r.features)
	loss, scores, _, err := r.forward(sb, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.features) != before {
		t.Errorf("a training batch computed %d uncached rows", len(r.features)-before)
	}

	// The full graph, run on the same batch.
	model, _, err := rewardStepGraph(&cfg, r.man)
	if err != nil {
		t.Fatal(err)
	}
	res, err := autodiff.Differentiate(model, autodiff.Config{Loss: OutLoss, Wrt: []string{RewardHead}})
	if err != nil {
		t.Fatal(err)
	}
	full, err := openGraph(model, cfg.Model, []string{OutLoss, OutRowScores,
		res.Grads[RewardHead]}, o)
	if err != nil {
		t.Fatal(err)
	}
	defer full.close()
	in, free, err := tokenTensors(sb)
	if err != nil {
		t.Fatal(err)
	}
	defer free()
	ht, err := tensor(head, int64(len(head)), 1)
	if err != nil {
		t.Fatal(err)
	}
	defer ht.Destroy()
	in[RewardHead] = ht
	out := map[string]onnx.Value{}
	if err := full.run(int64(sb.rows), in, out); err != nil {
		t.Fatal(err)
	}
	wantLoss := float64(floats(out[OutLoss])[0])
	wantScores, wantGrad := floats(out[OutRowScores]), floats(out[res.Grads[RewardHead]])
	for _, v := range out {
		v.Destroy()
	}
	if math.Abs(loss-wantLoss) > 1e-5 || math.Abs(loss-math.Ln2) < 1e-3 {
		t.Errorf("loss %v on cached features, %v on the full graph", loss, wantLoss)
	}
	worst := func(a, b []float32) float64 {
		w := 0.0
		for i := range a {
			w = math.Max(w, math.Abs(float64(a[i]-b[i])))
		}
		return w
	}
	if len(scores) != len(wantScores) || worst(scores, wantScores) > 1e-5 {
		t.Errorf("scores differ by %g", worst(scores, wantScores))
	}
	if g := worst(r.acc[0], wantGrad); g > 1e-5 || len(r.acc[0]) != len(wantGrad) {
		t.Errorf("head gradients differ by %g", g)
	}
}
