package trainer

import (
	"log/slog"

	"github.com/panacea-go/toolkit/datasets"
	"github.com/panacea-go/toolkit/lambda"
	"github.com/panacea-go/toolkit/ort"
)

// evalSFTSplit scores each dimension's SFT examples under every λ of the grid (per-row λ)
// and under the base model, and builds the NLL front. It returns nil when the split is empty.
func evalSFTSplit(sc *scorer, baseModel string, ds *datasets.Dataset, split string,
	grid [][]float64, eo EvalOptions, o ort.Options) (*SplitEval, error) {
	m := len(ds.Dims)
	perDim := make([][]datasets.SFTExample, m)
	var all []datasets.SFTExample
	for i, d := range ds.Dims {
		perDim[i] = d.Train.SFT
		if split == "eval" {
			perDim[i] = d.Eval.SFT
		}
		all = append(all, perDim[i]...)
	}
	if len(all) == 0 {
		slog.Warn("eval: split has no examples; skipped", "split", split)
		return nil, nil
	}

	// Every example once per grid point, each row with its λ.
	var ex []datasets.SFTExample
	var lam []float32
	for _, l := range grid {
		ex = append(ex, all...)
		for range all {
			for _, v := range l {
				lam = append(lam, float32(v))
			}
		}
	}
	logp, tokens, err := scoreChunks(sc, ex, lam, eo)
	if err != nil {
		return nil, err
	}
	base, err := openScorer(baseModel, eo.Batch, o)
	if err != nil {
		return nil, err
	}
	defer base.close()
	baseLogp, baseTok, err := base.sftLogps(all, nil)
	if err != nil {
		return nil, err
	}

	se := &SplitEval{Lambdas: grid}
	nll := func(lp []float64, tok []int) []DimScore {
		row := make([]DimScore, m)
		k := 0
		var sum, count = make([]float64, m), make([]float64, m)
		for d, dimEx := range perDim {
			for range dimEx {
				sum[d] -= lp[k]
				count[d] += float64(tok[k])
				row[d].Pairs++
				k++
			}
			if count[d] > 0 {
				row[d].NLL = sum[d] / count[d]
			}
		}
		return row
	}
	n := len(all)
	for g := range grid {
		se.Scores = append(se.Scores, nll(logp[g*n:(g+1)*n], tokens[g*n:(g+1)*n]))
	}
	se.Base = nll(baseLogp, baseTok)

	vals := make([][]float64, len(grid))
	for g, row := range se.Scores {
		for _, s := range row {
			vals[g] = append(vals[g], s.NLL)
		}
	}
	baseVals := make([]float64, m)
	for d, s := range se.Base {
		baseVals[d] = s.NLL
	}
	names := make([]string, m)
	for i, d := range ds.Dims {
		names[i] = d.Name
	}
	se.Dimensions = names
	ref := worst(vals, baseVals, false)
	if se.NLL, err = lambda.NewReport(se.front(vals, false), ref); err != nil {
		return nil, err
	}
	se.BaseHypervolume, err = lambda.Hypervolume([][]float64{baseVals}, ref, se.NLL.Maximize)
	return se, err
}

// scoreChunks runs sftLogps over ex in chunks, reporting progress.
func scoreChunks(sc *scorer, ex []datasets.SFTExample, lam []float32,
	eo EvalOptions) ([]float64, []int, error) {
	var logp []float64
	var tokens []int
	chunk := max(sc.batch*16, 1)
	for lo := 0; lo < len(ex); lo += chunk {
		hi := min(lo+chunk, len(ex))
		lp, tk, err := sc.sftLogps(ex[lo:hi], lam[lo*sc.m:hi*sc.m])
		if err != nil {
			return nil, nil, err
		}
		logp, tokens = append(logp, lp...), append(tokens, tk...)
		if eo.Progress != nil {
			eo.Progress(hi, len(ex))
		}
	}
	return logp, tokens, nil
}
