package tokenizer

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"unicode/utf8"
)

// bpeModel is the BPE model of tokenizer.json: a vocabulary, ranked merges and the options
// that say what to do with characters missing from the vocabulary. It is immutable after
// loading except for its word cache, which is safe for concurrent use.
type bpeModel struct {
	vocab        map[string]int
	tokens       []string               // id → token ("" where the id is unused)
	merges       map[uint64]mergeResult // (left id, right id) → rank and merged id
	byteIDs      [256]int               // ids of <0x00>..<0xFF>, -1 when missing
	unkID        int                    // -1: characters that cannot be encoded are dropped
	prefix       string                 // continuing_subword_prefix
	suffix       string                 // end_of_word_suffix
	fuseUnk      bool                   // consecutive unknown characters give one unk id
	byteFallback bool                   // unknown characters become <0xXX> tokens
	ignoreMerges bool                   // a word that is itself in the vocabulary is one token
	cache        wordCache              // word → ids
}

// maxTokenID bounds the ids a vocabulary may use (real ones stay under 300k), so that a
// corrupt file cannot make the id table huge.
const maxTokenID = 1<<24 - 1

// mergeResult is what a merge rule gives: its rank (lower merges first) and the merged id.
type mergeResult struct{ rank, id int32 }

func pairKey(a, b int) uint64 { return uint64(uint32(a))<<32 | uint64(uint32(b)) }

// bpeJSON is the "model" object of tokenizer.json for type BPE.
type bpeJSON struct {
	Dropout      *float64       `json:"dropout"`
	UnkToken     *string        `json:"unk_token"`
	Prefix       *string        `json:"continuing_subword_prefix"`
	Suffix       *string        `json:"end_of_word_suffix"`
	FuseUnk      bool           `json:"fuse_unk"`
	ByteFallback bool           `json:"byte_fallback"`
	IgnoreMerges bool           `json:"ignore_merges"`
	Vocab        map[string]int `json:"vocab"`
	Merges       []mergeJSON    `json:"merges"`
}

// mergeJSON is one merge rule, written either "a b" or ["a", "b"].
type mergeJSON [2]string

// UnmarshalJSON accepts both spellings of a merge rule.
func (m *mergeJSON) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '[' {
		var pair []string
		if err := json.Unmarshal(b, &pair); err != nil {
			return err
		}
		if len(pair) != 2 {
			return fmt.Errorf("merge %s: want 2 tokens, got %d", b, len(pair))
		}
		m[0], m[1] = pair[0], pair[1]
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	a, c, ok := strings.Cut(s, " ")
	if !ok || strings.Contains(c, " ") {
		return fmt.Errorf("merge %q: want two tokens separated by one space", s)
	}
	m[0], m[1] = a, c
	return nil
}

// parseModel builds the model at JSON key key.
func parseModel(raw json.RawMessage, key string) (*bpeModel, error) {
	if isNull(raw) {
		return nil, errAt(key, "missing model")
	}
	var head struct {
		Type string `json:"type"`
	}
	if err := decodeAt(raw, key, &head); err != nil {
		return nil, err
	}
	if head.Type != "" && head.Type != "BPE" {
		// TODO: Unigram and WordPiece models are not implemented; the BPE families this
		// package targets do not use them.
		return nil, unsupported(key+".type", "model", head.Type)
	}
	var cfg bpeJSON
	if err := decodeAt(raw, key, &cfg); err != nil {
		return nil, err
	}
	if cfg.Vocab == nil {
		return nil, errAt(key+".vocab", "missing vocabulary")
	}
	if cfg.Dropout != nil && *cfg.Dropout != 0 {
		slog.Warn("tokenizer: BPE dropout ignored, encoding is deterministic", "dropout", *cfg.Dropout)
	}
	opts := bpeOptions{
		fuseUnk: cfg.FuseUnk, byteFallback: cfg.ByteFallback, ignoreMerges: cfg.IgnoreMerges,
	}
	if cfg.UnkToken != nil {
		opts.unk = *cfg.UnkToken
	}
	if cfg.Prefix != nil {
		opts.prefix = *cfg.Prefix
	}
	if cfg.Suffix != nil {
		opts.suffix = *cfg.Suffix
	}
	return newBPE(cfg.Vocab, cfg.Merges, opts, key)
}

