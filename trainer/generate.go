package trainer

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"

	onnx "github.com/yalue/onnxruntime_go"

	"github.com/panacea-go/toolkit/graphs"
	"github.com/panacea-go/toolkit/ort"
)

// ModelFile is the graph file name inside an export or run folder.
const ModelFile = "model.onnx"

// LambdaInput is the name of the preference-vector input of an adapted model.
const LambdaInput = "lambda"

// Sampling controls how the next token is chosen.
type Sampling struct {
	// Temperature 0 means greedy (argmax).
	Temperature float64
	// TopP keeps the smallest set of tokens whose probability reaches TopP (1 = all).
	TopP float64
	// Seed makes sampling repeatable.
	Seed uint64
}

// LM is an exported causal language model opened for generation: one session over
// model.onnx with the inputs it declares (with or without KV cache, with or without λ).
type LM struct {
	dec *decoder
	m   int // λ length, 0 without a λ input
}

// LMShape is what an LM needs to know about its graph beyond the names of its inputs.
type LMShape struct {
	NumLayers, NumKVHeads, HeadDim, VocabSize int
}

// OpenLM opens dir/model.onnx. The shape comes from the export manifest.
func OpenLM(dir string, shape LMShape, o ort.Options) (*LM, error) {
	if _, err := os.Stat(filepath.Join(dir, RewardFile)); err == nil {
		return nil, fmt.Errorf("trainer: %s is a reward model (input ids → one score per row, "+
			"see its %s), not a language model: generate with its base model or a training run",
			dir, RewardFile)
	}
	model, err := graphs.Load(filepath.Join(dir, ModelFile))
	if err != nil {
		return nil, err
	}
	lm := &LM{}
	for _, in := range model.GetGraph().GetInput() {
		if dims := in.GetType().GetTensorType().GetShape().GetDim(); in.GetName() == LambdaInput &&
			len(dims) == 2 {
			lm.m = int(dims[1].GetDimValue())
		}
	}
	if lm.dec, err = openDecoder(model, dir, shape, o); err != nil {
		return nil, err
	}
	return lm, nil
}

// WithPast reports whether the model has a KV cache.
func (lm *LM) WithPast() bool { return lm.dec.withPast }

// LambdaDims is the length of the model's λ input, or 0 when it has none.
func (lm *LM) LambdaDims() int { return lm.m }

// Close releases the session.
func (lm *LM) Close() error { return lm.dec.close() }

// GenerateRequest is one prompt to continue.
type GenerateRequest struct {
	Prompt       []int
	MaxNewTokens int
	EOS          []int
	Lambda       []float32 // required when the model has a λ input
	Sampling     Sampling
	// OnToken is called with each new token id as soon as it is chosen; may be nil.
	OnToken func(id int)
}

// Generate continues one prompt and returns the new token ids (EOS included when reached).
func (lm *LM) Generate(ctx context.Context, req GenerateRequest) ([]int, error) {
	if len(req.Prompt) == 0 {
		return nil, errors.New("generate: empty prompt")
	}
	if len(req.Lambda) != lm.m {
		return nil, fmt.Errorf("generate: the model takes a λ of length %d, got %d", lm.m,
			len(req.Lambda))
	}
	g := genRequest{prompts: [][]int{req.Prompt}, maxNew: req.MaxNewTokens, eos: req.EOS,
		sampling: req.Sampling, ctx: ctx,
		rng: rand.New(rand.NewPCG(req.Sampling.Seed, 0x9e3779b97f4a7c15))}
	if req.OnToken != nil {
		g.onToken = func(_, id int) { req.OnToken(id) }
	}
	if lm.m > 0 {
		t, err := tensor(req.Lambda, 1, int64(lm.m))
		if err != nil {
			return nil, err
		}
		defer t.Destroy()
		g.extra = map[string]onnx.Value{LambdaInput: t}
	}
	out, err := lm.dec.generate(g)
	if len(out) == 0 {
		return nil, err
	}
	return out[0], err
}

// pick chooses the next token: argmax when Temperature is 0, else a draw from the
// temperature-scaled softmax restricted to the top-p nucleus. With top-p 1 the draw walks
// the vocabulary in id order; below 1 the nucleus (the most probable tokens, ties by lower
// id, until their mass reaches top-p) is taken from a heap, so that only the nucleus is
// ordered, never the whole vocabulary (a full sort cost 18.7 ms a token at 49,152 ids).
func pick(logits []float32, s Sampling, rng *rand.Rand) int {
	if s.Temperature <= 0 {
		best := 0
		for i, v := range logits {
			if v > logits[best] {
				best = i
			}
		}
		return best
	}
	probs, sum := softmaxT(logits, s.Temperature)
	topP := s.TopP
	if topP <= 0 || topP >= 1 {
		r := rng.Float64() * sum
		for i, p := range probs {
			r -= p
			if r <= 0 {
				return i
			}
		}
		return len(probs) - 1 // rounding left r > 0
	}
	// Keep the smallest prefix whose mass reaches topP (always at least one token).
	h := &probHeap{probs: probs, ids: make([]int, len(probs))}
	for i := range h.ids {
		h.ids[i] = i
	}
	heap.Init(h)
	var nucleus []int
	var kept float64
	for h.Len() > 0 {
		id := heap.Pop(h).(int)
		nucleus = append(nucleus, id)
		kept += probs[id] / sum
		if kept >= topP {
			break
		}
	}
	r := rng.Float64() * kept * sum
	for _, id := range nucleus {
		r -= probs[id]
		if r <= 0 {
			return id
		}
	}
	return nucleus[len(nucleus)-1]
}

// softmaxT returns the unnormalised softmax of logits / T, exp((l − max)/T), computed
// stably, and its sum.
func softmaxT(logits []float32, T float64) ([]float64, float64) {
	maxL := float64(slices.Max(logits))
	probs := make([]float64, len(logits))
	var sum float64
	for i, v := range logits {
		probs[i] = math.Exp((float64(v) - maxL) / T)
		sum += probs[i]
	}
	return probs, sum
}

// probHeap is a max-heap of token ids by probability, ties by lower id.
type probHeap struct {
	probs []float64
	ids   []int
}

func (h *probHeap) Len() int { return len(h.ids) }
func (h *probHeap) Less(a, b int) bool {
	pa, pb := h.probs[h.ids[a]], h.probs[h.ids[b]]
	return pa > pb || (pa == pb && h.ids[a] < h.ids[b])
}
func (h *probHeap) Swap(a, b int) { h.ids[a], h.ids[b] = h.ids[b], h.ids[a] }
func (h *probHeap) Push(x any)    { h.ids = append(h.ids, x.(int)) }
func (h *probHeap) Pop() any {
	id := h.ids[len(h.ids)-1]
	h.ids = h.ids[:len(h.ids)-1]
	return id
}
