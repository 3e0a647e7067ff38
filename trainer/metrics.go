package trainer

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
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
	// Rewards and KL summarise a PPO step for progress logs (its metrics.jsonl line is a
	// [PPOMetrics]): mean raw reward per dimension and mean KL to the base model.
	Rewards []float64 `json:"rewards,omitempty"`
	KL      float64   `json:"kl,omitempty"`
}

// openMetrics opens metrics.jsonl for appending, dropping lines past step start (written
// after the checkpoint a resumed run continues from).
func (r *run) openMetrics(start int) error {
	f, err := openMetricsFile(filepath.Join(r.cfg.Out, MetricsFile), start)
	r.metrics = f
	return err
}

// openMetricsFile rewrites path keeping the JSON lines whose "step" is at most start, and
// returns it open for appending.
func openMetricsFile(path string, start int) (*os.File, error) {
	var keep []byte
	if start > 0 {
		old, _ := os.ReadFile(path)
		for _, line := range splitLines(old) {
			var m struct {
				Step int `json:"step"`
			}
			if json.Unmarshal(line, &m) == nil && m.Step <= start {
				keep = append(append(keep, line...), '\n')
			}
		}
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("trainer: %w", err)
	}
	if _, err := f.Write(keep); err != nil {
		f.Close()
		return nil, fmt.Errorf("trainer: %w", err)
	}
	return f, nil
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