// bpeOptions are the BPE settings besides vocabulary and merges.
type bpeOptions struct {
	unk, prefix, suffix                 string
	fuseUnk, byteFallback, ignoreMerges bool
}

// newBPE checks and indexes a vocabulary and its merges; key names the model's JSON key.
func newBPE(vocab map[string]int, merges []mergeJSON, o bpeOptions, key string) (*bpeModel, error) {
	m := &bpeModel{
		vocab: vocab, merges: make(map[uint64]mergeResult, len(merges)), unkID: -1,
		prefix: o.prefix, suffix: o.suffix,
		fuseUnk: o.fuseUnk, byteFallback: o.byteFallback, ignoreMerges: o.ignoreMerges,
	}
	maxID := -1
	for tok, id := range vocab {
		if id < 0 || id > maxTokenID {
			return nil, errAt(key+".vocab", "token %q has id %d outside [0, %d]", tok, id, maxTokenID)
		}
		maxID = max(maxID, id)
	}
	m.tokens = make([]string, maxID+1)
	for tok, id := range vocab {
		if m.tokens[id] != "" {
			return nil, errAt(key+".vocab", "id %d used by both %q and %q", id, m.tokens[id], tok)
		}
		m.tokens[id] = tok
	}
	for b := range m.byteIDs {
		id, ok := vocab[byteToken(byte(b))]
		if !ok {
			id = -1
		}
		m.byteIDs[b] = id
	}
	if o.unk != "" {
		id, ok := vocab[o.unk]
		if !ok {
			return nil, errAt(key+".unk_token", "unknown token %q is not in the vocabulary", o.unk)
		}
		m.unkID = id
	}

	// Rank the merges; a repeated pair keeps its last rank, as in the Rust library.
	for rank, pair := range merges {
		a, okA := vocab[pair[0]]
		b, okB := vocab[pair[1]]
		merged := pair[0] + strings.TrimPrefix(pair[1], o.prefix)
		c, okC := vocab[merged]
		if !okA || !okB || !okC {
			return nil, errAt(fmt.Sprintf("%s.merges[%d]", key, rank),
				"merge %q %q needs tokens missing from the vocabulary", pair[0], pair[1])
		}
		m.merges[pairKey(a, b)] = mergeResult{rank: int32(rank), id: int32(c)}
	}
	return m, nil
}

// wordCache remembers the ids of words, up to a fixed number of entries. It is safe for
// concurrent use.
type wordCache struct {
	m sync.Map // string → []int
	n atomic.Int64
}

const (
	cacheMaxWords    = 1 << 17 // entries kept; later words are computed every time
	cacheMaxWordSize = 256     // bytes; longer words are not cached (as in the Rust library)
)

// tokenize appends the ids of one word to dst.
func (m *bpeModel) tokenize(dst []int, word string) []int {
	if word == "" {
		return dst
	}
	if m.ignoreMerges {
		if id, ok := m.vocab[word]; ok {
			return append(dst, id)
		}
	}
	if ids, ok := m.cache.m.Load(word); ok {
		return append(dst, ids.([]int)...)
	}
	start := len(dst)
	dst = m.merge(dst, word)
	m.remember(word, dst[start:])
	return dst
}

// tokenizeBytes appends the ids of one word given as raw bytes, mapping it to byte-level
// characters only when the cache (keyed by the raw word) misses.
func (m *bpeModel) tokenizeBytes(dst []int, raw string) []int {
	if raw == "" {
		return dst
	}
	if ids, ok := m.cache.m.Load(raw); ok {
		return append(dst, ids.([]int)...)
	}
	word := byteLevelEncode(raw)
	start := len(dst)
	if id, ok := m.vocab[word]; ok && m.ignoreMerges {
		dst = append(dst, id)
	} else {
		dst = m.merge(dst, word)
	}
	m.remember(raw, dst[start:])
	return dst
}

// remember caches the ids of a word, while the cache has room. The key is copied: a word is
// often a slice of a long text that the cache must not keep alive.
func (m *bpeModel) remember(word string, ids []int) {
	if len(word) <= cacheMaxWordSize && m.cache.n.Load() < cacheMaxWords {
		if _, loaded := m.cache.m.LoadOrStore(strings.Clone(word), slices.Clone(ids)); !loaded {
			m.cache.n.Add(1)
		}
	}
}

// symbol is one node of the doubly linked list a word is merged in.
type symbol struct {
	id         int
	prev, next int // indices into the symbol slice, -1 at the ends
	gone       bool
}

