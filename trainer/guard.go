package trainer

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"

	"github.com/panacea-go/toolkit/datasets"
	"github.com/panacea-go/toolkit/datasets/tokenizer"
	"github.com/panacea-go/toolkit/export"
)

// checkFolders refuses run folders that would overwrite something else: the base model's own
// folder (training writes model.onnx.data there), or a folder holding an export or another
// model without a checkpoint.
func checkFolders(cfg *Config, resume bool) error {
	same, err := sameDir(cfg.Model, cfg.Out)
	if err != nil {
		return err
	}
	if same {
		return fmt.Errorf("trainer: out %s is the base model's folder: choose another --out", cfg.Out)
	}
	if _, err := os.Stat(filepath.Join(cfg.Model, RunFile)); err == nil {
		return fmt.Errorf("trainer: model %s is a training run (it has %s and a lambda input): "+
			"train from a folder written by toolkit export", cfg.Model, RunFile)
	}
	if !resume {
		_, model := os.Stat(filepath.Join(cfg.Out, ModelFile))
		_, ckpt := os.Stat(filepath.Join(cfg.Out, CheckpointFile))
		if model == nil && ckpt != nil {
			return fmt.Errorf("trainer: out %s already holds a model (%s) and no checkpoint: "+
				"choose an empty or new folder", cfg.Out, ModelFile)
		}
	}
	return nil
}

// sameDir reports whether two paths name the same folder (symlinks resolved); a path that
// does not exist yet is not the same as anything.
func sameDir(a, b string) (bool, error) {
	sa, errA := os.Stat(a)
	sb, errB := os.Stat(b)
	if errors.Is(errB, os.ErrNotExist) || errors.Is(errA, os.ErrNotExist) {
		return false, nil
	}
	if errA != nil || errB != nil {
		return false, fmt.Errorf("trainer: %w", errors.Join(errA, errB))
	}
	return os.SameFile(sa, sb), nil
}

// checkModelFit checks settings against the base model: the adapter's rank (k + m singular
// values cannot exceed the smallest adapted width, the hidden size), sequence lengths
// against the trained context, and the padding id against the vocabulary.
func checkModelFit(cfg *Config, man *export.Manifest) error {
	m := len(cfg.Data.Dimensions)
	if cfg.Objective == "reward" {
		m = 1
	}
	adapter := cfg.Objective != "reward" || cfg.RewardLoRA
	if adapter && cfg.Rank+m > man.HiddenSize {
		return fmt.Errorf("trainer: rank: %d learned + %d preference singular values exceed the "+
			"model's hidden size %d", cfg.Rank, m, man.HiddenSize)
	}
	if man.MaxPositions > 0 && (cfg.Data.MaxLen <= 0 || cfg.Data.MaxLen > man.MaxPositions) {
		return fmt.Errorf("trainer: data.max_len: %d; the model was trained on at most %d "+
			"positions: set max_len between 1 and %d", cfg.Data.MaxLen, man.MaxPositions,
			man.MaxPositions)
	}
	if cfg.Data.PadID < 0 || cfg.Data.PadID >= man.VocabSize {
		return fmt.Errorf("trainer: data.pad_id: %d is outside the vocabulary (0..%d)",
			cfg.Data.PadID, man.VocabSize-1)
	}
	return nil
}

// checkFinite names every float setting that is NaN or infinite.
func checkFinite(cfg *Config) []error {
	var errs []error
	var walk func(v reflect.Value, t reflect.Type)
	walk = func(v reflect.Value, t reflect.Type) {
		for i := range t.NumField() {
			f, fv := t.Field(i), v.Field(i)
			key := f.Tag.Get("mapstructure")
			switch {
			case f.Type.Kind() == reflect.Float64:
				if x := fv.Float(); math.IsNaN(x) || math.IsInf(x, 0) {
					errs = append(errs, fmt.Errorf("%s: %v is not a finite number", key, x))
				}
			case f.Type.Kind() == reflect.Slice && f.Type.Elem().Kind() == reflect.Float64:
				for j := range fv.Len() {
					if x := fv.Index(j).Float(); math.IsNaN(x) || math.IsInf(x, 0) {
						errs = append(errs, fmt.Errorf("%s[%d]: %v is not a finite number", key, j, x))
					}
				}
			case f.Type.Kind() == reflect.Struct && key == ",squash":
				walk(fv, f.Type)
			}
		}
	}
	walk(reflect.ValueOf(*cfg), reflect.TypeOf(*cfg))
	return errs
}

// checkVocab refuses data whose token ids the model cannot embed: a tokenizer with more ids
// than the model's vocabulary (a tokenizer from another model) would otherwise reach ONNX
// Runtime as an out-of-range Gather. It names the first such row.
func checkVocab(ds *datasets.Dataset, vocab int, model string) error {
	bad := func(ids ...[]int) int {
		for _, s := range ids {
			for _, id := range s {
				if id < 0 || id >= vocab {
					return id
				}
			}
		}
		return -1
	}
	report := func(dim, src string, line, id int) error {
		return fmt.Errorf("trainer: dimension %s: %s:%d tokenizes to id %d, outside the "+
			"vocabulary of %s (0..%d): its tokenizer files do not belong to this model",
			dim, src, line, id, model, vocab-1)
	}
	for _, d := range ds.Dims {
		for _, ex := range []*datasets.Examples{&d.Train, &d.Eval} {
			for _, e := range ex.Pairs {
				if id := bad(e.Prompt, e.Chosen, e.Rejected); id != -1 {
					return report(d.Name, e.Source, e.Line, id)
				}
			}
			for _, e := range ex.SFT {
				if id := bad(e.Prompt, e.Response); id != -1 {
					return report(d.Name, e.Source, e.Line, id)
				}
			}
			for _, e := range ex.Prompts {
				if id := bad(e.Prompt); id != -1 {
					return report(d.Name, e.Source, e.Line, id)
				}
			}
		}
	}
	return nil
}

// loadData loads cfg.Data with the base model's tokenizer and checks its ids against the
// model's vocabulary.
func loadData(cfg *Config, tok *tokenizer.Tokenizer, man *export.Manifest) (*datasets.Dataset, error) {
	ds, err := datasets.Load(&cfg.Data, tok)
	if err != nil {
		return nil, err
	}
	if err := checkVocab(ds, man.VocabSize, cfg.Model); err != nil {
		return nil, err
	}
	return ds, nil
}
