package trainer

import (
	"context"
	"fmt"
	"math"
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
