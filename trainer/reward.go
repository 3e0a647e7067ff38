package trainer

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"time"

	onnx "github.com/yalue/onnxruntime_go"

	"github.com/panacea-go/toolkit/datasets"
	"github.com/panacea-go/toolkit/datasets/tokenizer"
	"github.com/panacea-go/toolkit/export"
	"github.com/panacea-go/toolkit/graphs/autodiff"
	"github.com/panacea-go/toolkit/graphs/lora"
	"github.com/panacea-go/toolkit/graphs/onnxpb"
	"github.com/panacea-go/toolkit/ort"
)

// rewardRun is one reward-model training run. It reuses the λ-free parts of [run]: the
// config, session, parameters and their tensors, gradient buffers, optimiser, data sampler,
// schedule, pending snapshot (data position only) and metrics file. run.lsampler and
// run.ideal stay nil, so rewardRun defines every [stepper] method itself: run's own would
// read them.
type rewardRun struct {
	run
	man *export.Manifest
	ds  *datasets.Dataset
	// Head-only runs train on cached features (see cacheFeatures): pool is the frozen
	// base's feature graph and features maps a row's tokens (rowKey) to its pooled hidden
	// state. Both are nil with LoRA.
	pool     *graphSession
	features map[string][]float32
	ctx      context.Context // nil in tests: no interruption
}

var _ stepper = (*rewardRun)(nil)

// TrainReward trains a reward model on the one dimension of cfg.Data (objective reward):
// the base model's final hidden state at each row's last attended token, times a learned
// weight w (hidden, 1), is the row's score, and every step minimises the Bradley–Terry loss
// of the step's pairs,
//
//	L = −(1/P) Σ_p log σ(score(x_p, y_w) − score(x_p, y_l)),
//
// with AdamW on w alone, or on w and an SVD-LoRA adapter of the base when cfg.RewardLoRA is
// set (m = 1, λ fixed to 1; the base stays frozen). Head-only runs compute every row's
// pooled hidden state once, before the first step, and train on those (see cacheFeatures),
// so that further epochs cost almost nothing. Steps, learning-rate schedule, gradient
// accumulation and clipping, checkpoints (--resume) and metrics.jsonl work as in [Train];
// the metrics' per-dimension slices hold the one dimension's loss, pair accuracy and mean
// margin, and Lambda is empty.
//
// At the end cfg.Out holds model.onnx (+ model.onnx.data): inputs input_ids and
// attention_mask (batch, seq), output score (batch), the head and adapter baked in, and an
// offset that centres the training responses' scores on 0; toolkit.json and the tokenizer
// files; and reward.json ([RewardInfo]) with the pair accuracy of the training and held-out
// splits, measured on that model in a fresh session. Open it with [OpenRewardModel].
func TrainReward(ctx context.Context, cfg Config, o ort.Options, resume bool, hooks Hooks) error {
	if cfg.Objective != "reward" {
		return fmt.Errorf("trainer: TrainReward: objective %q, want reward", cfg.Objective)
	}
	if err := prepareRunDir(&cfg, resume); err != nil {
		return err
	}
	r := &rewardRun{run: run{cfg: &cfg, opts: o, m: 1}, ctx: ctx}
	defer r.close()
	if err := r.load(); err != nil {
		return err
	}
	if err := trainSteps(ctx, r, resume, hooks); err != nil {
		return err
	}
	return r.finish()
}

