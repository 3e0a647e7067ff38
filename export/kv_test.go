package export

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/panacea-go/toolkit/internal/testutil"
)

// columns returns the columns [from, to) of every row.
func columns(rows [][]int64, from, to int) [][]int64 {
	out := make([][]int64, len(rows))
	for i, r := range rows {
		out[i] = r[from:to]
	}
	return out
}

// positions returns logits (batch, seq, vocab) restricted to positions [from, to) as
// float64 (batch, to-from, vocab).
func positions(logits []float32, batch, seq, vocab, from, to int) []float64 {
	var out []float64
	for b := range batch {
		for _, v := range logits[(b*seq+from)*vocab : (b*seq+to)*vocab] {
			out = append(out, float64(v))
		}
	}
	return out
}

// TestKVCacheMatchesFullForward decodes each family's fixture step by step with the KV
// cache (a 3-token prompt, then one token at a time, on the fixture's batch whose second
// row is left-padded) and checks every step's logits against the full-sequence forward.
// mistral_sliding has a window of 3, so its cache holds keys the window must hide.
func TestKVCacheMatchesFullForward(t *testing.T) {
	for _, name := range []string{"llama_gqa_tied", "llama_rope_llama3", "mistral_sliding",
		"qwen2_bias", "gpt2"} {
		t.Run(name, func(t *testing.T) {
			dir := fixtureDir(t, name)
			ref := readReference(t, dir)
			l := exportAndOpen(t, dir, Options{WithPast: true})
			batch, seq, vocab := len(ref.InputIDs), len(ref.InputIDs[0]), l.m.VocabSize
			full, c := l.run(t, ref.InputIDs, ref.AttentionMask, nil)
			c.destroy()

			const prompt = 3
			worst := 0.0
			logits, cache := l.run(t, columns(ref.InputIDs, 0, prompt),
				columns(ref.AttentionMask, 0, prompt), nil)
			want := positions(full, batch, seq, vocab, 0, prompt)
			worst = math.Max(worst, compareLogits(t, "prompt", logits, want,
				columns(ref.CompareMask, 0, prompt), vocab, 1e-4))
			for p := prompt; p < seq; p++ {
				step, next := l.run(t, columns(ref.InputIDs, p, p+1),
					columns(ref.AttentionMask, 0, p+1), cache)
				cache.destroy()
				cache = next
				want := positions(full, batch, seq, vocab, p, p+1)
				worst = math.Max(worst, compareLogits(t, fmt.Sprintf("step %d", p), step, want,
					columns(ref.CompareMask, p, p+1), vocab, 1e-4))
			}
			cache.destroy()
			t.Logf("%s: max |Δ| cached vs full = %.3g", name, worst)
		})
	}
}

// storiesReference is the part of stories260k-hf/reference.json the test uses.
type storiesReference struct {
	Record struct {
		PromptIDs    []int64 `json:"prompt_ids"`
		GeneratedIDs []int64 `json:"generated_ids"`
		Top10        struct {
			IDs    []int     `json:"ids"`
			Logits []float64 `json:"logits"`
		} `json:"first_step_top10"`
	} `json:"record"`
}

// TestStories260kGreedy reproduces the README's greedy continuation of the real
// stories260K model: 64 new tokens after [1, 403, 407, 261, 378], with and without the
// KV cache, and the first step's top logit 17.7994 for id 432.
func TestStories260kGreedy(t *testing.T) {
	dir := testutil.SharedData(t, "stories260k-hf")
	data, err := os.ReadFile(filepath.Join(dir, "reference.json"))
	if err != nil {
		t.Fatal(err)
	}
	var ref storiesReference
	if err := json.Unmarshal(data, &ref); err != nil {
		t.Fatal(err)
	}
	rec := ref.Record
	if want := []int64{1, 403, 407, 261, 378}; !slices.Equal(rec.PromptIDs, want) {
		t.Fatalf("reference prompt %v, want %v", rec.PromptIDs, want)
	}
	if len(rec.GeneratedIDs) != 64 {
		t.Fatalf("reference has %d generated ids, want 64", len(rec.GeneratedIDs))
	}
	for _, o := range []Options{{WithPast: false}, {WithPast: true}, {WithPast: true, DType: "f16"}} {
		withPast := o.WithPast
		t.Run(fmt.Sprintf("past=%v/%s", o.WithPast, o.DType), func(t *testing.T) {
			l := exportAndOpen(t, dir, o)
			// f16 storage rounds the weights: same greedy path, logits within f16 error.
			tol := map[string]float64{"": 1e-3, "f16": 2e-2}[o.DType]
			vocab := l.m.VocabSize
			seq := slices.Clone(rec.PromptIDs)
			var cache kvCache
			defer func() { cache.destroy() }()
			for step := range 64 {
				ids := seq
				if withPast && step > 0 {
					ids = seq[len(seq)-1:]
				}
				mask := slices.Repeat([]int64{1}, len(seq))
				logits, next := l.run(t, [][]int64{ids}, [][]int64{mask}, cache)
				cache.destroy()
				cache = next
				id, top := argmaxLast(logits, 0, len(ids), vocab)
				if step == 0 {
					if id != 432 || math.Abs(float64(top)-17.7994) > tol {
						t.Errorf("first step: top id %d logit %.5f, want 432 and 17.7994", id, top)
					}
					last := logits[(len(ids)-1)*vocab:]
					worst := 0.0
					for i, tid := range rec.Top10.IDs {
						worst = math.Max(worst, math.Abs(float64(last[tid])-rec.Top10.Logits[i]))
					}
					t.Logf("first step: top-10 logits max |Δ| vs reference = %.3g", worst)
					if worst > tol {
						t.Errorf("first-step top-10 logits differ by up to %.3g", worst)
					}
				}
				seq = append(seq, int64(id))
			}
			got := seq[len(rec.PromptIDs):]
			if !slices.Equal(got, rec.GeneratedIDs) {
				t.Errorf("greedy ids\n got %v\nwant %v", got, rec.GeneratedIDs)
			}
		})
	}
}
