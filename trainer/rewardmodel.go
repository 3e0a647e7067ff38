package trainer

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"

	onnx "github.com/yalue/onnxruntime_go"

	"github.com/panacea-go/toolkit/datasets"
	"github.com/panacea-go/toolkit/export"
	"github.com/panacea-go/toolkit/graphs"
	"github.com/panacea-go/toolkit/ort"
)

// RewardFile is reward.json in a reward model folder: its [RewardInfo].
const RewardFile = "reward.json"

// RewardPooling describes the pooling of the reward models this package writes.
const RewardPooling = "last attended token: hidden_states[b, max_t t·attention_mask[b,t], :]"

// PairAccuracy is how well scores order a split's pairs.
type PairAccuracy struct {
	Pairs   int `json:"pairs"`
	Correct int `json:"correct"` // pairs with score(chosen) > score(rejected); ties are wrong
	// Accuracy is Correct/Pairs (0 without pairs); MeanMargin the mean of the margins
	// score(chosen) − score(rejected); Loss the mean Bradley–Terry loss −log σ(margin).
	Accuracy   float64 `json:"accuracy"`
	MeanMargin float64 `json:"mean_margin"`
	Loss       float64 `json:"loss"`
}

// RewardInfo is reward.json: what a reward model scores, how, and how well.
type RewardInfo struct {
	Dimension string `json:"dimension"`
	// Label is what ordered the pairs (e.g. better_response_id); empty for formats whose rows
	// are ordered already.
	Label     string   `json:"label,omitempty"`
	BaseModel string   `json:"base_model"`
	LoRA      bool     `json:"lora"`
	Pooling   string   `json:"pooling"`
	Inputs    []string `json:"inputs"`
	Output    string   `json:"output"`
	// Offset was added to every score: minus the mean score of the training responses, so
	// that scores of data like the training data centre on 0.
	Offset float64 `json:"offset"`
	// Train and Eval are measured after training on the written model.onnx, in a fresh
	// session; Eval is the held-out split (data.eval_fraction or eval_file).
	Train PairAccuracy `json:"train"`
	Eval  PairAccuracy `json:"eval"`
	// DeployMaxAbsDiff is the largest difference between the written model's scores and the
	// training graph's (offset applied) over both splits.
	DeployMaxAbsDiff float64 `json:"deploy_max_abs_diff"`
	Steps            int     `json:"steps"`
	Config           Config  `json:"config"`
}

// pairAccuracy summarises margins score(chosen) − score(rejected).
func pairAccuracy(margins []float32) PairAccuracy {
	a := PairAccuracy{Pairs: len(margins)}
	for _, m := range margins {
		if m > 0 {
			a.Correct++
		}
		x := float64(m)
		a.MeanMargin += x
		a.Loss += math.Max(-x, 0) + math.Log1p(math.Exp(-math.Abs(x))) // −log σ(x)
	}
	if a.Pairs > 0 {
		a.Accuracy = float64(a.Correct) / float64(a.Pairs)
		a.MeanMargin /= float64(a.Pairs)
		a.Loss /= float64(a.Pairs)
	}
	return a
}

// finish writes the deployable reward model, checks it against the training graph, and
// writes reward.json with both splits' pair accuracies.
func (r *rewardRun) finish() error {
	cfg, d := r.cfg, r.ds.Dims[0]
	train, err := r.scorePairs(d.Train.Pairs)
	if err != nil {
		return err
	}
	eval, err := r.scorePairs(d.Eval.Pairs)
	if err != nil {
		return err
	}
	var mean float64
	for _, s := range train {
		mean += float64(s[0]) + float64(s[1])
	}
	mean /= float64(2 * len(train))

	// The model folder: graph and weights, manifest, tokenizer files.
	model, err := rewardDeployGraph(cfg, r.man, r.params, r.params[0].Data, float32(-mean))
	if err != nil {
		return err
	}
	if err := saveWithExternal(model, cfg.Model, cfg.Out); err != nil {
		return err
	}
	man := *r.man
	man.WithPast, man.Hidden = false, false
	js, err := json.MarshalIndent(man, "", "  ")
	if err != nil {
		return err
	}
	if err := graphs.WriteFileAtomic(filepath.Join(cfg.Out, export.ManifestFile), js); err != nil {
		return err
	}
	for _, f := range append([]string{"config.json", "generation_config.json"},
		r.man.TokenizerFiles...) {
		if err := copyFile(filepath.Join(cfg.Model, f), filepath.Join(cfg.Out, f)); err != nil {
			return err
		}
	}

	// Measure on the written model, in a fresh session.
	rm, err := openRewardSession(cfg.Out, r.opts)
	if err != nil {
		return err
	}
	defer rm.Close()
	rm.opt = cfg.Data.BatchOptions()
	info := RewardInfo{Dimension: d.Name, Label: d.Label, BaseModel: cfg.Model,
		LoRA: cfg.RewardLoRA, Pooling: RewardPooling,
		Inputs: []string{export.InputIDs, export.AttentionMask}, Output: OutScore,
		Offset: -mean, Steps: r.opt.Step, Config: *cfg}
	for _, split := range []struct {
		ex   []datasets.PreferenceExample
		ref  [][2]float32
		into *PairAccuracy
	}{{d.Train.Pairs, train, &info.Train}, {d.Eval.Pairs, eval, &info.Eval}} {
		got, err := rm.ScorePairs(split.ex, 0)
		if err != nil {
			return err
		}
		margins := make([]float32, len(got))
		for i, s := range got {
			margins[i] = s[0] - s[1]
			for k := range 2 {
				diff := math.Abs(float64(s[k]) - (float64(split.ref[i][k]) - mean))
				info.DeployMaxAbsDiff = math.Max(info.DeployMaxAbsDiff, diff)
			}
		}
		*split.into = pairAccuracy(margins)
	}
	if info.DeployMaxAbsDiff > 1e-3 {
		return fmt.Errorf("trainer: reward model %s scores differ from the training graph's "+
			"by up to %g", filepath.Join(cfg.Out, ModelFile), info.DeployMaxAbsDiff)
	}
	if info.Eval.Pairs == 0 {
		slog.Warn("reward model has no held-out pairs: set data.eval_fraction or eval_file",
			"dimension", d.Name)
	}
	js, err = json.MarshalIndent(info, "", "  ")
	if err != nil {
		return err
	}
	if err := graphs.WriteFileAtomic(filepath.Join(cfg.Out, RewardFile), js); err != nil {
		return err
	}
	slog.Info("wrote reward model", "dir", cfg.Out, "dimension", d.Name,
		"train_accuracy", fmt.Sprintf("%.3f (%d/%d)", info.Train.Accuracy, info.Train.Correct,
			info.Train.Pairs),
		"eval_accuracy", fmt.Sprintf("%.3f (%d/%d)", info.Eval.Accuracy, info.Eval.Correct,
			info.Eval.Pairs))
	return nil
}

