package trainer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
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

// StepMetrics is one line of metrics.jsonl.
type StepMetrics struct {
	Step      int       `json:"step"`
	Lambda    []float64 `json:"lambda"`
	Loss      float64   `json:"loss"`
	DimLosses []float64 `json:"dim_losses"`
	// Accuracy and Margin are per dimension (DPO): the fraction of pairs with a positive
	// implicit reward margin, and the mean margin.
	Accuracy   []float64 `json:"accuracy,omitempty"`
	Margin     []float64 `json:"margin,omitempty"`
	LR         float64   `json:"lr"`
	GradNorm   float64   `json:"grad_norm"`
	TokensPerS float64   `json:"tokens_per_s"`
	Seconds    float64   `json:"seconds"`
}

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
}

// Train runs (or with resume, continues) the Panacea training cfg describes and writes the
// run folder cfg.Out.
func Train(ctx context.Context, cfg Config, o ort.Options, resume bool, hooks Hooks) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	// Absolute paths, so that panacea.json still finds the base model and the data when
	// eval runs from another folder.
	for _, p := range []*string{&cfg.Model, &cfg.Data.BaseDir} {
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
	r := &run{cfg: &cfg, opts: o, m: len(cfg.Data.Dimensions), sft: cfg.Objective == "sft"}
	defer r.close()
	man, err := r.load()
	if err != nil {
		return err
	}
	total := cfg.Steps
	if total == 0 {
		total = r.data.TotalSteps() / cfg.GradAccum
	}
	if total*cfg.GradAccum > r.data.TotalSteps() {
		return fmt.Errorf("trainer: steps %d × grad-accum %d needs %d sub-batches per dimension "+
			"but the data gives %d in data.epochs=%d: raise data.epochs or lower steps",
			total, cfg.GradAccum, total*cfg.GradAccum, r.data.TotalSteps(), cfg.Data.Epochs)
	}
	start := 0
	if resume {
		if start, err = r.restore(); err != nil {
			return err
		}
		slog.Info("resumed", "step", start, "of", total)
	}
	if err := r.openMetrics(start); err != nil {
		return err
	}
	sched := Schedule{Peak: cfg.LR, Warmup: cfg.Warmup, Total: total, MinRatio: cfg.MinLRRatio}
	for s := start; s < total; s++ {
		if ctx.Err() != nil {
			if err := r.save(s); err != nil {
				return err
			}
			return ErrInterrupted
		}
		met, err := r.trainStep(s, sched.LR(s))
		if err != nil {
			if serr := r.save(s); serr != nil {
				return errors.Join(err, serr)
			}
			return fmt.Errorf("%w (last good checkpoint saved at step %d)", err, s)
		}
		if err := r.logMetrics(met); err != nil {
			return err
		}
		if hooks.OnStep != nil {
			hooks.OnStep(total, met)
		}
		if cfg.SaveEvery > 0 && (s+1)%cfg.SaveEvery == 0 && s+1 < total {
			if err := r.save(s + 1); err != nil {
				return err
			}
		}
		if hooks.AfterStep != nil {
			if err := hooks.AfterStep(s + 1); err != nil {
				return err
			}
		}
	}
	if err := r.save(total); err != nil {
		return err
	}
	return r.writeModel(man)
}

