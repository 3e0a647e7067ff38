package trainer

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"

	onnx "github.com/yalue/onnxruntime_go"

	"github.com/panacea-go/toolkit/graphs/onnxpb"
	"github.com/panacea-go/toolkit/ort"
)

// decoder generates from a batch of prompts at once: prompts are left-padded so that every
// row continues from the last column, and with a KV cache each step feeds one token per row.
// Extra inputs (λ per row, adapter parameters fed as inputs) are passed through unchanged.
type decoder struct {
	gs       *graphSession
	withPast bool
	layers   int
	kvHeads  int64
	headDim  int64
	vocab    int
	extra    []string // names of graph inputs other than tokens and past
}

// openDecoder opens a generation session over model (external data in dir), whose outputs
// are logits and, with a KV cache, present.N.key/value.
func openDecoder(model *onnxpb.ModelProto, dir string, shape LMShape, o ort.Options) (*decoder, error) {
	d := &decoder{layers: shape.NumLayers, kvHeads: int64(shape.NumKVHeads),
		headDim: int64(shape.HeadDim), vocab: shape.VocabSize}
	for _, in := range model.GetGraph().GetInput() {
		switch name := in.GetName(); {
		case name == "input_ids" || name == "attention_mask":
		case strings.HasPrefix(name, "past_key_values."):
			d.withPast = true
		default:
			d.extra = append(d.extra, name)
		}
	}
	outputs := []string{"logits"}
	if d.withPast {
		for i := range d.layers {
			outputs = append(outputs, fmt.Sprintf("present.%d.key", i), fmt.Sprintf("present.%d.value", i))
		}
	}
	// Keep only the outputs generation reads (a hidden_states output would cost a copy).
	var keep []*onnxpb.ValueInfoProto
	for _, o := range model.GetGraph().GetOutput() {
		if slices.Contains(outputs, o.GetName()) {
			keep = append(keep, o)
		}
	}
	model.GetGraph().Output = keep
	var err error
	if d.gs, err = openGraph(model, dir, outputs, o); err != nil {
		return nil, err
	}
	return d, nil
}

func (d *decoder) close() error { return d.gs.close() }

// genRequest is a batch of prompts to continue.
type genRequest struct {
	prompts  [][]int
	maxNew   int
	eos      []int
	padID    int
	sampling Sampling
	rng      *rand.Rand
	// extra holds the values of the decoder's extra inputs; λ must have one row per prompt.
	extra map[string]onnx.Value
	// ctx, when set, stops generation early (the tokens so far are returned with its error).
	ctx context.Context
	// onToken, when set, is called with each row's new token as soon as it is chosen.
	onToken func(row, id int)
}

// generate returns each row's new tokens (ending with an EOS id when one was drawn).
func (d *decoder) generate(req genRequest) ([][]int, error) {
	rows := len(req.prompts)
	width := 0
	for _, p := range req.prompts {
		if len(p) == 0 {
			return nil, fmt.Errorf("trainer: generate: empty prompt")
		}
		width = max(width, len(p))
	}
	// Left-padded token matrix and mask, grown by one column per step.
	ids := make([][]int64, rows)
	mask := make([][]int64, rows)
	for r, p := range req.prompts {
		pad := width - len(p)
		ids[r] = make([]int64, width)
		mask[r] = make([]int64, width)
		for c := range width {
			if c < pad {
				ids[r][c] = int64(req.padID)
			} else {
				ids[r][c] = int64(p[c-pad])
				mask[r][c] = 1
			}
		}
	}
	out := make([][]int, rows)
	done := make([]bool, rows)
	var past []onnx.Value
	defer func() { ort.DestroyAll(past...) }()
	fed := 0 // columns already in the cache
	for step := 0; step < req.maxNew; step++ {
		if req.ctx != nil && req.ctx.Err() != nil {
			return out, req.ctx.Err()
		}
		cols := len(ids[0])
		from := 0
		if d.withPast {
			from = fed
		}
		logits, present, err := d.run(ids, mask, from, past, req.extra)
		if err != nil {
			return nil, err
		}
		if d.withPast {
			ort.DestroyAll(past...)
			past, fed = present, cols
		}
		n := cols - from
		finished := true
		for r := range rows {
			next := req.padID
			if !done[r] {
				row := logits[(r*n+n-1)*d.vocab : (r*n+n)*d.vocab]
				next = pick(row, req.sampling, req.rng)
				out[r] = append(out[r], next)
				done[r] = slices.Contains(req.eos, next)
				if req.onToken != nil {
					req.onToken(r, next)
				}
			}
			finished = finished && done[r]
			ids[r] = append(ids[r], int64(next))
			mask[r] = append(mask[r], 1)
		}
		if finished {
			break
		}
	}
	return out, nil
}

// run feeds columns [from, end) of the token matrix (the mask always whole) and returns the
// logits of those columns, flattened (rows, n, vocab), and the present key/values.
func (d *decoder) run(ids, mask [][]int64, from int, past []onnx.Value,
	extra map[string]onnx.Value) ([]float32, []onnx.Value, error) {
	rows, cols := int64(len(ids)), int64(len(ids[0]))
	n := cols - int64(from)
	flatIDs := make([]int64, 0, rows*n)
	flatMask := make([]int64, 0, rows*cols)
	for r := range ids {
		flatIDs = append(flatIDs, ids[r][from:]...)
		flatMask = append(flatMask, mask[r]...)
	}
	idT, err := tensor(flatIDs, rows, n)
	if err != nil {
		return nil, nil, err
	}
	defer idT.Destroy()
	maskT, err := tensor(flatMask, rows, cols)
	if err != nil {
		return nil, nil, err
	}
	defer maskT.Destroy()
	in := map[string]onnx.Value{"input_ids": idT, "attention_mask": maskT}
	for k, v := range extra {
		in[k] = v
	}
	if d.withPast && past != nil {
		for i := range d.layers {
			in[fmt.Sprintf("past_key_values.%d.key", i)] = past[2*i]
			in[fmt.Sprintf("past_key_values.%d.value", i)] = past[2*i+1]
		}
	}
	logits, err := onnx.NewEmptyTensor[float32](onnx.NewShape(rows, n, int64(d.vocab)))
	if err != nil {
		return nil, nil, err
	}
	defer logits.Destroy()
	out := map[string]onnx.Value{"logits": logits}
	if err := d.gs.run(rows, in, out); err != nil {
		return nil, nil, err
	}
	var present []onnx.Value
	if d.withPast {
		for i := range d.layers {
			present = append(present, out[fmt.Sprintf("present.%d.key", i)],
				out[fmt.Sprintf("present.%d.value", i)])
		}
	}
	return slices.Clone(logits.GetData()), present, nil
}