// RewardModel is a reward model folder written by [TrainReward], opened in ONNX Runtime:
// input_ids and attention_mask (batch, seq) in, one score per row out.
type RewardModel struct {
	// Info is the folder's reward.json.
	Info *RewardInfo
	sess *ort.Session
	opt  datasets.BatchOptions
}

// OpenRewardModel opens dir/model.onnx (a folder written by [TrainReward]) and reads its
// reward.json. Rows may be padded on either side: the score reads the last attended token.
func OpenRewardModel(dir string, o ort.Options) (*RewardModel, error) {
	js, err := os.ReadFile(filepath.Join(dir, RewardFile))
	if err != nil {
		return nil, fmt.Errorf("trainer: %s is not a reward model folder: %w", dir, err)
	}
	var info RewardInfo
	if err := json.Unmarshal(js, &info); err != nil {
		return nil, fmt.Errorf("trainer: %s: %w", filepath.Join(dir, RewardFile), err)
	}
	rm, err := openRewardSession(dir, o)
	if err != nil {
		return nil, err
	}
	rm.Info = &info
	rm.opt = info.Config.Data.BatchOptions()
	return rm, nil
}

func openRewardSession(dir string, o ort.Options) (*RewardModel, error) {
	s, err := ort.NewSession(filepath.Join(dir, ModelFile), nil,
		[]string{export.InputIDs, export.AttentionMask}, []string{OutScore}, o)
	if err != nil {
		return nil, err
	}
	return &RewardModel{sess: s, opt: datasets.BatchOptions{Side: datasets.PadRight}}, nil
}

// Close releases the session.
func (rm *RewardModel) Close() error { return rm.sess.Close() }

// ScoreTokens scores rows of token ids: ids and mask are (rows, seq) row-major, mask 1 on
// tokens and 0 on padding (either side).
func (rm *RewardModel) ScoreTokens(ids, mask []int64, rows, seq int) ([]float32, error) {
	if rows < 1 || seq < 1 || len(ids) != rows*seq || len(mask) != rows*seq {
		return nil, fmt.Errorf("trainer: reward score: %d ids and %d mask values for "+
			"(%d, %d)", len(ids), len(mask), rows, seq)
	}
	idsT, err := tensor(ids, int64(rows), int64(seq))
	if err != nil {
		return nil, err
	}
	defer idsT.Destroy()
	maskT, err := tensor(mask, int64(rows), int64(seq))
	if err != nil {
		return nil, err
	}
	defer maskT.Destroy()
	out, err := onnx.NewEmptyTensor[float32](onnx.NewShape(int64(rows)))
	if err != nil {
		return nil, fmt.Errorf("trainer: %w", err)
	}
	defer out.Destroy()
	if err := rm.sess.Run([]onnx.Value{idsT, maskT}, []onnx.Value{out}); err != nil {
		return nil, fmt.Errorf("trainer: reward score: %w", err)
	}
	return append([]float32(nil), out.GetData()...), nil
}

// Score scores every row of a batch (any kind: a preference batch gives its chosen rows,
// then its rejected rows).
func (rm *RewardModel) Score(b *datasets.Batch) ([]float32, error) {
	return rm.ScoreTokens(b.InputIDs, b.AttentionMask, b.Rows, b.Len)
}

// ScorePairs scores the chosen and rejected response of every pair, batch pairs per run
// (0: 8), padded as the training data was; the result is (chosen, rejected) per pair.
func (rm *RewardModel) ScorePairs(ex []datasets.PreferenceExample,
	batch int) ([][2]float32, error) {
	if batch < 1 {
		batch = 8
	}
	out := make([][2]float32, 0, len(ex))
	for lo := 0; lo < len(ex); lo += batch {
		b, err := datasets.PreferenceBatch(ex[lo:min(lo+batch, len(ex))], rm.opt)
		if err != nil {
			return nil, err
		}
		s, err := rm.Score(b)
		if err != nil {
			return nil, err
		}
		for i := range b.Pairs {
			out = append(out, [2]float32{s[i], s[b.Pairs+i]})
		}
	}
	return out, nil
}