// merge appends the BPE ids of word to dst: one symbol per character, then the
// lowest-ranked adjacent pair is merged (leftmost first on ties) until no merge applies.
func (m *bpeModel) merge(dst []int, word string) []int {
	syms := make([]symbol, 0, len(word))
	push := func(id int) {
		syms = append(syms, symbol{id: id, prev: len(syms) - 1, next: -1})
	}
	pendingUnk := false
	flushUnk := func() {
		if pendingUnk {
			push(m.unkID)
			pendingUnk = false
		}
	}
	for i := 0; i < len(word); {
		_, n := utf8.DecodeRuneInString(word[i:])
		s := word[i : i+n]
		if m.prefix != "" && i > 0 {
			s = m.prefix + s
		}
		if m.suffix != "" && i+n == len(word) {
			s += m.suffix
		}
		i += n

		if id, ok := m.vocab[s]; ok {
			flushUnk()
			push(id)
			continue
		}
		if m.byteFallback && m.hasBytes(s) {
			// The Rust library emits a pending unk after these bytes; keeping the text order
			// is the sane reading and only differs for vocabularies missing byte tokens.
			flushUnk()
			for k := 0; k < len(s); k++ {
				push(m.byteIDs[s[k]])
			}
			continue
		}
		if m.unkID < 0 {
			continue
		}
		if !m.fuseUnk {
			flushUnk()
		}
		pendingUnk = true
	}
	flushUnk()
	for k := range syms {
		if k+1 < len(syms) {
			syms[k].next = k + 1
		}
	}

	var h mergeHeap
	for k := 0; k+1 < len(syms); k++ {
		if r, ok := m.merges[pairKey(syms[k].id, syms[k+1].id)]; ok {
			h.push(mergeItem{rank: r.rank, pos: int32(k), id: r.id})
		}
	}
	for len(h) > 0 {
		top := h.pop()
		left := &syms[top.pos]
		if left.gone || left.next < 0 {
			continue
		}
		right := &syms[left.next]
		if r, ok := m.merges[pairKey(left.id, right.id)]; !ok || r.id != top.id {
			continue // stale: a neighbour changed since this pair was queued
		}
		left.id = int(top.id)
		left.next = right.next
		right.gone = true
		if left.next >= 0 {
			syms[left.next].prev = int(top.pos)
			if r, ok := m.merges[pairKey(left.id, syms[left.next].id)]; ok {
				h.push(mergeItem{rank: r.rank, pos: top.pos, id: r.id})
			}
		}
		if left.prev >= 0 {
			if r, ok := m.merges[pairKey(syms[left.prev].id, left.id)]; ok {
				h.push(mergeItem{rank: r.rank, pos: int32(left.prev), id: r.id})
			}
		}
	}
	for k := 0; k >= 0 && k < len(syms); k = syms[k].next {
		dst = append(dst, syms[k].id)
	}
	return dst
}

// hasBytes reports whether every byte of s has a byte-fallback token.
func (m *bpeModel) hasBytes(s string) bool {
	for k := 0; k < len(s); k++ {
		if m.byteIDs[s[k]] < 0 {
			return false
		}
	}
	return true
}

// mergeItem is a queued merge of the symbol at pos with its right neighbour.
type mergeItem struct{ rank, pos, id int32 }

// mergeHeap is a binary min-heap ordered by rank, then position.
type mergeHeap []mergeItem

func (a mergeItem) less(b mergeItem) bool {
	return a.rank < b.rank || (a.rank == b.rank && a.pos < b.pos)
}

func (h *mergeHeap) push(it mergeItem) {
	*h = append(*h, it)
	s := *h
	for k := len(s) - 1; k > 0; {
		p := (k - 1) / 2
		if !s[k].less(s[p]) {
			break
		}
		s[k], s[p] = s[p], s[k]
		k = p
	}
}

func (h *mergeHeap) pop() mergeItem {
	s := *h
	top := s[0]
	last := len(s) - 1
	s[0] = s[last]
	s = s[:last]
	for k := 0; ; {
		l, r, small := 2*k+1, 2*k+2, k
		if l < len(s) && s[l].less(s[small]) {
			small = l
		}
		if r < len(s) && s[r].less(s[small]) {
			small = r
		}
		if small == k {
			break
		}
		s[k], s[small] = s[small], s[k]
		k = small
	}
	*h = s
	return top
}