// prepareRunDir validates cfg, makes its paths absolute (so that a run's saved config still
// finds the base model, data and reward models from another folder) and checks cfg.Out: not
// the model's folder nor another model's, a folder holding a checkpoint needs resume, and
// resume needs one with the same settings.
func prepareRunDir(cfg *Config, resume bool) error {
	cfg.Data.PaddingSide = string(datasets.PadRight) // training batches are right-padded
	if err := cfg.Validate(); err != nil {
		return err
	}
	paths := []*string{&cfg.Model, &cfg.Out, &cfg.Data.BaseDir}
	for i := range cfg.PPO.RewardModels {
		paths = append(paths, &cfg.PPO.RewardModels[i])
	}
	for _, p := range paths {
		if abs, err := filepath.Abs(*p); err == nil {
			*p = abs
		}
	}
	if err := os.MkdirAll(cfg.Out, 0o755); err != nil {
		return fmt.Errorf("trainer: %w", err)
	}
	_, statErr := os.Stat(filepath.Join(cfg.Out, CheckpointFile))
	if statErr == nil && !resume {
		return fmt.Errorf("trainer: %s already holds a run (checkpoint.json): pass --resume "+
			"to continue it, or choose another --out", cfg.Out)
	}
	if resume && statErr != nil {
		return fmt.Errorf("trainer: --resume: %s has no checkpoint.json", cfg.Out)
	}
	if err := checkFolders(cfg, resume); err != nil {
		return err
	}
	if resume {
		return sameSettings(*cfg)
	}
	return nil
}

// load reads the manifest and the data and opens the step graph.
func (r *rewardRun) load() error {
	cfg := r.cfg
	var err error
	if r.man, err = export.ReadManifest(cfg.Model); err != nil {
		return err
	}
	if err := checkModelFit(cfg, r.man); err != nil {
		return err
	}
	tok, err := tokenizer.LoadDir(cfg.Model)
	if err != nil {
		return err
	}
	if r.ds, err = loadData(cfg, tok, r.man); err != nil {
		return err
	}
	if d := r.ds.Dims[0]; d.Train.Kind != datasets.KindPreference {
		return fmt.Errorf("trainer: objective reward: dimension %s (data.dimensions[0]) "+
			"gives %s examples, not preference pairs (remove its sft: key)", d.Name, d.Train.Kind)
	}
	if r.data, err = datasets.NewSampler(r.ds); err != nil {
		return err
	}
	return r.openStep()
}

// openStep builds the score + loss + backward graph and opens it. The head starts at zero, so
// every score starts at 0 and the first loss is ln 2; its gradient is the pooled hidden
// state, not zero.
func (r *rewardRun) openStep() error {
	cfg := r.cfg
	var model *onnxpb.ModelProto
	var rep *lora.Report
	var err error
	if cfg.RewardLoRA {
		model, rep, err = rewardStepGraph(cfg, r.man)
	} else {
		model = headStepGraph(r.man.HiddenSize)
		err = r.cacheFeatures()
	}
	if err != nil {
		return err
	}
	H := int64(r.man.HiddenSize)
	r.params = []*Param{{Name: RewardHead, Shape: []int64{H, 1}, Data: make([]float32, H),
		Decay: true}}
	if rep != nil {
		r.params = append(r.params, adapterParams(rep)...)
	}
	var names []string
	for _, p := range r.params {
		names = append(names, p.Name)
	}
	res, err := autodiff.Differentiate(model, autodiff.Config{Loss: OutLoss, Wrt: names})
	if err != nil {
		return fmt.Errorf("trainer: reward: %w", err)
	}
	params := int(H)
	if rep != nil {
		params += int(rep.Params)
	}
	slog.Info("reward step graph", "dimension", r.ds.Dims[0].Name, "lora", cfg.RewardLoRA,
		"params", params, "backward_nodes", res.Nodes, "unreached", len(res.Unreached))
	outputs := []string{OutLoss, OutRowScores, OutMargins}
	for _, n := range names {
		outputs = append(outputs, res.Grads[n])
	}
	if r.step, err = openGraph(model, cfg.Model, outputs, r.opts); err != nil {
		return err
	}
	return r.bindParams()
}

