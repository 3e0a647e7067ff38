package trainer

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"time"

	onnx "github.com/yalue/onnxruntime_go"

	"github.com/panacea-go/toolkit/datasets"
	"github.com/panacea-go/toolkit/datasets/tokenizer"
	"github.com/panacea-go/toolkit/export"
	"github.com/panacea-go/toolkit/graphs"
	"github.com/panacea-go/toolkit/graphs/autodiff"
	"github.com/panacea-go/toolkit/lambda"
	"github.com/panacea-go/toolkit/ort"
)

// ppoRun is the state of one RLHF run: the λ-policy's adapter and value head in Go memory,
// four sessions (rollout generation, rollout scoring, reference scoring, PPO loss+backward)
// and one reward model per dimension.
type ppoRun struct {
	cfg     *Config
	man     *export.Manifest
	m       int
	opts    ort.Options
	params  []*Param // adapter, then value head weight and bias
	adapter int      // len of the adapter part of params
	tensors map[string]onnx.Value
	opt     *AdamW

	gen     *decoder
	score   *graphSession
	ref     *graphSession
	loss    *graphSession
	grads   []*onnx.Tensor[float32]
	rewards []*RewardModel

	prompts  [][]int
	evalP    [][]int
	pos      ppoPosition
	lsampler *lambda.Sampler
	ideal    *lambda.IdealPoint
	eos      []int
	metrics  *os.File
	tok      *tokenizer.Tokenizer
	sched    Schedule
	pending  ppoSnapshot // positions before the running step
}

// ppoSnapshot is a PPO run's position before a step.
type ppoSnapshot struct {
	rng []byte
	pos ppoPosition
	// The parameters and optimiser before the step: a PPO step makes several updates, so a
	// failure in a later one leaves the earlier ones applied.
	params  [][]float32
	optStep int
	m, v    map[string][]float32
}

// snapshotTrainable copies the parameters and the optimiser's state into sn.
func (r *ppoRun) snapshotTrainable(sn *ppoSnapshot) {
	sn.params = make([][]float32, len(r.params))
	for i, p := range r.params {
		sn.params[i] = slices.Clone(p.Data)
	}
	sn.optStep = r.opt.Step
	sn.m, sn.v = maps.Clone(r.opt.M), maps.Clone(r.opt.V)
	for k := range sn.m {
		sn.m[k], sn.v[k] = slices.Clone(sn.m[k]), slices.Clone(sn.v[k])
	}
}

// restoreTrainable puts back what snapshotTrainable copied (in place: the tensors fed to
// the sessions wrap the parameters' slices).
func (r *ppoRun) restoreTrainable(sn *ppoSnapshot) {
	for i, p := range r.params {
		copy(p.Data, sn.params[i])
	}
	r.opt.Step = sn.optStep
	for k := range sn.m {
		copy(r.opt.M[k], sn.m[k])
		copy(r.opt.V[k], sn.v[k])
	}
}

// doStep runs one PPO step and records its metrics (stepper).
func (r *ppoRun) doStep(s int) (StepMetrics, error) {
	rng, err := r.lsampler.MarshalBinary()
	if err != nil {
		return StepMetrics{}, err
	}
	r.pending = ppoSnapshot{rng: rng, pos: ppoPosition{Cursor: r.pos.Cursor,
		Norm: append([]runningStd(nil), r.pos.Norm...)}}
	r.snapshotTrainable(&r.pending)
	met, err := r.step(s, r.sched)
	if err != nil {
		return StepMetrics{}, err
	}
	js, _ := json.Marshal(met)
	if _, err := r.metrics.Write(append(js, '\n')); err != nil {
		return StepMetrics{}, fmt.Errorf("trainer: metrics: %w", err)
	}
	return StepMetrics{Step: met.Step, Loss: met.PGLoss, LR: met.LR, GradNorm: met.GradNorm,
		TokensPerS: met.TokensPerS, Seconds: met.Seconds, Rewards: met.Rewards, KL: met.KL}, nil
}

// after writes the sample table every sample-every steps (stepper).
func (r *ppoRun) after(steps int) error {
	if r.cfg.PPO.SampleEvery > 0 && steps%r.cfg.PPO.SampleEvery == 0 {
		return r.writeSamples(steps)
	}
	return nil
}

