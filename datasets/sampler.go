package datasets

import (
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"math/bits"
	"math/rand/v2"
)

// Sampler draws, at every step, one sub-batch per dimension from the training splits.
//
// Each dimension reads an endless stream made of shuffled passes over its examples: pass e
// is a permutation fixed by (seed, dimension name, e), computed with an explicit
// Fisher–Yates over PCG output, so it does not change with the Go release. Step s takes the
// next BatchSize examples of every stream, wrapping into the next pass when one runs out; a
// sub-batch is therefore always full, and may repeat an example only when a dimension has
// fewer examples than its batch size. A run lasts Epochs passes over the dimension that needs
// the most steps (the last step may reach into the next pass when Epochs·rows is not a
// multiple of the batch size); smaller dimensions cycle.
//
// The position is a [SamplerState]; a sampler resumed from a saved state returns exactly the
// batches the original would have returned next.
type Sampler struct {
	ds       *Dataset
	opt      BatchOptions
	seed     uint64
	perEpoch int
	total    int
	step     int
	dims     []dimStream
}

type dimStream struct {
	seed   uint64
	name   string
	n      int
	batch  int
	epoch  int
	cursor int
	perm   []int // permutation of pass epoch
}

// SamplerState is a sampler's position, small and JSON-serialisable.
type SamplerState struct {
	Seed uint64      `json:"seed"`
	Step int         `json:"step"` // steps already returned
	Dims []DimCursor `json:"dims"`
}

// DimCursor is one dimension's position: in pass Epoch, Cursor examples already taken. Name,
// Rows and BatchSize are recorded to refuse resuming on different data.
type DimCursor struct {
	Name      string `json:"name"`
	Rows      int    `json:"rows"`
	BatchSize int    `json:"batch_size"`
	Epoch     int    `json:"epoch"`
	Cursor    int    `json:"cursor"`
}

// Step is what one training step gets: one sub-batch per dimension, in dimension order.
type Step struct {
	Index   int
	Batches []*Batch
}

// NewSampler returns a sampler at the start of the first pass, using the dataset config's
// seed, epochs and padding.
func NewSampler(ds *Dataset) (*Sampler, error) {
	if len(ds.Dims) == 0 {
		return nil, errors.New("datasets: sampler: no dimensions")
	}
	s := &Sampler{ds: ds, opt: ds.Config.BatchOptions(), seed: ds.Config.Seed}
	epochs := max(ds.Config.Epochs, 1)
	for _, d := range ds.Dims {
		n := d.Train.Len()
		if n == 0 {
			return nil, fmt.Errorf("datasets: sampler: dimension %s has no training examples",
				d.Name)
		}
		s.perEpoch = max(s.perEpoch, (n+d.BatchSize-1)/d.BatchSize)
		s.total = max(s.total, (epochs*n+d.BatchSize-1)/d.BatchSize)
		st := dimStream{seed: s.seed, name: d.Name, n: n, batch: d.BatchSize}
		st.perm = permutation(s.seed, d.Name, 0, n)
		s.dims = append(s.dims, st)
	}
	return s, nil
}

// StepsPerEpoch is the number of steps one pass over the dimension needing the most takes,
// rounded up.
func (s *Sampler) StepsPerEpoch() int { return s.perEpoch }

// TotalSteps is the number of steps Next returns before io.EOF: enough for Epochs passes
// over the dimension needing the most, ⌈Epochs·rows/BatchSize⌉.
func (s *Sampler) TotalSteps() int { return s.total }

// Next returns the next step's sub-batches, or io.EOF after TotalSteps steps.
func (s *Sampler) Next() (*Step, error) {
	if s.step >= s.total {
		return nil, io.EOF
	}
	st := &Step{Index: s.step}
	for i := range s.dims {
		idx := s.dims[i].take()
		b, err := s.batch(s.ds.Dims[i], idx)
		if err != nil {
			return nil, err
		}
		st.Batches = append(st.Batches, b)
	}
	s.step++
	return st, nil
}

// take returns the next batch of example indices of the stream.
func (d *dimStream) take() []int {
	out := make([]int, 0, d.batch)
	for len(out) < d.batch {
		if d.cursor == d.n {
			d.epoch++
			d.cursor = 0
			d.perm = permutation(d.seed, d.name, d.epoch, d.n)
		}
		k := min(d.batch-len(out), d.n-d.cursor)
		out = append(out, d.perm[d.cursor:d.cursor+k]...)
		d.cursor += k
	}
	if d.cursor == d.n { // a finished pass reads as the start of the next one
		d.epoch++
		d.cursor = 0
		d.perm = permutation(d.seed, d.name, d.epoch, d.n)
	}
	return out
}

