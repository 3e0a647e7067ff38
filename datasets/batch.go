package datasets

import (
	"errors"
	"fmt"
)

// PaddingSide says where padding goes in a batch row.
type PaddingSide string

// Padding sides.
const (
	// PadRight puts tokens first, then padding: for training.
	PadRight PaddingSide = "right"
	// PadLeft puts padding first, so every row ends at column T−1: for generation.
	PadLeft PaddingSide = "left"
)

// BatchOptions says how rows are padded.
type BatchOptions struct {
	PadID  int
	Side   PaddingSide
	Length int // pad every row to this length; 0 pads to the longest row
}

// BatchOptions returns the padding a config asks for (Length is MaxLen with pad_to_max_len).
func (c *DataConfig) BatchOptions() BatchOptions {
	o := BatchOptions{PadID: c.PadID, Side: PaddingSide(c.PaddingSide)}
	if c.PadToMaxLen {
		o.Length = c.MaxLen
	}
	return o
}

// Batch is B rows of T tokens as flat row-major int64 slices, ready to become ONNX tensors.
//
// Loss mask convention: LossMask[b·T+t] is 1 exactly when InputIDs[b·T+t] is a response
// token, i.e. a training target predicted by the logits at position t−1. The loss of a row is
// therefore Σ_{t≥1} LossMask[t] · −log p(InputIDs[t] | InputIDs[<t]) using logits[t−1]. The
// first real token of a row is never a target; padding and prompt tokens never are.
//
// Preference batches pack both sides of each pair so that one forward pass covers them:
// rows [0, Pairs) are the chosen sequences and rows [Pairs, 2·Pairs) the rejected ones, row
// i and row Pairs+i being the same pair (same prompt, dimension and example id).
//
// With left padding, position ids should be counted from each row's first attended token
// (the cumulative sum of AttentionMask, minus one).
type Batch struct {
	Kind  Kind
	Rows  int // B (2·Pairs for preference batches)
	Len   int // T
	Pairs int // preference batches: number of pairs; 0 otherwise

	InputIDs      []int64 // (B, T)
	AttentionMask []int64 // (B, T): 1 on tokens, 0 on padding
	LossMask      []int64 // (B, T): 1 on response tokens (targets), see above
	Dims          []int64 // (B): dimension index of each row
	ExampleIDs    []uint64
	PromptLens    []int // (B): prompt tokens in each row (after truncation)
}

// Row returns views of row i of the three (B, T) tensors.
func (b *Batch) Row(i int) (ids, attention, loss []int64) {
	lo, hi := i*b.Len, (i+1)*b.Len
	return b.InputIDs[lo:hi], b.AttentionMask[lo:hi], b.LossMask[lo:hi]
}

// seq is one batch row before padding.
type seq struct {
	prompt, response []int
	dim              int
	id               uint64
	source           string
	line             int
}

// TODO: sub-batches of several dimensions are separate batches; a helper to concatenate them
// into one forward pass (keeping the chosen-then-rejected layout) is not written yet.

// PreferenceBatch packs pairs as 2·len(ex) rows: every chosen sequence, then every rejected
// one in the same order.
func PreferenceBatch(ex []PreferenceExample, opt BatchOptions) (*Batch, error) {
	seqs := make([]seq, 0, 2*len(ex))
	for _, e := range ex {
		seqs = append(seqs, seq{e.Prompt, e.Chosen, e.Dim, e.ID, e.Source, e.Line})
	}
	for _, e := range ex {
		seqs = append(seqs, seq{e.Prompt, e.Rejected, e.Dim, e.ID, e.Source, e.Line})
	}
	b, err := build(seqs, opt)
	if err != nil {
		return nil, err
	}
	b.Kind, b.Pairs = KindPreference, len(ex)
	return b, nil
}

// SFTBatch packs prompt+response rows with the loss on the responses.
func SFTBatch(ex []SFTExample, opt BatchOptions) (*Batch, error) {
	seqs := make([]seq, len(ex))
	for i, e := range ex {
		seqs[i] = seq{e.Prompt, e.Response, e.Dim, e.ID, e.Source, e.Line}
	}
	b, err := build(seqs, opt)
	if err != nil {
		return nil, err
	}
	b.Kind = KindSFT
	return b, nil
}

// PromptBatch packs prompts alone (loss mask all zero), usually with left padding so that
// generation continues every row from column T−1.
func PromptBatch(ex []PromptExample, opt BatchOptions) (*Batch, error) {
	seqs := make([]seq, len(ex))
	for i, e := range ex {
		seqs[i] = seq{prompt: e.Prompt, dim: e.Dim, id: e.ID, source: e.Source, line: e.Line}
	}
	b, err := build(seqs, opt)
	if err != nil {
		return nil, err
	}
	b.Kind = KindPrompt
	return b, nil
}

// build pads sequences into a batch.
func build(seqs []seq, opt BatchOptions) (*Batch, error) {
	if len(seqs) == 0 {
		return nil, errors.New("datasets: batch: no examples")
	}
	if opt.Side != PadLeft && opt.Side != PadRight && opt.Side != "" {
		return nil, fmt.Errorf("datasets: batch: padding side %q is not left or right", opt.Side)
	}
	longest := 0
	for _, s := range seqs {
		longest = max(longest, len(s.prompt)+len(s.response))
	}
	T := longest
	if opt.Length > 0 {
		if longest > opt.Length {
			for _, s := range seqs {
				if n := len(s.prompt) + len(s.response); n > opt.Length {
					return nil, fmt.Errorf("datasets: batch: %s: %d tokens exceed the padded "+
						"length %d", position{file: s.source, line: s.line}, n, opt.Length)
				}
			}
		}
		T = opt.Length
	}
	B := len(seqs)
	b := &Batch{Rows: B, Len: T,
		InputIDs:      make([]int64, B*T),
		AttentionMask: make([]int64, B*T),
		LossMask:      make([]int64, B*T),
		Dims:          make([]int64, B),
		ExampleIDs:    make([]uint64, B),
		PromptLens:    make([]int, B),
	}
	for i, s := range seqs {
		ids, attn, loss := b.Row(i)
		n := len(s.prompt) + len(s.response)
		start := 0
		if opt.Side == PadLeft {
			start = T - n
		}
		for t := range ids {
			ids[t] = int64(opt.PadID)
		}
		for j, tok := range s.prompt {
			ids[start+j], attn[start+j] = int64(tok), 1
		}
		for j, tok := range s.response {
			t := start + len(s.prompt) + j
			ids[t], attn[t] = int64(tok), 1
			if t > start { // the first real token has nothing to be predicted from
				loss[t] = 1
			}
		}
		b.Dims[i], b.ExampleIDs[i], b.PromptLens[i] = int64(s.dim), s.id, len(s.prompt)
	}
	return b, nil
}
