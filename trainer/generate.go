package trainer

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"sort"

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
	sess      *ort.Session
	withPast  bool
	hasLambda bool
	layers    int
	kvHeads   int
	headDim   int
	vocab     int
	m         int // λ length, when hasLambda
}

// LMShape is what an LM needs to know about its graph beyond the names of its inputs.
type LMShape struct {
	NumLayers, NumKVHeads, HeadDim, VocabSize int
}

// OpenLM opens dir/model.onnx. The shape comes from the export manifest.
func OpenLM(dir string, shape LMShape, o ort.Options) (*LM, error) {
	path := filepath.Join(dir, ModelFile)
	model, err := graphs.Load(path)
	if err != nil {
		return nil, err
	}
	lm := &LM{layers: shape.NumLayers, kvHeads: shape.NumKVHeads, headDim: shape.HeadDim,
		vocab: shape.VocabSize}
	var inputs []string
	for _, in := range model.GetGraph().GetInput() {
		inputs = append(inputs, in.GetName())
		switch in.GetName() {
		case "past_key_values.0.key":
			lm.withPast = true
		case LambdaInput:
			lm.hasLambda = true
			dims := in.GetType().GetTensorType().GetShape().GetDim()
			if len(dims) == 2 {
				lm.m = int(dims[1].GetDimValue())
			}
		}
	}
	outputs := []string{"logits"}
	if lm.withPast {
		inputs = lm.pastNames("past_key_values")
		inputs = append([]string{"input_ids", "attention_mask"}, inputs...)
		outputs = append(outputs, lm.pastNames("present")...)
	} else {
		inputs = []string{"input_ids", "attention_mask"}
	}
	if lm.hasLambda {
		inputs = append(inputs, LambdaInput)
	}
	lm.sess, err = ort.NewSession(path, nil, inputs, outputs, o)
	if err != nil {
		return nil, err
	}
	return lm, nil
}

func (lm *LM) pastNames(prefix string) []string {
	var names []string
	for i := range lm.layers {
		names = append(names, fmt.Sprintf("%s.%d.key", prefix, i), fmt.Sprintf("%s.%d.value", prefix, i))
	}
	return names
}

// WithPast reports whether the model has a KV cache.
func (lm *LM) WithPast() bool { return lm.withPast }

// LambdaDims is the length of the model's λ input, or 0 when it has none.
func (lm *LM) LambdaDims() int {
	if !lm.hasLambda {
		return 0
	}
	return lm.m
}

// Close releases the session.
func (lm *LM) Close() error { return lm.sess.Close() }

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
	if lm.hasLambda && len(req.Lambda) != lm.m {
		return nil, fmt.Errorf("generate: the model takes a λ of length %d, got %d", lm.m,
			len(req.Lambda))
	}
	rng := rand.New(rand.NewPCG(req.Sampling.Seed, 0x9e3779b97f4a7c15))
	step := lm.fullStep
	if lm.withPast {
		step = lm.cachedStep
	}
	var st decodeState
	defer st.release()
	ids := slices.Clone(req.Prompt)
	var out []int
	for len(out) < req.MaxNewTokens {
		if err := ctx.Err(); err != nil {
			return out, err
		}
		logits, err := step(&st, ids, req.Lambda)
		if err != nil {
			return out, err
		}
		next := pick(logits, req.Sampling, rng)
		out = append(out, next)
		ids = append(ids, next)
		if req.OnToken != nil {
			req.OnToken(next)
		}
		if slices.Contains(req.EOS, next) {
			break
		}
	}
	return out, nil
}

// decodeState carries the KV cache between cached steps.
type decodeState struct {
	past []onnx.Value // per layer key, value; nil before the first step
	seen int          // tokens already in the cache
}

func (st *decodeState) release() { ort.DestroyAll(st.past...) }

// fullStep runs the whole sequence and returns the last position's logits.
func (lm *LM) fullStep(_ *decodeState, ids []int, lambda []float32) ([]float32, error) {
	n := len(ids)
	in, err := lm.tokenInputs(ids, n, lambda)
	if err != nil {
		return nil, err
	}
	defer ort.DestroyAll(in...)
	logits, err := onnx.NewEmptyTensor[float32](onnx.NewShape(1, int64(n), int64(lm.vocab)))
	if err != nil {
		return nil, fmt.Errorf("generate: %w", err)
	}
	defer logits.Destroy()
	if err := lm.sess.Run(in, []onnx.Value{logits}); err != nil {
		return nil, err
	}
	return slices.Clone(logits.GetData()[(n-1)*lm.vocab:]), nil
}