// forward runs the step graph on one batch of pairs and returns the loss, each row's score
// and each pair's margin; with accumulate it adds the gradients to r.acc.
func (r *rewardRun) forward(sb *stepBatch, accumulate bool) (float64, []float32, []float32, error) {
	if sb.pairs == 0 || 2*sb.pairs != sb.rows {
		return 0, nil, nil, fmt.Errorf("trainer: reward: batch of %d rows is not pairs", sb.rows)
	}
	var in map[string]onnx.Value
	if r.features != nil {
		feats, err := r.pooledRows(sb)
		if err != nil {
			return 0, nil, nil, err
		}
		t, err := tensor(feats, int64(sb.rows), int64(r.man.HiddenSize))
		if err != nil {
			return 0, nil, nil, err
		}
		defer t.Destroy()
		in = map[string]onnx.Value{OutPooled: t}
	} else {
		var free func()
		var err error
		if in, free, err = tokenTensors(sb); err != nil {
			return 0, nil, nil, err
		}
		defer free()
	}
	if r.cfg.RewardLoRA {
		ones := make([]float32, sb.rows)
		for i := range ones {
			ones[i] = 1
		}
		lam, err := tensor(ones, int64(sb.rows), 1)
		if err != nil {
			return 0, nil, nil, err
		}
		defer lam.Destroy()
		in[LambdaInput] = lam
	}
	for i, p := range r.params {
		in[p.Name] = r.pTensors[i]
	}
	loss, err1 := onnx.NewEmptyTensor[float32](onnx.NewShape(1))
	scores, err2 := onnx.NewEmptyTensor[float32](onnx.NewShape(int64(sb.rows)))
	margins, err3 := onnx.NewEmptyTensor[float32](onnx.NewShape(int64(sb.pairs)))
	defer ort.DestroyAll(loss, scores, margins)
	if err := errors.Join(err1, err2, err3); err != nil {
		return 0, nil, nil, fmt.Errorf("trainer: %w", err)
	}
	out := map[string]onnx.Value{OutLoss: loss, OutRowScores: scores, OutMargins: margins}
	for i, p := range r.params {
		out[autodiff.GradName(p.Name)] = r.grads[i]
	}
	if err := r.step.run(int64(sb.rows), in, out); err != nil {
		return 0, nil, nil, err
	}
	l := float64(loss.GetData()[0])
	if math.IsNaN(l) || math.IsInf(l, 0) {
		return 0, nil, nil, fmt.Errorf("loss is %v", l)
	}
	if accumulate {
		for i, g := range r.grads {
			for j, v := range g.GetData() {
				r.acc[i][j] += v
			}
		}
	}
	return l, append([]float32(nil), scores.GetData()...),
		append([]float32(nil), margins.GetData()...), nil
}

// trainStep runs GradAccum batches and applies one AdamW update.
func (r *rewardRun) trainStep(step int, lr float64) (StepMetrics, error) {
	start := time.Now()
	met := StepMetrics{Step: step + 1, LR: lr, DimLosses: []float64{0},
		Accuracy: []float64{0}, Margin: []float64{0}}
	for _, a := range r.acc {
		clear(a)
	}
	tokens := 0
	for range r.cfg.GradAccum {
		sb, err := nextBatch(r.data, step)
		if err != nil {
			return met, err
		}
		tokens += sb.tokens
		l, _, margins, err := r.forward(sb, true)
		if err != nil {
			return met, fmt.Errorf("trainer: step %d: %w", step+1, err)
		}
		met.Loss += l
		acc := pairAccuracy(margins)
		met.Accuracy[0] += acc.Accuracy
		met.Margin[0] += acc.MeanMargin
	}
	n := float64(r.cfg.GradAccum)
	for _, a := range r.acc {
		for j := range a {
			a[j] /= float32(n)
		}
	}
	met.Loss /= n
	met.DimLosses[0], met.Accuracy[0], met.Margin[0] = met.Loss, met.Accuracy[0]/n, met.Margin[0]/n
	met.GradNorm = ClipByGlobalNorm(r.acc, r.cfg.MaxGradNorm)
	if math.IsNaN(met.GradNorm) || math.IsInf(met.GradNorm, 0) {
		return met, fmt.Errorf("trainer: step %d: gradient norm is %v", step+1, met.GradNorm)
	}
	if err := r.opt.Update(r.params, r.acc, lr); err != nil {
		return met, err
	}
	met.Seconds = time.Since(start).Seconds()
	if r.features == nil { // with cached features no token goes through the model
		met.TokensPerS = float64(tokens) / met.Seconds
	}
	return met, nil
}

