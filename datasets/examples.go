package datasets

import (
	"encoding/binary"
	"hash/fnv"
)

// PreferenceExample is one tokenized pair under one dimension's ordering. Prompt, Chosen and
// Rejected are token ids after truncation; Chosen and Rejected end with the EOS id unless
// they were cut.
type PreferenceExample struct {
	ID       uint64 // stable id: see [ExampleID]
	Dim      int    // dimension index
	Source   string // the file as the config names it
	Line     int    // 1-based line (JSONL, JSON) or row (Parquet)
	Prompt   []int
	Chosen   []int
	Rejected []int
}

// SFTExample is one tokenized prompt and response.
type SFTExample struct {
	ID       uint64
	Dim      int
	Source   string
	Line     int
	Prompt   []int
	Response []int
}

// PromptExample is one tokenized prompt, for generation and RLHF.
type PromptExample struct {
	ID     uint64
	Dim    int
	Source string
	Line   int
	Prompt []int
}

// Examples holds one split of one dimension; only the slice of its Kind is filled.
type Examples struct {
	Kind    Kind
	Pairs   []PreferenceExample
	SFT     []SFTExample
	Prompts []PromptExample
}

// Len returns the number of examples.
func (e *Examples) Len() int {
	switch e.Kind {
	case KindSFT:
		return len(e.SFT)
	case KindPrompt:
		return len(e.Prompts)
	}
	return len(e.Pairs)
}

// ExampleID is a stable 64-bit id for a row under a dimension: FNV-1a of the dimension name,
// the source file as the config names it, and the line. It keys caches of reference
// log-probabilities, so it does not depend on the machine or on tokenization.
func ExampleID(dim, source string, line int) uint64 {
	h := fnv.New64a()
	h.Write([]byte(dim))
	h.Write([]byte{0})
	h.Write([]byte(source))
	h.Write([]byte{0})
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], uint64(line))
	h.Write(b[:])
	return h.Sum64()
}

// inEval reports whether a row with this split key is held out for evaluation: a hash of
// the seed and the key, read as a number in [0, 1), below the fraction.
func inEval(seed uint64, key string, fraction float64) bool {
	if fraction <= 0 {
		return false
	}
	h := fnv.New64a()
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], seed)
	h.Write(b[:])
	h.Write([]byte(key))
	return float64(mix64(h.Sum64())>>11)/float64(1<<53) < fraction
}

// mix64 is the splitmix64 finalizer: it spreads every input bit over the output bits.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}
