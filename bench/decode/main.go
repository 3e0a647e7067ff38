// Command decode times greedy decoding with trainer.OpenLM + LM.Generate on the random
// SmolLM-135M-shaped model that `dpostep prepare -past` exports, without a KV cache
// (DIR/onnx: every step runs the whole sequence) and with one (DIR/onnx-past: every step
// runs the new token against the cached keys and values).
//
//	decode -dir /tmp/panacea-bench [-prompt 16] [-new 64] [-threads 2] [-reps 3]
//
// Per model: one short warm-up generation, then -reps generations of -new tokens after a
// -prompt-token prompt (no end-of-sequence stop). Prints the median total time, the prefill
// time (prompt → first token), the per-token decode time after it and tokens/s, whether both
// models chose the same tokens, and a final "RESULT " line.
package main

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/panacea-go/toolkit/bench/internal/benchutil"
	"github.com/panacea-go/toolkit/export"
	"github.com/panacea-go/toolkit/ort"
	"github.com/panacea-go/toolkit/trainer"
)

type result struct {
	total, first, perTok float64 // medians: seconds for all tokens, first token, each later one
	tokens               []int
}

func main() {
	dir := flag.String("dir", "/tmp/panacea-bench", "work folder written by dpostep prepare -past")
	promptLen := flag.Int("prompt", 16, "prompt tokens (random ids)")
	newTok := flag.Int("new", 64, "new tokens per generation")
	threads := flag.Int("threads", 2, "ONNX Runtime intra-op threads")
	reps := flag.Int("reps", 3, "timed generations per model")
	profile := flag.String("profile", "", "ONNX Runtime profile file prefix")
	flag.Parse()
	if err := ort.Init(ort.ResolveLib("")); err != nil {
		fail(err)
	}
	rng := rand.New(rand.NewPCG(5, 9))
	prompt := make([]int, *promptLen)
	for i := range prompt {
		prompt[i] = 3 + rng.IntN(49152-3)
	}
	res := map[string]result{}
	for _, name := range []string{"onnx", "onnx-past"} {
		r, err := bench(filepath.Join(*dir, name), prompt, *newTok, *reps,
			ort.Options{Threads: *threads, ProfilePrefix: *profile})
		if err != nil {
			fail(err)
		}
		res[name] = r
		fmt.Printf("%-10s total %.3fs (%.1f tokens/s); first token %.3fs; then %.1f ms/token "+
			"(%.1f tokens/s)\n", name, r.total, float64(*newTok)/r.total, r.first, 1e3*r.perTok,
			1/r.perTok)
	}
	a, b := res["onnx"], res["onnx-past"]
	same := 0
	for i := range min(len(a.tokens), len(b.tokens)) {
		if a.tokens[i] != b.tokens[i] {
			break
		}
		same++
	}
	fmt.Printf("same greedy tokens with and without cache: first %d of %d\n", same, len(a.tokens))
	fmt.Printf("prompt ids: %s\n", joinInts(prompt))
	fmt.Printf("greedy ids (cache): %s\n", joinInts(b.tokens))
	fmt.Printf("RESULT prompt=%d new=%d threads=%d nocache_s=%.4f cache_s=%.4f "+
		"nocache_tok_s=%.2f cache_tok_s=%.2f speedup=%.2f nocache_ms_per_tok=%.1f "+
		"cache_ms_per_tok=%.1f decode_speedup=%.2f nocache_first_s=%.4f cache_first_s=%.4f "+
		"same_tokens=%d\n", *promptLen, *newTok, *threads, a.total, b.total,
		float64(*newTok)/a.total, float64(*newTok)/b.total, a.total/b.total, 1e3*a.perTok,
		1e3*b.perTok, a.perTok/b.perTok, a.first, b.first, same)
}

func bench(dir string, prompt []int, n, reps int, o ort.Options) (result, error) {
	man, err := export.ReadManifest(dir)
	if err != nil {
		return result{}, err
	}
	lm, err := trainer.OpenLM(dir, trainer.LMShape{NumLayers: man.NumLayers,
		NumKVHeads: man.NumKVHeads, HeadDim: man.HeadDim, VocabSize: man.VocabSize}, o)
	if err != nil {
		return result{}, err
	}
	defer lm.Close()
	if lm.WithPast() != man.WithPast {
		return result{}, fmt.Errorf("%s: manifest with_past %v, graph %v", dir, man.WithPast,
			lm.WithPast())
	}
	ctx := context.Background()
	if _, err := lm.Generate(ctx, trainer.GenerateRequest{Prompt: prompt, MaxNewTokens: 4}); err != nil {
		return result{}, err
	}
	var totals, firsts, pers []float64
	var toks []int
	for range reps {
		var stamps []time.Time
		start := time.Now()
		out, err := lm.Generate(ctx, trainer.GenerateRequest{Prompt: prompt, MaxNewTokens: n,
			OnToken: func(int) { stamps = append(stamps, time.Now()) }})
		if err != nil {
			return result{}, err
		}
		total := time.Since(start).Seconds()
		totals = append(totals, total)
		firsts = append(firsts, stamps[0].Sub(start).Seconds())
		pers = append(pers, stamps[len(stamps)-1].Sub(stamps[0]).Seconds()/float64(len(stamps)-1))
		toks = out
		fmt.Fprintf(os.Stderr, "%s: %.3fs\n", filepath.Base(dir), total)
	}
	return result{total: benchutil.Median(totals), first: benchutil.Median(firsts),
		perTok: benchutil.Median(pers), tokens: toks}, nil
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "decode:", strings.TrimSpace(err.Error()))
	os.Exit(1)
}

// joinInts writes ids comma-separated (the form bench/dpo_step_torch.py --greedy reads).
func joinInts(ids []int) string {
	parts := make([]string, len(ids))
	for i, id := range ids {
		parts[i] = fmt.Sprint(id)
	}
	return strings.Join(parts, ",")
}