// cachedStep feeds the tokens not yet in the cache and keeps the present key/values.
func (lm *LM) cachedStep(st *decodeState, ids []int, lambda []float32) ([]float32, error) {
	if st.past == nil {
		for range 2 * lm.layers {
			t, err := onnx.NewEmptyTensor[float32](
				onnx.NewShape(1, int64(lm.kvHeads), 0, int64(lm.headDim)))
			if err != nil {
				return nil, fmt.Errorf("generate: %w", err)
			}
			st.past = append(st.past, t)
		}
	}
	newIDs := ids[st.seen:]
	n := len(newIDs)
	in, err := lm.tokenInputs(newIDs, len(ids), nil)
	if err != nil {
		return nil, err
	}
	defer ort.DestroyAll(in...)
	inputs := append(slices.Clone(in), st.past...)
	if lm.hasLambda {
		l, err := onnx.NewTensor(onnx.NewShape(1, int64(lm.m)), lambda)
		if err != nil {
			return nil, fmt.Errorf("generate: %w", err)
		}
		defer l.Destroy()
		inputs = append(inputs, l)
	}
	outputs := make([]onnx.Value, 1+2*lm.layers)
	logits, err := onnx.NewEmptyTensor[float32](onnx.NewShape(1, int64(n), int64(lm.vocab)))
	if err != nil {
		return nil, fmt.Errorf("generate: %w", err)
	}
	defer logits.Destroy()
	outputs[0] = logits
	if err := lm.sess.Run(inputs, outputs); err != nil {
		ort.DestroyAll(outputs[1:]...)
		return nil, err
	}
	ort.DestroyAll(st.past...)
	st.past = outputs[1:]
	st.seen = len(ids)
	return slices.Clone(logits.GetData()[(n-1)*lm.vocab:]), nil
}

// tokenInputs makes input_ids (1, len(ids)) and attention_mask (1, total), plus λ (1, m) when
// lambda is given.
func (lm *LM) tokenInputs(ids []int, total int, lambda []float32) ([]onnx.Value, error) {
	ids64 := make([]int64, len(ids))
	for i, id := range ids {
		ids64[i] = int64(id)
	}
	mask := make([]int64, total)
	for i := range mask {
		mask[i] = 1
	}
	idT, err := onnx.NewTensor(onnx.NewShape(1, int64(len(ids))), ids64)
	if err != nil {
		return nil, fmt.Errorf("generate: %w", err)
	}
	maskT, err := onnx.NewTensor(onnx.NewShape(1, int64(total)), mask)
	if err != nil {
		idT.Destroy()
		return nil, fmt.Errorf("generate: %w", err)
	}
	vals := []onnx.Value{idT, maskT}
	if lambda != nil && lm.hasLambda {
		l, err := onnx.NewTensor(onnx.NewShape(1, int64(lm.m)), lambda)
		if err != nil {
			ort.DestroyAll(vals...)
			return nil, fmt.Errorf("generate: %w", err)
		}
		vals = append(vals, l)
	}
	return vals, nil
}

// pick chooses the next token: argmax when Temperature is 0, else a draw from the
// temperature-scaled softmax restricted to the top-p nucleus.
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
	// Softmax of logits / T, computed stably.
	maxL := float64(slices.Max(logits))
	probs := make([]float64, len(logits))
	var sum float64
	for i, v := range logits {
		probs[i] = math.Exp((float64(v) - maxL) / s.Temperature)
		sum += probs[i]
	}
	order := make([]int, len(logits))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return probs[order[a]] > probs[order[b]] })
	topP := s.TopP
	if topP <= 0 || topP > 1 {
		topP = 1
	}
	// Keep the smallest prefix whose mass reaches topP (always at least one token).
	var kept float64
	n := 0
	for n < len(order) {
		kept += probs[order[n]] / sum
		n++
		if kept >= topP {
			break
		}
	}
	r := rng.Float64() * kept * sum
	for _, id := range order[:n] {
		r -= probs[id]
		if r <= 0 {
			return id
		}
	}
	return order[n-1]
}
