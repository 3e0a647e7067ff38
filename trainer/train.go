package trainer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	onnx "github.com/yalue/onnxruntime_go"

	"github.com/panacea-go/toolkit/datasets"
	"github.com/panacea-go/toolkit/datasets/tokenizer"
	"github.com/panacea-go/toolkit/export"
	"github.com/panacea-go/toolkit/graphs/autodiff"
	"github.com/panacea-go/toolkit/internal/cache"
	"github.com/panacea-go/toolkit/lambda"
	"github.com/panacea-go/toolkit/ort"
)

// Files a run folder holds besides the exported model files.
const (
	MetricsFile = "metrics.jsonl"       // one StepMetrics per line
	RunFile     = "panacea.json"        // the run's Config, as trained
	AdapterFile = "adapter.safetensors" // the trained adapter tensors alone
)

// Hooks let callers watch a run. AfterStep returning an error stops the run at once
// without saving (tests use it to stand in for a kill).
type Hooks struct {
	OnStep    func(total int, m StepMetrics)
	AfterStep func(step int) error
}

// ErrInterrupted is returned when the context is cancelled (SIGINT): a checkpoint was saved.
var ErrInterrupted = errors.New("training interrupted; checkpoint saved, continue with --resume")

// run is the state of one training run.
type run struct {
	cfg      *Config
	opts     ort.Options
	m        int
	sft      bool
	step     *graphSession
	params   []*Param
	pTensors []onnx.Value
	grads    []*onnx.Tensor[float32]
	acc      [][]float32
	opt      *AdamW
	lsampler *lambda.Sampler
	data     *datasets.Sampler
	ideal    *lambda.IdealPoint
	refs     refCache
	metrics  *os.File
	sched    Schedule
	pending  snapshot // positions before the running step
}

// doStep runs one update (stepper).
func (r *run) doStep(s int) (StepMetrics, error) {
	var err error
	if r.pending, err = r.snap(); err != nil {
		return StepMetrics{}, err
	}
	met, err := r.trainStep(s, r.sched.LR(s))
	if err != nil {
		return met, err
	}
	return met, r.logMetrics(met)
}

// after has no per-step extras for DPO/SFT runs (stepper).
func (r *run) after(int) error { return nil }

// Train runs (or with resume, continues) the Panacea training cfg describes and writes the
// run folder cfg.Out.
func Train(ctx context.Context, cfg Config, o ort.Options, resume bool, hooks Hooks) error {
	if cfg.Objective == "reward" { // one reward model, not a λ-input policy
		return TrainReward(ctx, cfg, o, resume, hooks)
	}
	if err := prepareRunDir(&cfg, resume); err != nil {
		return err
	}
	if cfg.Objective == "ppo" {
		if cfg.Steps == 0 {
			return fmt.Errorf("trainer: objective ppo needs steps > 0")
		}
		return TrainPPO(ctx, cfg, o, resume, hooks)
	}
	r := &run{cfg: &cfg, opts: o, m: len(cfg.Data.Dimensions), sft: cfg.Objective == "sft"}
	defer r.close()
	man, err := r.load(ctx)
	if err != nil {
		return err
	}
	if err := trainSteps(ctx, r, resume, hooks); err != nil {
		return err
	}
	return r.writeModel(man)
}

// load reads the model manifest, data and reference log-probs and opens the step graph.
func (r *run) load(ctx context.Context) (*export.Manifest, error) {
	cfg := r.cfg
	man, err := baseManifest(cfg.Model)
	if err != nil {
		return nil, err
	}
	if err := checkModelFit(cfg, man); err != nil {
		return nil, err
	}
	tok, err := tokenizer.LoadDir(cfg.Model)
	if err != nil {
		return nil, err
	}
	ds, err := loadData(cfg, tok, man)
	if err != nil {
		return nil, err
	}
	if r.data, err = datasets.NewSampler(ds); err != nil {
		return nil, err
	}
	if !r.sft {
		var all []datasets.PreferenceExample
		for _, d := range ds.Dims {
			all = append(all, d.Train.Pairs...)
			all = append(all, d.Eval.Pairs...)
		}
		if len(all) == 0 {
			return nil, fmt.Errorf("trainer: objective dpo needs preference data")
		}
		key, _ := jsonKey(cfg.Data)
		r.refs, err = referenceLogps(ctx, cfg.Model, filepath.Join(cache.Dir(), "ref-logps"),
			key, all, cfg.Data.BatchSize, r.opts)
		if err != nil {
			return nil, err
		}
	}
	if err := r.openStep(man); err != nil {
		return nil, err
	}
	r.lsampler, err = lambda.NewSampler(lambda.SamplerConfig{M: r.m,
		Alpha: []float64{cfg.LambdaAlpha}, VertexProb: cfg.VertexProb}, cfg.Seed)
	if err != nil {
		return nil, fmt.Errorf("trainer: %w", err)
	}
	kind := lambda.IdealFixed
	if cfg.Ideal == "min" {
		kind = lambda.IdealMin
	}
	var init []float64
	if len(cfg.IdealPoint) > 0 {
		init = cfg.IdealPoint
	}
	r.ideal, err = lambda.NewIdealPoint(kind, r.m, init, cfg.IdealMargin)
	if err != nil {
		return nil, fmt.Errorf("trainer: ideal: %w", err)
	}
	return man, nil
}