// failed saves the state from before a failed step when its parameters are finite, keeping
// earlier checkpoints (stepper).
func (r *ppoRun) failed(step int, err error) error {
	if r.pending.params != nil {
		r.restoreTrainable(&r.pending)
	}
	if !finiteParams(r.params) {
		return fmt.Errorf("%w (parameters are not finite; the last checkpoint in %s is kept)",
			err, r.cfg.Out)
	}
	if serr := r.saveState(step, r.pending.rng, r.pending.pos, true); serr != nil {
		return errors.Join(err, serr)
	}
	return fmt.Errorf("%w (state before the step saved as checkpoint %d; earlier checkpoints "+
		"kept)", err, step)
}

// openMetrics opens metrics.jsonl, keeping only the lines up to step start.
func (r *ppoRun) openMetrics(start int) error {
	f, err := openMetricsFile(filepath.Join(r.cfg.Out, MetricsFile), start)
	r.metrics = f
	return err
}

// ppoPosition is the data position and reward statistics saved in checkpoints.
type ppoPosition struct {
	Cursor int          `json:"cursor"`
	Norm   []runningStd `json:"norm"`
}

// runningStd tracks a mean and variance (Welford).
type runningStd struct {
	N    float64 `json:"n"`
	Mean float64 `json:"mean"`
	M2   float64 `json:"m2"`
}

func (s *runningStd) add(x float64) {
	s.N++
	d := x - s.Mean
	s.Mean += d / s.N
	s.M2 += d * (x - s.Mean)
}

func (s *runningStd) normalise(x float64) float64 {
	if s.N < 2 {
		return x - s.Mean
	}
	return (x - s.Mean) / math.Max(math.Sqrt(s.M2/(s.N-1)), 1e-6)
}

// PPOMetrics is one line of metrics.jsonl for a PPO run.
type PPOMetrics struct {
	Step       int       `json:"step"`
	Rewards    []float64 `json:"rewards"`    // mean raw reward per dimension
	Aggregated float64   `json:"aggregated"` // mean λ-aggregated (normalised) reward
	KL         float64   `json:"kl"`         // mean Σ_t (log π − log π_ref) per response
	PGLoss     float64   `json:"pg_loss"`
	VLoss      float64   `json:"v_loss"`
	Entropy    float64   `json:"entropy,omitempty"`
	ClipFrac   float64   `json:"clip_frac"`
	RespLen    float64   `json:"response_len"`
	LR         float64   `json:"lr"`
	GradNorm   float64   `json:"grad_norm"`
	TokensPerS float64   `json:"tokens_per_s"` // prompt + response tokens of the rollout / Seconds
	Seconds    float64   `json:"seconds"`      // the whole step
	// Phases of the step, in seconds: rollout generation; scoring of the rollout (old
	// log-probs and values, reference log-probs, one reward model per dimension); all PPO
	// epochs of minibatch updates. The rest of Seconds is λ draws, advantages and metrics.
	GenerateS float64 `json:"generate_s"`
	ScoreS    float64 `json:"score_s"`
	UpdateS   float64 `json:"update_s"`
	// GenTokensPerS is the response tokens generated (end-of-sequence included) / GenerateS.
	GenTokensPerS float64 `json:"gen_tokens_per_s"`
}

