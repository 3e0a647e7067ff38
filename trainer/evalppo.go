package trainer

import (
	"fmt"
	"math/rand/v2"
	"path/filepath"

	onnx "github.com/yalue/onnxruntime_go"

	"github.com/panacea-go/toolkit/datasets"
	"github.com/panacea-go/toolkit/datasets/tokenizer"
	"github.com/panacea-go/toolkit/export"
	"github.com/panacea-go/toolkit/graphs"
	"github.com/panacea-go/toolkit/lambda"
	"github.com/panacea-go/toolkit/ort"
)

// evalPPOSplit generates greedy responses to the split's prompts under every λ of the grid
// (rows of one batch carry different λ) and under the base model, scores them with each
// dimension's reward model, and builds the front of mean rewards (maximised).
func evalPPOSplit(runDir string, cfg *Config, split string, grid [][]float64, eo EvalOptions,
	o ort.Options) (*SplitEval, error) {
	m := len(cfg.Data.Dimensions)
	tok, err := tokenizer.LoadDir(runDir)
	if err != nil {
		return nil, err
	}
	ds, err := datasets.Load(&cfg.Data, tok)
	if err != nil {
		return nil, err
	}
	prompts := uniquePrompts(ds, split == "eval")
	limit := eo.Prompts
	if limit <= 0 {
		limit = 16
	}
	prompts = prompts[:min(limit, len(prompts))]
	if len(prompts) == 0 {
		return nil, nil
	}
	man, err := export.ReadManifest(runDir)
	if err != nil {
		return nil, err
	}
	var rms []*RewardModel
	defer func() {
		for _, rm := range rms {
			rm.Close()
		}
	}()
	for _, dir := range cfg.PPO.RewardModels {
		rm, err := OpenRewardModel(dir, o)
		if err != nil {
			return nil, err
		}
		rms = append(rms, rm)
	}
	score := func(rowsP, resp [][]int) ([][]float64, error) { // [row][dim]
		sb := sequenceBatch(rowsP, resp)
		out := make([][]float64, sb.rows)
		for i := range out {
			out[i] = make([]float64, m)
		}
		for d, rm := range rms {
			sc, err := rm.ScoreTokens(sb.ids, sb.mask, sb.rows, sb.seq)
			if err != nil {
				return nil, err
			}
			for i, v := range sc {
				out[i][d] = float64(v)
			}
		}
		return out, nil
	}

	// The trained model under every λ.
	rowsP, lam := everyLambda(grid, prompts)
	resp, err := generateChunks(runDir, man, rowsP, lam, m, cfg.PPO.MaxNewTokens, eo, o)
	if err != nil {
		return nil, err
	}
	scores, err := score(rowsP, resp)
	if err != nil {
		return nil, err
	}
	se := &SplitEval{Lambdas: grid}
	mean := func(rows [][]float64) []DimScore {
		row := make([]DimScore, m)
		for _, r := range rows {
			for d := range m {
				row[d].Reward += r[d] / float64(len(rows))
				row[d].Pairs++
			}
		}
		return row
	}
	n := len(prompts)
	for g := range grid {
		se.Scores = append(se.Scores, mean(scores[g*n:(g+1)*n]))
	}
	baseResp, err := generateChunks(cfg.Model, man, prompts, nil, 0, cfg.PPO.MaxNewTokens, eo, o)
	if err != nil {
		return nil, err
	}
	baseScores, err := score(prompts, baseResp)
	if err != nil {
		return nil, err
	}
	se.Base = mean(baseScores)

	vals := make([][]float64, len(grid))
	for g, row := range se.Scores {
		for _, s := range row {
			vals[g] = append(vals[g], s.Reward)
		}
	}
	baseVals := make([]float64, m)
	for d, s := range se.Base {
		baseVals[d] = s.Reward
	}
	se.Dimensions = cfg.DimNames()
	ref := worst(vals, baseVals, true)
	if se.Reward, err = lambda.NewReport(se.front(vals, true), ref); err != nil {
		return nil, err
	}
	se.BaseHypervolume, err = lambda.Hypervolume([][]float64{baseVals}, ref, nil)
	return se, err
}

// everyLambda pairs every prompt with every λ (all prompts under the first λ, then the
// next): the rows and their λ, row-major (rows, m).
func everyLambda(lambdas [][]float64, prompts [][]int) ([][]int, []float32) {
	var rows [][]int
	var lam []float32
	for _, l := range lambdas {
		for _, p := range prompts {
			rows = append(rows, p)
			for _, v := range l {
				lam = append(lam, float32(v))
			}
		}
	}
	return rows, lam
}

// generateChunks greedily continues rows with the model in dir (with per-row λ when m > 0),
// in batches of at most 32 rows.
func generateChunks(dir string, man *export.Manifest, rows [][]int, lam []float32, m int,
	maxNew int, eo EvalOptions, o ort.Options) ([][]int, error) {
	model, err := graphs.Load(filepath.Join(dir, ModelFile))
	if err != nil {
		return nil, err
	}
	dec, err := openDecoder(model, dir, LMShape{NumLayers: man.NumLayers,
		NumKVHeads: man.NumKVHeads, HeadDim: man.HeadDim, VocabSize: man.VocabSize}, o)
	if err != nil {
		return nil, err
	}
	defer dec.close()
	var out [][]int
	const chunk = 32
	for lo := 0; lo < len(rows); lo += chunk {
		hi := min(lo+chunk, len(rows))
		req := genRequest{prompts: rows[lo:hi], maxNew: maxNew, eos: man.EOSTokenIDs,
			rng: rand.New(rand.NewPCG(1, 1))}
		var lamT *onnx.Tensor[float32]
		if m > 0 {
			if lamT, err = tensor(lam[lo*m:hi*m], int64(hi-lo), int64(m)); err != nil {
				return nil, err
			}
			req.extra = map[string]onnx.Value{LambdaInput: lamT}
		}
		resp, err := dec.generate(req)
		if lamT != nil {
			lamT.Destroy()
		}
		if err != nil {
			return nil, fmt.Errorf("eval: generate: %w", err)
		}
		out = append(out, resp...)
		if eo.Progress != nil {
			eo.Progress(hi, len(rows))
		}
	}
	return out, nil
}