// openStep builds policy + loss + backward and opens it; parameters are wrapped once.
func (r *run) openStep(man *export.Manifest) error {
	cfg := r.cfg
	model, rep, err := loadPolicy(cfg, man, true)
	if err != nil {
		return err
	}
	spec := LossSpec{Objective: cfg.Objective, Dims: r.m, Tche: cfg.Aggregation == "tche",
		Beta: cfg.Beta, Smoothing: cfg.LabelSmoothing}
	if err := AddLoss(model, spec); err != nil {
		return err
	}
	r.params = adapterParams(rep)
	var names []string
	for _, p := range r.params {
		names = append(names, p.Name)
	}
	res, err := autodiff.Differentiate(model, autodiff.Config{Loss: OutLoss, Wrt: names})
	if err != nil {
		return fmt.Errorf("trainer: %w", err)
	}
	slog.Info("step graph", "adapted_layers", len(rep.Layers), "adapter_params", rep.Params,
		"backward_nodes", res.Nodes, "unreached", len(res.Unreached))
	outputs := []string{OutLoss, OutDimLosses, OutUnitLoss}
	if !r.sft {
		outputs = append(outputs, OutMargins)
	}
	for _, n := range names {
		outputs = append(outputs, res.Grads[n])
	}
	stepOpts := r.opts
	stepOpts.NoMemPattern = true // forward values kept for the backward pass: plan less
	if r.step, err = openGraph(model, cfg.Model, outputs, stepOpts); err != nil {
		return err
	}
	return r.bindParams()
}

// bindParams makes what a step needs for r.params: a tensor wrapping each parameter's
// slice (fed to the step graph), a gradient output tensor and accumulator each, and the
// optimiser.
func (r *run) bindParams() error {
	for _, p := range r.params {
		t, err := tensor(p.Data, p.Shape...)
		if err != nil {
			return err
		}
		r.pTensors = append(r.pTensors, t)
		g, err := onnx.NewEmptyTensor[float32](onnx.NewShape(p.Shape...))
		if err != nil {
			return fmt.Errorf("trainer: %w", err)
		}
		r.grads = append(r.grads, g)
		r.acc = append(r.acc, make([]float32, len(p.Data)))
	}
	r.opt = NewAdamW(r.params, r.cfg.Beta1, r.cfg.Beta2, 1e-8, r.cfg.WeightDecay)
	return nil
}

// save writes a checkpoint after steps updates.
func (r *run) save(steps int) error {
	sn, err := r.snap()
	if err != nil {
		return err
	}
	return r.saveSnap(steps, sn, false)
}

// snapshot is the run's position before a step: the data and λ samplers' states.
type snapshot struct {
	data json.RawMessage
	rng  []byte
}

func (r *run) snap() (snapshot, error) {
	rng, err := r.lsampler.MarshalBinary()
	if err != nil {
		return snapshot{}, err
	}
	data, err := json.Marshal(r.data.State())
	return snapshot{data: data, rng: rng}, err
}

// saveSnap writes a checkpoint of the parameters after steps updates with the positions in
// sn; keepOld leaves earlier checkpoint tensor files in place.
func (r *run) saveSnap(steps int, sn snapshot, keepOld bool) error {
	conf, err := json.Marshal(r.cfg)
	if err != nil {
		return err
	}
	st := State{Step: steps, LambdaRNG: sn.rng, Data: sn.data, Config: conf}
	if z, err := r.ideal.Point(); err == nil {
		st.Ideal = z
	}
	if err := saveCheckpoint(r.cfg.Out, r.params, r.opt, st, keepOld); err != nil {
		return err
	}
	slog.Debug("checkpoint", "step", steps, "dir", r.cfg.Out)
	return nil
}

// failed saves what a failed step left: the parameters before it (when finite) with the
// positions before it, keeping earlier checkpoints; it returns the error to report.
func (r *run) failed(step int, err error) error {
	if !finiteParams(r.params) {
		return fmt.Errorf("%w (parameters are not finite; the last checkpoint in %s is kept)",
			err, r.cfg.Out)
	}
	if serr := r.saveSnap(step, r.pending, true); serr != nil {
		return errors.Join(err, serr)
	}
	return fmt.Errorf("%w (state before the step saved as checkpoint %d; earlier checkpoints "+
		"kept)", err, step)
}

// restore loads the latest checkpoint and returns the step to continue from.
func (r *run) restore() (int, error) {
	st, err := LoadCheckpoint(r.cfg.Out, r.params, r.opt)
	if err != nil {
		return 0, err
	}
	if err := r.lsampler.UnmarshalBinary(st.LambdaRNG); err != nil {
		return 0, fmt.Errorf("trainer: checkpoint λ sampler: %w", err)
	}
	var ds datasets.SamplerState
	if err := json.Unmarshal(st.Data, &ds); err != nil {
		return 0, fmt.Errorf("trainer: checkpoint data position: %w", err)
	}
	if err := r.data.Resume(ds); err != nil {
		return 0, err
	}
	if len(st.Ideal) != 0 && len(st.Ideal) != r.m {
		return 0, fmt.Errorf("trainer: checkpoint ideal point has %d values for %d dimensions",
			len(st.Ideal), r.m)
	}
	if r.cfg.Ideal == "min" && len(st.Ideal) == r.m {
		if err := r.ideal.Update(st.Ideal); err != nil {
			return 0, err
		}
	}
	return st.Step, nil
}

func (r *run) close() {
	if r.metrics != nil {
		r.metrics.Close()
	}
	if r.step != nil {
		r.step.close()
	}
	ort.DestroyAll(r.pTensors...)
	for _, g := range r.grads {
		g.Destroy()
	}
}