// TrainPPO runs RLHF with PPO on λ-aggregated rewards of one reward model per dimension.
func TrainPPO(ctx context.Context, cfg Config, o ort.Options, resume bool, hooks Hooks) error {
	r := &ppoRun{cfg: &cfg, m: len(cfg.Data.Dimensions), opts: o,
		tensors: map[string]onnx.Value{}}
	defer r.close()
	if err := r.load(); err != nil {
		return err
	}
	start := 0
	if resume {
		st, err := LoadCheckpoint(cfg.Out, r.params, r.opt)
		if err != nil {
			return err
		}
		if err := r.lsampler.UnmarshalBinary(st.LambdaRNG); err != nil {
			return fmt.Errorf("trainer: checkpoint λ sampler: %w", err)
		}
		if err := json.Unmarshal(st.Data, &r.pos); err != nil {
			return fmt.Errorf("trainer: checkpoint position: %w", err)
		}
		if len(st.Ideal) != 0 && len(st.Ideal) != r.m {
			return fmt.Errorf("trainer: checkpoint ideal point has %d values for %d dimensions",
				len(st.Ideal), r.m)
		}
		if len(st.Ideal) == r.m && cfg.Ideal == "min" {
			r.ideal.Update(st.Ideal)
		}
		if len(r.pos.Norm) != r.m {
			return fmt.Errorf("trainer: checkpoint has reward statistics for %d dimensions, "+
				"the run %d", len(r.pos.Norm), r.m)
		}
		start = st.Step
	}
	total := cfg.Steps
	if err := checkResumeStep(start, total); err != nil {
		return err
	}
	if err := r.openMetrics(start); err != nil {
		return err
	}
	nMini := (cfg.PPO.RolloutBatch + cfg.PPO.MiniBatch - 1) / cfg.PPO.MiniBatch
	r.sched = Schedule{Peak: cfg.LR, Warmup: cfg.Warmup, Total: total * cfg.PPO.PPOEpochs * nMini,
		MinRatio: cfg.MinLRRatio}
	if err := runSteps(ctx, r, start, total, cfg.SaveEvery, hooks); err != nil {
		return err
	}
	if err := r.writeSamples(total); err != nil {
		return err
	}
	return writeRunModel(r.cfg, r.man, r.params[:r.adapter])
}

// load opens the data, reward models and the four graphs.
func (r *ppoRun) load() error {
	cfg := r.cfg
	var err error
	if r.man, err = baseManifest(cfg.Model); err != nil {
		return err
	}
	if err := checkModelFit(cfg, r.man); err != nil {
		return err
	}
	if !r.man.WithPast {
		slog.Warn("ppo: the base export has no KV cache: rollouts recompute every prefix " +
			"(re-export with --with-past for speed)")
	}
	if r.tok, err = tokenizer.LoadDir(cfg.Model); err != nil {
		return err
	}
	r.eos = r.man.EOSTokenIDs
	ds, err := loadData(cfg, r.tok, r.man)
	if err != nil {
		return err
	}
	r.prompts, r.evalP = uniquePrompts(ds, false), uniquePrompts(ds, true)
	if len(r.prompts) == 0 {
		return fmt.Errorf("trainer: ppo: the data config yields no prompts")
	}
	shuffle(r.prompts, cfg.Seed)
	r.pos.Norm = make([]runningStd, r.m)
	for i, dir := range cfg.PPO.RewardModels {
		rm, err := OpenRewardModel(dir, r.opts)
		if err != nil {
			return fmt.Errorf("trainer: reward model %d (%s): %w", i, dir, err)
		}
		r.rewards = append(r.rewards, rm)
		if err := checkRewardDim(cfg, i, rm.Info.Dimension); err != nil {
			return err
		}
		if err := sameTokenizer(cfg.Model, r.man, dir); err != nil {
			return fmt.Errorf("trainer: reward-models[%d]: %w", i, err)
		}
	}
	if err := r.openGraphs(); err != nil {
		return err
	}
	r.lsampler, err = lambda.NewSampler(lambda.SamplerConfig{M: r.m,
		Alpha: []float64{cfg.LambdaAlpha}, VertexProb: cfg.VertexProb}, cfg.Seed)
	if err != nil {
		return fmt.Errorf("trainer: %w", err)
	}
	kind := lambda.IdealFixed
	if cfg.Ideal == "min" {
		kind = lambda.IdealMax // for rewards the ideal is the running maximum
	}
	var init []float64
	if len(cfg.IdealPoint) > 0 {
		init = cfg.IdealPoint
	}
	r.ideal, err = lambda.NewIdealPoint(kind, r.m, init, cfg.IdealMargin)
	return err
}