// scorePairs scores every pair with the step graph: (chosen, rejected) per example.
func (r *rewardRun) scorePairs(ex []datasets.PreferenceExample) ([][2]float32, error) {
	opt := r.cfg.Data.BatchOptions()
	out := make([][2]float32, 0, len(ex))
	size := max(r.cfg.Data.BatchSize, 8)
	for lo := 0; lo < len(ex); lo += size {
		b, err := datasets.PreferenceBatch(ex[lo:min(lo+size, len(ex))], opt)
		if err != nil {
			return nil, err
		}
		sb, err := merge([]*datasets.Batch{b})
		if err != nil {
			return nil, err
		}
		_, scores, _, err := r.forward(sb, false)
		if err != nil {
			return nil, fmt.Errorf("trainer: reward: score pairs: %w", err)
		}
		for i := range sb.pairs {
			out = append(out, [2]float32{scores[i], scores[sb.pairs+i]})
		}
	}
	return out, nil
}

// doStep runs step s and logs its metrics (stepper); the data position before it is kept
// for failed.
func (r *rewardRun) doStep(s int) (StepMetrics, error) {
	data, err := json.Marshal(r.data.State())
	if err != nil {
		return StepMetrics{}, err
	}
	r.pending = snapshot{data: data}
	met, err := r.trainStep(s, r.sched.LR(s))
	if err != nil {
		return met, err
	}
	return met, r.logMetrics(met)
}

// after has no per-step extras (stepper).
func (r *rewardRun) after(int) error { return nil }

// save writes a checkpoint after steps updates (stepper).
func (r *rewardRun) save(steps int) error {
	data, err := json.Marshal(r.data.State())
	if err != nil {
		return err
	}
	return r.saveAt(steps, data, false)
}

// failed saves the parameters from before a failed step (when finite) with the data
// position before it, keeping earlier checkpoints, and returns the error to report
// (stepper).
func (r *rewardRun) failed(step int, err error) error {
	if !finiteParams(r.params) {
		return fmt.Errorf("%w (parameters are not finite; the last checkpoint in %s is kept)",
			err, r.cfg.Out)
	}
	if serr := r.saveAt(step, r.pending.data, true); serr != nil {
		return errors.Join(err, serr)
	}
	return fmt.Errorf("%w (state before the step saved as checkpoint %d; earlier checkpoints "+
		"kept)", err, step)
}

func (r *rewardRun) saveAt(steps int, data json.RawMessage, keepOld bool) error {
	conf, err := json.Marshal(r.cfg)
	if err != nil {
		return err
	}
	st := State{Step: steps, Data: data, Config: conf}
	if err := saveCheckpoint(r.cfg.Out, r.params, r.opt, st, keepOld); err != nil {
		return err
	}
	slog.Debug("checkpoint", "step", steps, "dir", r.cfg.Out)
	return nil
}

// restore loads the latest checkpoint and returns the step to continue from.
func (r *rewardRun) restore() (int, error) {
	st, err := LoadCheckpoint(r.cfg.Out, r.params, r.opt)
	if err != nil {
		return 0, err
	}
	var ds datasets.SamplerState
	if err := json.Unmarshal(st.Data, &ds); err != nil {
		return 0, fmt.Errorf("trainer: checkpoint data position: %w", err)
	}
	if err := r.data.Resume(ds); err != nil {
		return 0, err
	}
	return st.Step, nil
}

