package trainer

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"

	"github.com/panacea-go/toolkit/export/safetensors"
	"github.com/panacea-go/toolkit/graphs"
)

// CheckpointFile is the JSON state of the latest checkpoint in a run folder. It names the
// safetensors file holding the adapter and optimiser moments of the same step, so that the
// pair is switched by one atomic rename.
const CheckpointFile = "checkpoint.json"

// State is everything besides tensors that a resumed run needs to continue exactly.
type State struct {
	Step    int    `json:"step"`
	Tensors string `json:"tensors"` // file in the run folder with params and moments
	// OptimStep is AdamW's update count (bias correction).
	OptimStep int `json:"optim_step"`
	// LambdaRNG is the λ sampler's state, Data the data sampler's position.
	LambdaRNG []byte          `json:"lambda_rng"`
	Data      json.RawMessage `json:"data"`
	// Ideal is the Tchebycheff ideal point, when a running one is used.
	Ideal []float64 `json:"ideal,omitempty"`
	// Config is the training configuration the run started with.
	Config json.RawMessage `json:"config"`
}

const (
	momentM = "adam_m/"
	momentV = "adam_v/"
)

// SaveCheckpoint writes params and optimiser moments to dir/checkpoint-STEP.safetensors,
// then the state to dir/checkpoint.json (each atomically), then removes older tensor files.
func SaveCheckpoint(dir string, params []*Param, opt *AdamW, st State) error {
	return saveCheckpoint(dir, params, opt, st, false)
}

func saveCheckpoint(dir string, params []*Param, opt *AdamW, st State, keepOld bool) error {
	st.Tensors = fmt.Sprintf("checkpoint-%07d.safetensors", st.Step)
	st.OptimStep = opt.Step
	var ts []safetensors.Tensor
	for _, p := range params {
		for _, e := range []struct {
			prefix string
			data   []float32
		}{{"", p.Data}, {momentM, opt.M[p.Name]}, {momentV, opt.V[p.Name]}} {
			t, err := safetensors.FromFloat32(e.prefix+p.Name, safetensors.F32, p.Shape, e.data)
			if err != nil {
				return fmt.Errorf("checkpoint: %w", err)
			}
			ts = append(ts, t)
		}
	}
	if err := safetensors.Write(filepath.Join(dir, st.Tensors), ts, nil); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	js, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	if err := graphs.WriteFileAtomic(filepath.Join(dir, CheckpointFile), js); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	if keepOld {
		return nil
	}
	old, _ := filepath.Glob(filepath.Join(dir, "checkpoint-*.safetensors"))
	for _, f := range old {
		if filepath.Base(f) != st.Tensors {
			os.Remove(f)
		}
	}
	return nil
}

// ErrNoCheckpoint is returned by LoadCheckpoint when the folder has none.
var ErrNoCheckpoint = errors.New("no checkpoint")

// LoadCheckpoint reads dir's latest checkpoint into params (matched by name and shape) and
// opt, and returns its state.
func LoadCheckpoint(dir string, params []*Param, opt *AdamW) (*State, error) {
	js, err := os.ReadFile(filepath.Join(dir, CheckpointFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("checkpoint: %s: %w", dir, ErrNoCheckpoint)
	}
	if err != nil {
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	var st State
	if err := json.Unmarshal(js, &st); err != nil {
		return nil, fmt.Errorf("checkpoint: %s: %w", filepath.Join(dir, CheckpointFile), err)
	}
	if st.Step < 0 || st.OptimStep < 0 || st.OptimStep > st.Step*1_000_000 {
		return nil, fmt.Errorf("checkpoint: %s: step %d / optim_step %d out of range",
			filepath.Join(dir, CheckpointFile), st.Step, st.OptimStep)
	}
	if st.Tensors == "" || strings.ContainsAny(st.Tensors, `/\`) {
		return nil, fmt.Errorf("checkpoint: %s: bad tensors file %q", CheckpointFile, st.Tensors)
	}
	f, err := safetensors.Open(filepath.Join(dir, st.Tensors))
	if err != nil {
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	defer f.Close()
	for _, p := range params {
		for _, e := range []struct {
			name string
			dst  []float32
		}{{p.Name, p.Data}, {momentM + p.Name, opt.M[p.Name]}, {momentV + p.Name, opt.V[p.Name]}} {
			v, err := f.Float32(e.name)
			if err != nil {
				return nil, fmt.Errorf("checkpoint: %w", err)
			}
			if len(v) != len(e.dst) {
				return nil, fmt.Errorf("checkpoint: %s: tensor %q has %d values, the run expects %d",
					st.Tensors, e.name, len(v), len(e.dst))
			}
			copy(e.dst, v)
		}
	}
	opt.Step = st.OptimStep
	return &st, nil
}

// sameSettings refuses to resume a run with settings other than those it started with
// (they are in the checkpoint): a changed step count or learning rate would silently
// change the schedule, and changed data would change the batches.
func sameSettings(cfg Config) error {
	js, err := os.ReadFile(filepath.Join(cfg.Out, CheckpointFile))
	if err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	var st struct {
		Config map[string]json.RawMessage `json:"config"`
	}
	if err := json.Unmarshal(js, &st); err != nil {
		return fmt.Errorf("checkpoint: %s: %w", filepath.Join(cfg.Out, CheckpointFile), err)
	}
	nowJS, err := json.Marshal(cfg)
	if err != nil {
		return err
	}
	var now map[string]json.RawMessage
	if err := json.Unmarshal(nowJS, &now); err != nil {
		return err
	}
	// Keys on either side: a setting left out (omitempty) on one side is a change too.
	keys := map[string]bool{}
	for k := range now {
		keys[k] = true
	}
	for k := range st.Config {
		keys[k] = true
	}
	var changed []string
	for k := range keys {
		if resumeFree[k] {
			continue
		}
		old, inOld := st.Config[k]
		v, inNow := now[k]
		if !inOld || !inNow || !jsonEqual(old, v) {
			changed = append(changed, k)
		}
	}
	if len(changed) > 0 {
		slices.Sort(changed)
		return fmt.Errorf("trainer: --resume: settings differ from the run's (%s): %s; "+
			"resume with the same config and flags", filepath.Join(cfg.Out, CheckpointFile),
			strings.Join(changed, ", "))
	}
	return nil
}

// resumeFree lists the settings a resumed run may change: they do not change what is
// trained (where the run writes, how often it logs and saves).
var resumeFree = map[string]bool{"out": true, "log_every": true, "save_every": true}

func jsonEqual(a, b json.RawMessage) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	return reflect.DeepEqual(x, y)
}