// checkRewardDim compares the dimension reward model i was trained for with data dimension
// i: the name of another dimension of the run means the list is out of order (an error);
// another name is only reported, since a reward model may be reused under a new name.
func checkRewardDim(cfg *Config, i int, trained string) error {
	want := cfg.Data.Dimensions[i].Name
	if trained == want || trained == "" {
		return nil
	}
	for j, d := range cfg.Data.Dimensions {
		if d.Name == trained {
			return fmt.Errorf("trainer: reward-models[%d] (%s) was trained for dimension %q, "+
				"which is data.dimensions[%d], not %q: list the reward models in the order of "+
				"data.dimensions", i, cfg.PPO.RewardModels[i], trained, j, want)
		}
	}
	slog.Warn("ppo: reward model trained under another dimension name", "reward_model",
		cfg.PPO.RewardModels[i], "trained_for", trained, "used_for", want)
	return nil
}

// sameTokenizer checks that the reward model in dir reads token ids as the policy writes
// them: the same vocabulary size and byte-identical tokenizer files. Rollouts reach the
// reward model as ids, so another tokenizer would score other text (or crash on ids past
// its vocabulary).
func sameTokenizer(model string, man *export.Manifest, dir string) error {
	rman, err := export.ReadManifest(dir)
	if err != nil {
		return err
	}
	if rman.VocabSize != man.VocabSize {
		return fmt.Errorf("%s has a vocabulary of %d ids, the policy %s %d: train the reward "+
			"model on the policy's base model", dir, rman.VocabSize, model, man.VocabSize)
	}
	for _, f := range man.TokenizerFiles {
		a, errA := os.ReadFile(filepath.Join(model, f))
		b, errB := os.ReadFile(filepath.Join(dir, f))
		if errA != nil || errB != nil || !bytes.Equal(a, b) {
			return fmt.Errorf("%s: %s differs from the policy's (%s), or is missing: the "+
				"reward model must share the policy's tokenizer", dir, f, model)
		}
	}
	return nil
}

// openGraphs builds the rollout, scoring, reference and loss sessions. The adapter and
// value-head parameters are graph inputs fed from the same Go slices in every session.
func (r *ppoRun) openGraphs() error {
	cfg, man := r.cfg, r.man
	shape := LMShape{NumLayers: man.NumLayers, NumKVHeads: man.NumKVHeads, HeadDim: man.HeadDim,
		VocabSize: man.VocabSize}

	// Rollouts: policy with its KV cache.
	genModel, rep, err := loadPolicy(cfg, man, true)
	if err != nil {
		return err
	}
	r.params = adapterParams(rep)
	r.adapter = len(r.params)
	r.params = append(r.params,
		&Param{Name: ValueWeight, Shape: []int64{int64(man.HiddenSize), 1},
			Data: make([]float32, man.HiddenSize), Decay: true},
		&Param{Name: ValueBias, Shape: []int64{1}, Data: make([]float32, 1)})
	if r.gen, err = openDecoder(genModel, cfg.Model, shape, r.opts); err != nil {
		return err
	}

	// Scoring of rollouts by the current policy (old log-probs, values).
	scoreModel, _, err := loadPolicy(cfg, man, true)
	if err != nil {
		return err
	}
	if err := addPPOScore(scoreModel, man.HiddenSize, cfg.PPO.Temperature); err != nil {
		return err
	}
	if r.score, err = openGraph(scoreModel, cfg.Model, []string{OutTokLogp, OutValues}, r.opts); err != nil {
		return err
	}

	// Reference scoring: the base model, adapter off.
	base, err := graphs.Load(filepath.Join(cfg.Model, ModelFile))
	if err != nil {
		return err
	}
	g := base.GetGraph()
	g.Output = nil
	l := lossBuilder{b: graphs.WrapGraph(g)}
	tok, _ := l.tokenLogp(temperedLogits(l.b, cfg.PPO.Temperature))
	l.b.Output(tok, OutTokLogp, graphs.Float, "rows", "seq")
	if r.ref, err = openGraph(base, cfg.Model, []string{OutTokLogp}, r.opts); err != nil {
		return err
	}

	// Loss and backward.
	lossModel, _, err := loadPolicy(cfg, man, true)
	if err != nil {
		return err
	}
	spec := PPOSpec{Temperature: cfg.PPO.Temperature, Clip: cfg.PPO.ClipRange, ValueClip: cfg.PPO.ValueClip,
		VFCoef: cfg.PPO.VFCoef, EntCoef: cfg.PPO.EntCoef}
	if err := addPPOLoss(lossModel, man.HiddenSize, spec); err != nil {
		return err
	}
	var names []string
	for _, p := range r.params {
		names = append(names, p.Name)
	}
	res, err := autodiff.Differentiate(lossModel, autodiff.Config{Loss: OutLoss, Wrt: names})
	if err != nil {
		return fmt.Errorf("trainer: %w", err)
	}
	outputs := []string{OutLoss, OutPGLoss, OutVLoss, OutTokLogp}
	if cfg.PPO.EntCoef > 0 {
		outputs = append(outputs, OutEntropy)
	}
	for _, n := range names {
		outputs = append(outputs, res.Grads[n])
	}
	lossOpts := r.opts
	lossOpts.NoMemPattern = true
	if r.loss, err = openGraph(lossModel, cfg.Model, outputs, lossOpts); err != nil {
		return err
	}
	for _, p := range r.params {
		t, err := tensor(p.Data, p.Shape...)
		if err != nil {
			return err
		}
		r.tensors[p.Name] = t
		gt, err := onnx.NewEmptyTensor[float32](onnx.NewShape(p.Shape...))
		if err != nil {
			return err
		}
		r.grads = append(r.grads, gt)
	}
	r.opt = NewAdamW(r.params, cfg.Beta1, cfg.Beta2, 1e-8, cfg.WeightDecay)
	slog.Info("ppo graphs", "adapted_layers", len(rep.Layers), "adapter_params", rep.Params,
		"backward_nodes", res.Nodes, "prompts", len(r.prompts), "eval_prompts", len(r.evalP))
	return nil
}