// cacheFeatures opens the frozen base's feature graph (pooledGraph) and runs it once over
// every row of the dimension's training and held-out pairs, in data order, keeping each
// row's pooled hidden state by its tokens. A head-only run's steps and scoring then read
// these features instead of running the model: the base is frozen, so they never change,
// and a run of E epochs costs one pass over the data instead of E. Computing them in a fixed
// order before the first step keeps a resumed run equal to an uninterrupted one.
func (r *rewardRun) cacheFeatures() error {
	model, err := pooledGraph(r.cfg, r.man)
	if err != nil {
		return err
	}
	if r.pool, err = openGraph(model, r.cfg.Model, []string{OutPooled}, r.opts); err != nil {
		return err
	}
	r.features = map[string][]float32{}
	d := r.ds.Dims[0]
	start := time.Now()
	all := append(append([]datasets.PreferenceExample(nil), d.Train.Pairs...), d.Eval.Pairs...)
	opt := r.cfg.Data.BatchOptions()
	size := max(r.cfg.Data.BatchSize, 8)
	for lo := 0; lo < len(all); lo += size {
		if r.ctx != nil && r.ctx.Err() != nil {
			return ErrInterrupted // before the first step: nothing to save
		}
		b, err := datasets.PreferenceBatch(all[lo:min(lo+size, len(all))], opt)
		if err != nil {
			return err
		}
		sb, err := merge([]*datasets.Batch{b})
		if err != nil {
			return err
		}
		if err := r.computeFeatures(sb); err != nil {
			return err
		}
	}
	slog.Info("reward: pooled hidden states of the frozen base cached", "rows", len(r.features),
		"seconds", fmt.Sprintf("%.1f", time.Since(start).Seconds()))
	return nil
}

// computeFeatures runs the feature graph on a batch and caches every row's pooled state.
func (r *rewardRun) computeFeatures(sb *stepBatch) error {
	in, free, err := tokenTensors(sb)
	if err != nil {
		return err
	}
	defer free()
	out := map[string]onnx.Value{}
	if err := r.pool.run(int64(sb.rows), in, out); err != nil {
		return fmt.Errorf("trainer: reward: pooled hidden states: %w", err)
	}
	data := floats(out[OutPooled])
	out[OutPooled].Destroy()
	H := r.man.HiddenSize
	if len(data) != sb.rows*H {
		return fmt.Errorf("trainer: reward: feature graph gave %d values for %d rows × %d",
			len(data), sb.rows, H)
	}
	for row := range sb.rows {
		r.features[rowKey(sb, row)] = data[row*H : (row+1)*H : (row+1)*H]
	}
	return nil
}

// pooledRows returns the cached features of a batch's rows (rows, H), computing those of
// rows not seen before (a batch the cache pass did not make, e.g. other truncation).
func (r *rewardRun) pooledRows(sb *stepBatch) ([]float32, error) {
	keys := make([]string, sb.rows)
	var missing []int
	for row := range sb.rows {
		keys[row] = rowKey(sb, row)
		if _, ok := r.features[keys[row]]; !ok {
			missing = append(missing, row)
		}
	}
	if len(missing) > 0 {
		if err := r.computeFeatures(sb.subset(missing)); err != nil {
			return nil, err
		}
	}
	out := make([]float32, 0, sb.rows*r.man.HiddenSize)
	for _, k := range keys {
		out = append(out, r.features[k]...)
	}
	return out, nil
}

// rowKey identifies a right-padded row by its attended tokens.
func rowKey(sb *stepBatch, row int) string {
	ids, mask := sb.ids[row*sb.seq:(row+1)*sb.seq], sb.mask[row*sb.seq:(row+1)*sb.seq]
	key := make([]byte, 0, 8*len(ids))
	for t, id := range ids {
		if mask[t] != 0 {
			key = binary.LittleEndian.AppendUint64(key, uint64(id))
		}
	}
	return string(key)
}

// close releases the feature graph and everything [run.close] does.
func (r *rewardRun) close() {
	if r.pool != nil {
		r.pool.close()
	}
	r.run.close()
}
