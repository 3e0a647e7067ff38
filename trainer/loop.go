package trainer

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"

	"github.com/panacea-go/toolkit/datasets"
)

// stepper is what the shared training loop needs from one kind of run (DPO/SFT, PPO).
type stepper interface {
	// doStep runs step s (0-based), records its metrics and returns them for the hooks.
	doStep(s int) (StepMetrics, error)
	// save writes a checkpoint after steps steps.
	save(steps int) error
	// failed handles a failed step s and returns the error to report.
	failed(s int, err error) error
	// after runs per-step extras with the number of steps done.
	after(steps int) error
}

// runSteps runs steps [start, total): Ctrl-C (a cancelled ctx) saves and returns
// ErrInterrupted; a checkpoint every saveEvery steps and one at the end.
func runSteps(ctx context.Context, st stepper, start, total, saveEvery int, hooks Hooks) error {
	for s := start; s < total; s++ {
		if ctx.Err() != nil {
			if err := st.save(s); err != nil {
				return err
			}
			return ErrInterrupted
		}
		met, err := st.doStep(s)
		if err != nil {
			return st.failed(s, err)
		}
		if hooks.OnStep != nil {
			hooks.OnStep(total, met)
		}
		if saveEvery > 0 && (s+1)%saveEvery == 0 && s+1 < total {
			if err := st.save(s + 1); err != nil {
				return err
			}
		}
		if err := st.after(s + 1); err != nil {
			return err
		}
		if hooks.AfterStep != nil {
			if err := hooks.AfterStep(s + 1); err != nil {
				return err
			}
		}
	}
	return st.save(total)
}

// finiteParams reports whether every parameter value is finite.
func finiteParams(params []*Param) bool {
	for _, p := range params {
		for _, v := range p.Data {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				return false
			}
		}
	}
	return true
}

// checkResumeStep checks a checkpoint's step against the run's length.
func checkResumeStep(start, total int) error {
	if start > total {
		return fmt.Errorf("trainer: --resume: checkpoint step %d is past the run's %d steps",
			start, total)
	}
	return nil
}

// resumable is a stepper over a run's data sampler that can restore its checkpoint.
type resumable interface {
	stepper
	restore() (int, error)
	base() *run
}

func (r *run) base() *run { return r }

// trainSteps sizes the run (cfg.Steps, or the data's epochs), resumes from the checkpoint
// when asked, opens metrics.jsonl and runs the steps.
func trainSteps(ctx context.Context, rr resumable, resume bool, hooks Hooks) error {
	r := rr.base()
	cfg := r.cfg
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
		var err error
		if start, err = rr.restore(); err != nil {
			return err
		}
		if err := checkResumeStep(start, total); err != nil {
			return err
		}
		slog.Info("resumed", "step", start, "of", total)
	}
	if err := r.openMetrics(start); err != nil {
		return err
	}
	r.sched = Schedule{Peak: cfg.LR, Warmup: cfg.Warmup, Total: total, MinRatio: cfg.MinLRRatio}
	return runSteps(ctx, rr, start, total, cfg.SaveEvery, hooks)
}

// nextBatch draws the next step's sub-batches (one per dimension) and merges them.
func nextBatch(data *datasets.Sampler, step int) (*stepBatch, error) {
	st, err := data.Next()
	if err == io.EOF {
		return nil, fmt.Errorf("trainer: step %d: data ran out", step+1)
	}
	if err != nil {
		return nil, err
	}
	return merge(st.Batches)
}