func (s *Sampler) batch(d *Dimension, idx []int) (*Batch, error) {
	ex := &d.Train
	switch ex.Kind {
	case KindSFT:
		sub := make([]SFTExample, len(idx))
		for i, j := range idx {
			sub[i] = ex.SFT[j]
		}
		return SFTBatch(sub, s.opt)
	case KindPrompt:
		sub := make([]PromptExample, len(idx))
		for i, j := range idx {
			sub[i] = ex.Prompts[j]
		}
		return PromptBatch(sub, s.opt)
	}
	sub := make([]PreferenceExample, len(idx))
	for i, j := range idx {
		sub[i] = ex.Pairs[j]
	}
	return PreferenceBatch(sub, s.opt)
}

// State returns the sampler's position.
func (s *Sampler) State() SamplerState {
	st := SamplerState{Seed: s.seed, Step: s.step}
	for _, d := range s.dims {
		st.Dims = append(st.Dims, DimCursor{Name: d.name, Rows: d.n, BatchSize: d.batch,
			Epoch: d.epoch, Cursor: d.cursor})
	}
	return st
}

// Resume moves the sampler to a saved position. It refuses a state recorded on other data:
// another seed, other dimensions, other row counts or batch sizes.
func (s *Sampler) Resume(st SamplerState) error {
	if st.Seed != s.seed {
		return fmt.Errorf("datasets: resume: state seed %d, config seed %d", st.Seed, s.seed)
	}
	if len(st.Dims) != len(s.dims) {
		return fmt.Errorf("datasets: resume: state has %d dimensions, config %d",
			len(st.Dims), len(s.dims))
	}
	if st.Step < 0 {
		return fmt.Errorf("datasets: resume: step %d is negative", st.Step)
	}
	for i, c := range st.Dims {
		d := s.dims[i]
		switch {
		case c.Name != d.name:
			return fmt.Errorf("datasets: resume: dims[%d].name: state %q, config %q", i,
				c.Name, d.name)
		case c.Rows != d.n:
			return fmt.Errorf("datasets: resume: dimension %s: state has %d rows, data %d "+
				"(the data changed)", d.name, c.Rows, d.n)
		case c.BatchSize != d.batch:
			return fmt.Errorf("datasets: resume: dimension %s: state batch_size %d, config %d",
				d.name, c.BatchSize, d.batch)
		case c.Epoch < 0 || c.Cursor < 0 || c.Cursor > d.n:
			return fmt.Errorf("datasets: resume: dimension %s: epoch %d cursor %d out of range",
				d.name, c.Epoch, c.Cursor)
		}
	}
	s.step = st.Step
	for i, c := range st.Dims {
		d := &s.dims[i]
		d.epoch, d.cursor = c.Epoch, c.Cursor
		d.perm = permutation(s.seed, d.name, d.epoch, d.n)
	}
	return nil
}

// permutation returns pass epoch's order of n examples of dimension name.
func permutation(seed uint64, name string, epoch, n int) []int {
	h := fnv.New64a()
	h.Write([]byte(name))
	src := rand.NewPCG(seed, mix64(h.Sum64()^uint64(epoch)))
	p := make([]int, n)
	for i := range p {
		p[i] = i
	}
	for i := n - 1; i > 0; i-- {
		j := int(bounded(src, uint64(i+1)))
		p[i], p[j] = p[j], p[i]
	}
	return p
}

// bounded returns a uniform number in [0, n) from src (Lemire's multiply-and-reject).
func bounded(src *rand.PCG, n uint64) uint64 {
	hi, lo := bits.Mul64(src.Uint64(), n)
	if lo < n {
		threshold := -n % n
		for lo < threshold {
			hi, lo = bits.Mul64(src.Uint64(), n)
		}
	}
	return hi
}

// EvalBatches cuts the dimension's eval split, in file order, into batches of at most size
// examples (the last may be smaller).
func (d *Dimension) EvalBatches(size int, opt BatchOptions) ([]*Batch, error) {
	if size < 1 {
		return nil, fmt.Errorf("datasets: eval batches: size %d is below 1", size)
	}
	var out []*Batch
	for lo := 0; lo < d.Eval.Len(); lo += size {
		hi := min(lo+size, d.Eval.Len())
		var b *Batch
		var err error
		switch d.Eval.Kind {
		case KindSFT:
			b, err = SFTBatch(d.Eval.SFT[lo:hi], opt)
		case KindPrompt:
			b, err = PromptBatch(d.Eval.Prompts[lo:hi], opt)
		default:
			b, err = PreferenceBatch(d.Eval.Pairs[lo:hi], opt)
		}
		if err != nil {
			return nil, fmt.Errorf("datasets: dimension %s: %w", d.Name, err)
		}
		out = append(out, b)
	}
	return out, nil
}