// load reads the model manifest, data and reference log-probs and opens the step graph.
func (r *run) load() (*export.Manifest, error) {
	cfg := r.cfg
	man, err := export.ReadManifest(cfg.Model)
	if err != nil {
		return nil, err
	}
	tok, err := tokenizer.LoadDir(cfg.Model)
	if err != nil {
		return nil, err
	}
	cfg.Data.PaddingSide = string(datasets.PadRight)
	ds, err := datasets.Load(&cfg.Data, tok)
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
		r.refs, err = referenceLogps(cfg.Model, filepath.Join(cache.Dir(), "ref-logps"),
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
	if r.step, err = openGraph(model, cfg.Model, outputs, r.opts); err != nil {
		return err
	}
	for _, p := range r.params {
		t, err := tensor(p.Data, p.Shape...)
		if err != nil {
			return err
		}
		r.pTensors = append(r.pTensors, t)
		g, err := onnx.NewEmptyTensor[float32](onnx.NewShape(p.Shape...))
		if err != nil {
			return err
		}
		r.grads = append(r.grads, g)
		r.acc = append(r.acc, make([]float32, len(p.Data)))
	}
	r.opt = NewAdamW(r.params, cfg.Beta1, cfg.Beta2, 1e-8, cfg.WeightDecay)
	return nil
}

// trainStep runs GradAccum micro-batches under one λ and applies one AdamW update.
func (r *run) trainStep(step int, lr float64) (StepMetrics, error) {
	start := time.Now()
	lam := r.lsampler.Sample()
	met := StepMetrics{Step: step + 1, Lambda: lam, LR: lr, DimLosses: make([]float64, r.m)}
	if !r.sft {
		met.Accuracy, met.Margin = make([]float64, r.m), make([]float64, r.m)
	}
	for _, a := range r.acc {
		clear(a)
	}
	tokens := 0
	for range r.cfg.GradAccum {
		st, err := r.data.Next()
		if err == io.EOF {
			return met, fmt.Errorf("trainer: step %d: data ran out", step+1)
		}
		if err != nil {
			return met, err
		}
		sb, err := merge(st.Batches)
		if err != nil {
			return met, err
		}
		tokens += sb.tokens
		if err := r.micro(sb, lam, &met); err != nil {
			return met, fmt.Errorf("trainer: step %d: %w", step+1, err)
		}
	}
	inv := float32(1 / float64(r.cfg.GradAccum))
	for _, a := range r.acc {
		for j := range a {
			a[j] *= inv
		}
	}
	met.Loss /= float64(r.cfg.GradAccum)
	for i := range r.m {
		met.DimLosses[i] /= float64(r.cfg.GradAccum)
		if !r.sft {
			met.Accuracy[i] /= float64(r.cfg.GradAccum)
			met.Margin[i] /= float64(r.cfg.GradAccum)
		}
	}
	met.GradNorm = ClipByGlobalNorm(r.acc, r.cfg.MaxGradNorm)
	if math.IsNaN(met.GradNorm) || math.IsInf(met.GradNorm, 0) {
		return met, fmt.Errorf("trainer: step %d: gradient norm is %v", step+1, met.GradNorm)
	}
	if r.cfg.Ideal == "min" {
		if err := r.ideal.Update(met.DimLosses); err != nil {
			return met, err
		}
	}
	if err := r.opt.Update(r.params, r.acc, lr); err != nil {
		return met, err
	}
	met.Seconds = time.Since(start).Seconds()
	met.TokensPerS = float64(tokens) / met.Seconds
	return met, nil
}

// micro runs one micro-batch and adds its loss, metrics and gradients to the step's.
func (r *run) micro(sb *stepBatch, lam []float64, met *StepMetrics) error {
	in, free, err := tokenTensors(sb)
	if err != nil {
		return err
	}
	defer free()
	rowsLam := make([]float32, sb.rows*r.m)
	agg := make([]float32, r.m)
	for i, v := range lam {
		agg[i] = float32(v)
	}
	for row := range sb.rows {
		copy(rowsLam[row*r.m:], agg)
	}
	units := sb.pairs
	if r.sft {
		units = sb.rows
	}
	extra := map[string]any{
		LambdaInput: rowsLam, InAggWeight: agg, InDimWeight: sb.dimWeights(r.m, r.sft)}
	shapes := map[string][]int64{LambdaInput: {int64(sb.rows), int64(r.m)},
		InAggWeight: {int64(r.m)}, InDimWeight: {int64(units), int64(r.m)}}
	if !r.sft {
		ref := make([]float32, sb.rows)
		for row := range sb.rows {
			lp, ok := r.refs[sb.exIDs[row]]
			if !ok {
				return fmt.Errorf("no reference log-prob for example %d", sb.exIDs[row])
			}
			ref[row] = lp[0]
			if row >= sb.pairs {
				ref[row] = lp[1]
			}
		}
		extra[InRefLogp], shapes[InRefLogp] = ref, []int64{int64(sb.rows)}
	}
	if r.cfg.Aggregation == "tche" {
		z, err := r.ideal.Point()
		if err != nil {
			return err
		}
		z32 := make([]float32, r.m)
		for i, v := range z {
			z32[i] = float32(v)
		}
		extra[InIdeal], shapes[InIdeal] = z32, []int64{int64(r.m)}
	}
	for name, data := range extra {
		t, err := tensor(data.([]float32), shapes[name]...)
		if err != nil {
			return err
		}
		defer t.Destroy()
		in[name] = t
	}
	for i, p := range r.params {
		in[p.Name] = r.pTensors[i]
	}

	loss, _ := onnx.NewEmptyTensor[float32](onnx.NewShape(1))
	dims, _ := onnx.NewEmptyTensor[float32](onnx.NewShape(int64(r.m)))
	unitT, _ := onnx.NewEmptyTensor[float32](onnx.NewShape(int64(units)))
	defer ort.DestroyAll(loss, dims, unitT)
	out := map[string]onnx.Value{OutLoss: loss, OutDimLosses: dims, OutUnitLoss: unitT}
	var margins *onnx.Tensor[float32]
	if !r.sft {
		margins, _ = onnx.NewEmptyTensor[float32](onnx.NewShape(int64(sb.pairs)))
		defer margins.Destroy()
		out[OutMargins] = margins
	}
	for i, p := range r.params {
		out[autodiff.GradName(p.Name)] = r.grads[i]
	}
	if err := r.step.run(int64(sb.rows), in, out); err != nil {
		return err
	}

	l := float64(loss.GetData()[0])
	if math.IsNaN(l) || math.IsInf(l, 0) {
		return fmt.Errorf("loss is %v", l)
	}
	met.Loss += l
	for i, v := range dims.GetData() {
		met.DimLosses[i] += float64(v)
	}
	if !r.sft {
		count := make([]float64, r.m)
		acc, mar := make([]float64, r.m), make([]float64, r.m)
		for p, h := range margins.GetData() {
			d := sb.dims[p]
			count[d]++
			mar[d] += float64(h)
			if h > 0 {
				acc[d]++
			}
		}
		for d := range r.m {
			if count[d] > 0 {
				met.Accuracy[d] += acc[d] / count[d]
				met.Margin[d] += mar[d] / count[d]
			}
		}
	}
	for i, g := range r.grads {
		for j, v := range g.GetData() {
			r.acc[i][j] += v
		}
	}
	return nil
}

// save writes a checkpoint after steps updates.
func (r *run) save(steps int) error {
	rng, err := r.lsampler.MarshalBinary()
	if err != nil {
		return err
	}
	data, err := json.Marshal(r.data.State())
	if err != nil {
		return err
	}
	conf, err := json.Marshal(r.cfg)
	if err != nil {
		return err
	}
	st := State{Step: steps, LambdaRNG: rng, Data: data, Config: conf}
	if z, err := r.ideal.Point(); err == nil {
		st.Ideal = z
	}
	if err := SaveCheckpoint(r.cfg.Out, r.params, r.opt, st); err != nil {
		return err
	}
	slog.Debug("checkpoint", "step", steps, "dir", r.cfg.Out)
	return nil
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
	if r.cfg.Ideal == "min" && len(st.Ideal) == r.m {
		if err := r.ideal.Update(st.Ideal); err != nil {
			return 0, err
		}
	}
	return st.Step, nil
}

// openMetrics opens metrics.jsonl for appending, dropping lines past step start (written
// after the checkpoint a resumed run continues from).
func (r *run) openMetrics(start int) error {
	path := filepath.Join(r.cfg.Out, MetricsFile)
	var keep []byte
	if start > 0 {
		old, _ := os.ReadFile(path)
		for _, line := range splitLines(old) {
			var m StepMetrics
			if json.Unmarshal(line, &m) == nil && m.Step <= start {
				keep = append(append(keep, line...), '\n')
			}
		}
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("trainer: %w", err)
	}
	if _, err := f.Write(keep); err != nil {
		f.Close()
		return fmt.Errorf("trainer: %w", err)
	}
	r.metrics = f
	return nil
}

func splitLines(b []byte) [][]byte {
	var out [][]byte
	for len(b) > 0 {
		i := 0
		for i < len(b) && b[i] != '\n' {
			i++
		}
		if i > 0 {
			out = append(out, b[:i])
		}
		if i < len(b) {
			i++
		}
		b = b[i:]
	}
	return out
}

func (r *run) logMetrics(m StepMetrics) error {
	js, err := json.Marshal(m)
	if err != nil {
		return err
	}
	if _, err := r.metrics.Write(append(js, '\n')); err != nil {
		return fmt.Errorf("trainer: metrics: %w", err)
	}
	return nil
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
