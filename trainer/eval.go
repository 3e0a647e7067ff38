package trainer

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"

	"github.com/panacea-go/toolkit/datasets"
	"github.com/panacea-go/toolkit/datasets/tokenizer"
	"github.com/panacea-go/toolkit/internal/cache"
	"github.com/panacea-go/toolkit/lambda"
	"github.com/panacea-go/toolkit/ort"
)

// EvalOptions configure an evaluation of a trained run's front.
type EvalOptions struct {
	// Grid is the number of λ points per simplex edge (m = 2: Grid points; m ≥ 3: the lattice).
	Grid int
	// Splits are "train" and/or "eval" (the held-out rows of the run's data config).
	Splits []string
	// Batch is the number of pairs per forward pass (rows = 2·Batch).
	Batch int
	// Prompts caps the prompts generated from per λ in PPO runs (0: 16).
	Prompts int
	// Progress is called with (done, total) pairs scored; may be nil.
	Progress func(done, total int)
}

// DimScore is one dimension's DPO metrics at one λ: preference accuracy (the fraction of
// held pairs whose implicit reward margin h = β·[(logπ(y_w)−logπ_ref(y_w)) −
// (logπ(y_l)−logπ_ref(y_l))] is positive; a tie counts one half), the mean margin, and the
// mean DPO loss −log σ(h).
//
// For SFT runs only NLL is filled: the mean negative log-likelihood per response token.
type DimScore struct {
	Accuracy float64 `json:"accuracy,omitempty"`
	Margin   float64 `json:"margin,omitempty"`
	Loss     float64 `json:"loss,omitempty"`
	NLL      float64 `json:"nll,omitempty"`
	Reward   float64 `json:"reward,omitempty"` // PPO runs: mean reward-model score
	Pairs    int     `json:"pairs"`            // pairs (DPO) or examples (SFT) scored
}

// SplitEval is the front of one split.
type SplitEval struct {
	Split      string       `json:"split"`
	Dimensions []string     `json:"dimensions"`
	Lambdas    [][]float64  `json:"lambdas"`
	Scores     [][]DimScore `json:"scores"` // [λ][dimension]
	// Base is the base model's score (its own reference: every margin is 0).
	Base []DimScore `json:"base"`
	// Accuracy, Margin and Loss are the fronts of each metric, with their metrics.
	// (DPO runs.)
	Accuracy *lambda.Report `json:"accuracy_front,omitempty"`
	Margin   *lambda.Report `json:"margin_front,omitempty"`
	Loss     *lambda.Report `json:"loss_front,omitempty"`
	// NLL is the front of per-dimension response NLL (SFT runs; minimised).
	NLL *lambda.Report `json:"nll_front,omitempty"`
	// Reward is the front of per-dimension mean reward of generated responses (PPO runs).
	Reward *lambda.Report `json:"reward_front,omitempty"`
	// BaseHypervolume is the hypervolume of the base model's single point against the same
	// reference point as the main front (accuracy for DPO, NLL for SFT).
	BaseHypervolume float64 `json:"base_hypervolume"`
}

// Main is the front that is plotted and summarised: accuracy (DPO) or NLL (SFT).
func (se *SplitEval) Main() *lambda.Report {
	if se.NLL != nil {
		return se.NLL
	}
	if se.Reward != nil {
		return se.Reward
	}
	return se.Accuracy
}

// maxEvalPoints bounds the λ points of one sweep: every point scores the whole split.
const maxEvalPoints = 5000