// uniquePrompts collects the distinct prompts of every dimension's train (or eval) split.
func uniquePrompts(ds *datasets.Dataset, eval bool) [][]int {
	seen := map[string]bool{}
	var out [][]int
	add := func(p []int) {
		key := fmt.Sprint(p)
		if !seen[key] && len(p) > 0 {
			seen[key] = true
			out = append(out, p)
		}
	}
	for _, d := range ds.Dims {
		ex := &d.Train
		if eval {
			ex = &d.Eval
		}
		for _, e := range ex.Pairs {
			add(e.Prompt)
		}
		for _, e := range ex.SFT {
			add(e.Prompt)
		}
		for _, e := range ex.Prompts {
			add(e.Prompt)
		}
	}
	return out
}

// shuffle permutes prompts deterministically from seed.
func shuffle(p [][]int, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	for i := len(p) - 1; i > 0; i-- {
		j := rng.IntN(i + 1)
		p[i], p[j] = p[j], p[i]
	}
}

func (r *ppoRun) close() {
	for _, s := range []*graphSession{r.score, r.ref, r.loss} {
		if s != nil {
			s.close()
		}
	}
	if r.gen != nil {
		r.gen.close()
	}
	for _, rm := range r.rewards {
		rm.Close()
	}
	for _, t := range r.tensors {
		t.Destroy()
	}
	for _, g := range r.grads {
		g.Destroy()
	}
	if r.metrics != nil {
		r.metrics.Close()
	}
}

// save writes a checkpoint after steps PPO steps (stepper).
func (r *ppoRun) save(steps int) error {
	rng, err := r.lsampler.MarshalBinary()
	if err != nil {
		return err
	}
	return r.saveState(steps, rng, r.pos, false)
}

func (r *ppoRun) saveState(steps int, rng []byte, pos ppoPosition, keepOld bool) error {
	data, _ := json.Marshal(pos)
	conf, _ := json.Marshal(r.cfg)
	st := State{Step: steps, LambdaRNG: rng, Data: data, Config: conf}
	if z, err := r.ideal.Point(); err == nil {
		st.Ideal = z
	}
	return saveCheckpoint(r.cfg.Out, r.params, r.opt, st, keepOld)
}

// elapsed returns the seconds since t.
func elapsed(t time.Time) float64 { return time.Since(t).Seconds() }
