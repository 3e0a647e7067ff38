package trainer

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"

	onnx "github.com/yalue/onnxruntime_go"

	"github.com/panacea-go/toolkit/datasets"
	"github.com/panacea-go/toolkit/graphs"
	"github.com/panacea-go/toolkit/ort"
)

// scorer computes sequence log-probabilities of preference pairs with one graph: the base
// model (reference log-probs) or a λ-input model (evaluation).
type scorer struct {
	ctx       context.Context // cancels long scoring passes (nil: never)
	gs        *graphSession
	hasLambda bool
	m         int
	batch     int
	opt       datasets.BatchOptions
}

// openScorer opens dir's model.onnx with a seq_logp output.
func openScorer(dir string, batch int, o ort.Options) (*scorer, error) {
	model, err := graphs.Load(filepath.Join(dir, ModelFile))
	if err != nil {
		return nil, err
	}
	sc := &scorer{batch: max(batch, 1), opt: datasets.BatchOptions{Side: datasets.PadRight}}
	for _, in := range model.GetGraph().GetInput() {
		if in.GetName() == LambdaInput {
			sc.hasLambda = true
			sc.m = int(in.GetType().GetTensorType().GetShape().GetDim()[1].GetDimValue())
		}
	}
	if err := AddSeqLogp(model); err != nil {
		return nil, err
	}
	sc.gs, err = openGraph(model, dir, []string{OutSeqLogp}, o)
	if err != nil {
		return nil, err
	}
	return sc, nil
}

func (sc *scorer) close() error { return sc.gs.close() }

// pairLogps returns, for each example, (log π(chosen), log π(rejected)) under λ_i for
// example i (lambdas is (len(ex), m) row-major, or nil for a model without λ).
func (sc *scorer) pairLogps(ex []datasets.PreferenceExample, lambdas []float32) ([][2]float32, error) {
	out := make([][2]float32, len(ex))
	for lo := 0; lo < len(ex); lo += sc.batch {
		if sc.ctx != nil && sc.ctx.Err() != nil {
			return nil, ErrInterrupted
		}
		hi := min(lo+sc.batch, len(ex))
		b, err := datasets.PreferenceBatch(ex[lo:hi], sc.opt)
		if err != nil {
			return nil, err
		}
		sb, err := merge([]*datasets.Batch{b})
		if err != nil {
			return nil, err
		}
		var lam []float32
		if sc.hasLambda {
			pairs := lambdas[lo*sc.m : hi*sc.m]
			lam = append(append(lam, pairs...), pairs...) // chosen rows, then rejected rows
		}
		seq, err := sc.seqLogps(sb, lam)
		if err != nil {
			return nil, err
		}
		for i := range hi - lo {
			out[lo+i] = [2]float32{seq[i], seq[sb.pairs+i]}
		}
	}
	return out, nil
}

// seqLogps runs one batch and returns seq_logp per row.
func (sc *scorer) seqLogps(sb *stepBatch, lambda []float32) ([]float32, error) {
	in, free, err := tokenTensors(sb)
	if err != nil {
		return nil, err
	}
	defer free()
	if sc.hasLambda {
		t, err := tensor(lambda, int64(sb.rows), int64(sc.m))
		if err != nil {
			return nil, err
		}
		defer t.Destroy()
		in[LambdaInput] = t
	}
	res, err := onnx.NewEmptyTensor[float32](onnx.NewShape(int64(sb.rows)))
	if err != nil {
		return nil, err
	}
	defer res.Destroy()
	if err := sc.gs.run(int64(sb.rows), in, map[string]onnx.Value{OutSeqLogp: res}); err != nil {
		return nil, err
	}
	return append([]float32(nil), res.GetData()...), nil
}

// refCache maps example id to the reference (chosen, rejected) log-probs.
type refCache map[uint64][2]float32