// Evaluate sweeps λ over a simplex grid and scores every preference pair of each requested
// split under every λ, in batches whose rows carry different λ (per-example λ input).
func Evaluate(runDir string, o ort.Options, eo EvalOptions) ([]*SplitEval, error) {
	ri, err := ReadRunInfo(runDir)
	if err != nil {
		return nil, err
	}
	cfg := ri.Config
	m := len(ri.Dimensions)
	if n, err := lambda.GridCount(m, eo.Grid); err != nil || n > maxEvalPoints {
		return nil, fmt.Errorf("eval: --grid %d gives %d points for %d dimensions (at most %d): "+
			"use a coarser grid", eo.Grid, n, m, maxEvalPoints)
	}
	grid, err := lambda.Grid(m, eo.Grid)
	if err != nil {
		return nil, fmt.Errorf("eval: %w", err)
	}
	tok, err := tokenizer.LoadDir(runDir)
	if err != nil {
		return nil, err
	}
	cfg.Data.PaddingSide = string(datasets.PadRight)
	ds, err := datasets.Load(&cfg.Data, tok)
	if err != nil {
		return nil, err
	}
	sc, err := openScorer(runDir, eo.Batch, o)
	if err != nil {
		return nil, err
	}
	defer sc.close()
	if !sc.hasLambda || sc.m != m {
		return nil, fmt.Errorf("eval: %s has no λ input of length %d", runDir, m)
	}

	var out []*SplitEval
	for _, split := range eo.Splits {
		if split != "train" && split != "eval" {
			return nil, fmt.Errorf("eval: unknown split %q (want train or eval)", split)
		}
		if cfg.Objective == "ppo" {
			se, err := evalPPOSplit(runDir, &cfg, split, grid, eo, o)
			if err != nil {
				return nil, err
			}
			if se != nil {
				se.Split, se.Dimensions = split, ri.Dimensions
				out = append(out, se)
			}
			continue
		}
		if cfg.Objective == "sft" {
			se, err := evalSFTSplit(sc, cfg.Model, ds, split, grid, eo, o)
			if err != nil {
				return nil, err
			}
			if se != nil {
				se.Split, se.Dimensions = split, ri.Dimensions
				out = append(out, se)
			}
			continue
		}
		perDim := make([][]datasets.PreferenceExample, m)
		var all []datasets.PreferenceExample
		for i, d := range ds.Dims {
			ex := d.Train.Pairs
			if split == "eval" {
				ex = d.Eval.Pairs
			}
			perDim[i] = ex
			all = append(all, ex...)
		}
		if len(all) == 0 {
			slog.Warn("eval: split has no pairs; skipped", "split", split)
			continue
		}
		key, _ := jsonKey(cfg.Data)
		refs, err := referenceLogps(context.Background(), cfg.Model, filepath.Join(cache.Dir(), "ref-logps"), key, all,
			eo.Batch, o)
		if err != nil {
			return nil, err
		}
		se, err := evalSplit(sc, refs, perDim, grid, cfg.Beta, eo)
		if err != nil {
			return nil, err
		}
		se.Split, se.Dimensions = split, ri.Dimensions
		if err := se.fronts(); err != nil {
			return nil, err
		}
		out = append(out, se)
	}
	return out, nil
}

// evalSplit scores every (λ, pair): all pairs repeated once per grid point, each row with
// its own λ, so that the sweep batches like one pass over G·N pairs.
func evalSplit(sc *scorer, refs refCache, perDim [][]datasets.PreferenceExample,
	grid [][]float64, beta float64, eo EvalOptions) (*SplitEval, error) {
	m := len(perDim)
	var ex []datasets.PreferenceExample
	var lam []float32
	for _, l := range grid {
		for _, dimEx := range perDim {
			for _, e := range dimEx {
				ex = append(ex, e)
				for _, v := range l {
					lam = append(lam, float32(v))
				}
			}
		}
	}
	lp := make([][2]float32, 0, len(ex))
	chunk := max(sc.batch*8, 1)
	for lo := 0; lo < len(ex); lo += chunk {
		hi := min(lo+chunk, len(ex))
		part, err := sc.pairLogps(ex[lo:hi], lam[lo*m:hi*m])
		if err != nil {
			return nil, err
		}
		lp = append(lp, part...)
		if eo.Progress != nil {
			eo.Progress(hi, len(ex))
		}
	}
	se := &SplitEval{Lambdas: grid}
	k := 0
	for range grid {
		row := make([]DimScore, m)
		for d, dimEx := range perDim {
			for _, e := range dimEx {
				ref := refs[e.ID]
				h := beta * (float64(lp[k][0]-ref[0]) - float64(lp[k][1]-ref[1]))
				row[d].add(h)
				k++
			}
			row[d].finish()
		}
		se.Scores = append(se.Scores, row)
	}
	se.Base = make([]DimScore, m)
	for d, dimEx := range perDim {
		for range dimEx {
			se.Base[d].add(0)
		}
		se.Base[d].finish()
	}
	return se, nil
}