// referenceLogps returns the base model's log-probs for every example (by example id),
// reading and extending a cache file keyed by the model's bytes and the data settings, so
// that a second run (or a resumed one) does not score the same pairs again. Entries in the
// file are keyed by each example's id and tokens (contentKey): a data file edited in
// place yields new entries, never another row's stale log-probs.
func referenceLogps(ctx context.Context, modelDir, cacheDir string, dataKey string,
	ex []datasets.PreferenceExample, batch int, o ort.Options) (refCache, error) {
	key, err := modelKey(modelDir)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256([]byte(key + "\x00" + dataKey))
	path := filepath.Join(cacheDir, "ref-logps-"+hex.EncodeToString(sum[:8])+".json")
	stored := map[string][2]float32{}
	if js, err := os.ReadFile(path); err == nil {
		if err := json.Unmarshal(js, &stored); err != nil {
			slog.Warn("reference log-prob cache unreadable; recomputing", "file", path, "err", err)
			stored = map[string][2]float32{}
		}
	}
	cache := refCache{}
	var todo []datasets.PreferenceExample
	for _, e := range ex {
		v, ok := stored[contentKey(e)]
		if ok && finitePair(v) {
			cache[e.ID] = v
			continue
		}
		todo = append(todo, e)
	}
	slog.Info("reference log-probs", "pairs", len(ex), "cached", len(ex)-len(todo), "file", path)
	if len(todo) == 0 {
		return cache, nil
	}
	sc, err := openScorer(modelDir, batch, o)
	if err != nil {
		return nil, err
	}
	defer sc.close()
	sc.ctx = ctx
	lp, err := sc.pairLogps(todo, nil)
	if err != nil {
		return nil, fmt.Errorf("trainer: reference log-probs: %w", err)
	}
	for i, e := range todo {
		cache[e.ID] = lp[i]
		stored[contentKey(e)] = lp[i]
	}
	js, err := json.Marshal(stored)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return nil, fmt.Errorf("trainer: reference cache: %w", err)
	}
	if err := graphs.WriteFileAtomic(path, js); err != nil {
		return nil, err
	}
	return cache, nil
}

// contentKey is a cache key of one example: its id and every token of its prompt and
// responses.
func contentKey(e datasets.PreferenceExample) string {
	h := sha256.New()
	var buf [8]byte
	put := func(v uint64) {
		binary.LittleEndian.PutUint64(buf[:], v)
		h.Write(buf[:])
	}
	put(e.ID)
	for _, part := range [][]int{e.Prompt, e.Chosen, e.Rejected} {
		put(uint64(len(part)))
		for _, id := range part {
			put(uint64(id))
		}
	}
	return hex.EncodeToString(h.Sum(nil)[:12])
}

// finitePair reports whether both log-probs are finite and not positive (a log-probability
// of a sequence is at most 0): anything else in the cache file is not trusted.
func finitePair(v [2]float32) bool {
	for _, x := range v {
		f := float64(x)
		if math.IsNaN(f) || math.IsInf(f, 0) || f > 0 {
			return false
		}
	}
	return true
}

// modelKey hashes an export's graph and weight files.
func modelKey(dir string) (string, error) {
	h := sha256.New()
	for _, name := range []string{ModelFile, ModelFile + ".data"} {
		f, err := os.Open(filepath.Join(dir, name))
		if errors.Is(err, os.ErrNotExist) && name != ModelFile {
			continue
		}
		if err != nil {
			return "", fmt.Errorf("trainer: %w", err)
		}
		n, err := io.Copy(h, f)
		f.Close()
		if err != nil {
			return "", fmt.Errorf("trainer: hash %s: %w", name, err)
		}
		binary.Write(h, binary.LittleEndian, n)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// jsonKey is the cache key of a data configuration: its JSON form.
func jsonKey(v any) (string, error) {
	js, err := json.Marshal(v)
	return string(js), err
}

// sftLogps returns, for each SFT example, the summed log-prob of its response tokens and
// their count, under λ_i for example i (lambdas (len(ex), m), or nil without λ).
func (sc *scorer) sftLogps(ex []datasets.SFTExample, lambdas []float32) ([]float64, []int, error) {
	logp, tokens := make([]float64, len(ex)), make([]int, len(ex))
	for lo := 0; lo < len(ex); lo += 2 * sc.batch {
		hi := min(lo+2*sc.batch, len(ex))
		b, err := datasets.SFTBatch(ex[lo:hi], sc.opt)
		if err != nil {
			return nil, nil, err
		}
		sb, err := merge([]*datasets.Batch{b})
		if err != nil {
			return nil, nil, err
		}
		var lam []float32
		if sc.hasLambda {
			lam = lambdas[lo*sc.m : hi*sc.m]
		}
		seq, err := sc.seqLogps(sb, lam)
		if err != nil {
			return nil, nil, err
		}
		for i := range hi - lo {
			logp[lo+i] = float64(seq[i])
			for _, v := range sb.lossMask[i*sb.seq : (i+1)*sb.seq] {
				tokens[lo+i] += int(v)
			}
		}
	}
	return logp, tokens, nil
}