func (s *DimScore) add(h float64) {
	s.Pairs++
	switch {
	case h > 0:
		s.Accuracy++
	case h == 0:
		s.Accuracy += 0.5
	}
	s.Margin += h
	// −log σ(h) = log(1 + e^−h), computed stably.
	s.Loss += math.Max(-h, 0) + math.Log1p(math.Exp(-math.Abs(h)))
}

func (s *DimScore) finish() {
	if s.Pairs > 0 {
		n := float64(s.Pairs)
		s.Accuracy, s.Margin, s.Loss = s.Accuracy/n, s.Margin/n, s.Loss/n
	}
}

// fronts builds the accuracy, margin and loss fronts with their metrics. Reference points:
// accuracy 0 (the worst possible), margin and loss the worst value seen (base included)
// moved out by 10% of the spread, so every point contributes.
func (se *SplitEval) fronts() error {
	pick := func(f func(DimScore) float64) ([][]float64, []float64) {
		var vals [][]float64
		for _, row := range se.Scores {
			v := make([]float64, len(row))
			for d, s := range row {
				v[d] = f(s)
			}
			vals = append(vals, v)
		}
		base := make([]float64, len(se.Base))
		for d, s := range se.Base {
			base[d] = f(s)
		}
		return vals, base
	}
	var err error
	acc, baseAcc := pick(func(s DimScore) float64 { return s.Accuracy })
	zero := make([]float64, len(baseAcc))
	if se.Accuracy, err = lambda.NewReport(se.front(acc, true), zero); err != nil {
		return err
	}
	se.BaseHypervolume, err = lambda.Hypervolume([][]float64{baseAcc}, zero, nil)
	if err != nil {
		return err
	}
	mar, baseMar := pick(func(s DimScore) float64 { return s.Margin })
	if se.Margin, err = lambda.NewReport(se.front(mar, true), worst(mar, baseMar, true)); err != nil {
		return err
	}
	loss, baseLoss := pick(func(s DimScore) float64 { return s.Loss })
	se.Loss, err = lambda.NewReport(se.front(loss, false), worst(loss, baseLoss, false))
	return err
}

func (se *SplitEval) front(vals [][]float64, maximize bool) lambda.Front {
	mx := make([]bool, len(se.Dimensions))
	for i := range mx {
		mx[i] = maximize
	}
	return lambda.Front{Names: se.Dimensions, Lambdas: se.Lambdas, Values: vals, Maximize: mx}
}

// worst returns, per objective, the worst value among vals and base, pushed out by 10% of
// the spread (at least 1e-3).
func worst(vals [][]float64, base []float64, maximize bool) []float64 {
	out := make([]float64, len(base))
	for d := range base {
		lo, hi := base[d], base[d]
		for _, v := range vals {
			lo, hi = math.Min(lo, v[d]), math.Max(hi, v[d])
		}
		pad := math.Max(0.1*(hi-lo), 1e-3)
		if maximize {
			out[d] = lo - pad
		} else {
			out[d] = hi + pad
		}
	}
	return out
}

// WriteEval writes each split's front to dir: front-SPLIT.json (everything), front-SPLIT.csv
// (the accuracy front) and accuracy plots front-SPLIT[-i-j].png/.svg with the base model as
// a reference point (one plot per pair of dimensions when m ≥ 3).
func WriteEval(dir string, res []*SplitEval) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("eval: %w", err)
	}
	for _, se := range res {
		if err := writeSplit(dir, se); err != nil {
			return err
		}
	}
	return nil
}
