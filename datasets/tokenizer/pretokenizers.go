package tokenizer

import (
	"encoding/json"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"
)

// preTokenizer splits a stretch of normalized text into words (and may rewrite them).
type preTokenizer interface {
	// appendWords appends the words of s to dst. first reports whether s begins the input
	// text (Metaspace's prepend_scheme "first" needs it).
	appendWords(dst []string, s string, first bool) []string
}

// behavior says what a split does with the matches of its pattern (Rust's
// SplitDelimiterBehavior).
type behavior int

const (
	removed            behavior = iota // drop the matches
	isolated                           // keep each match as its own word
	mergedWithPrevious                 // glue each match to the word before it
	mergedWithNext                     // glue each match to the word after it
	contiguous                         // keep runs of adjacent matches as one word
)

var behaviors = map[string]behavior{
	"Removed":            removed,
	"Isolated":           isolated,
	"MergedWithPrevious": mergedWithPrevious,
	"MergedWithNext":     mergedWithNext,
	"Contiguous":         contiguous,
}

// parsePreTokenizer builds the pre-tokenizer at JSON key key; a null one is nil.
func parsePreTokenizer(raw json.RawMessage, key string) (preTokenizer, error) {
	if isNull(raw) {
		return nil, nil
	}
	typ, err := componentType(raw, key)
	if err != nil {
		return nil, err
	}
	switch typ {
	case "Sequence":
		seq, err := parseSequence(raw, key, "pretokenizers", parsePreTokenizer)
		return sequencePreTokenizer(seq), err
	case "ByteLevel":
		cfg := struct {
			AddPrefixSpace bool `json:"add_prefix_space"`
			UseRegex       bool `json:"use_regex"`
		}{UseRegex: true}
		if err := decodeAt(raw, key, &cfg); err != nil {
			return nil, err
		}
		return byteLevelPreTokenizer{addPrefixSpace: cfg.AddPrefixSpace, useRegex: cfg.UseRegex}, nil
	case "Split":
		var cfg struct {
			Pattern  patternJSON `json:"pattern"`
			Behavior string      `json:"behavior"`
			Invert   bool        `json:"invert"`
		}
		if err := decodeAt(raw, key, &cfg); err != nil {
			return nil, err
		}
		m, err := newPatternMatcher(cfg.Pattern, key+".pattern")
		if err != nil {
			return nil, err
		}
		b, ok := behaviors[cfg.Behavior]
		if !ok {
			return nil, errAt(key+".behavior", "%w split behavior %q", ErrUnsupported, cfg.Behavior)
		}
		return splitPreTokenizer{m: m, behavior: b, invert: cfg.Invert}, nil
	case "Metaspace":
		return parseMetaspace(raw, key)
	case "Digits":
		var cfg struct {
			Individual bool `json:"individual_digits"`
		}
		if err := decodeAt(raw, key, &cfg); err != nil {
			return nil, err
		}
		b := contiguous
		if cfg.Individual {
			b = isolated
		}
		return splitPreTokenizer{m: runeMatcher(unicode.IsNumber), behavior: b}, nil
	case "Punctuation":
		cfg := struct {
			Behavior string `json:"behavior"`
		}{Behavior: "Isolated"}
		if err := decodeAt(raw, key, &cfg); err != nil {
			return nil, err
		}
		b, ok := behaviors[cfg.Behavior]
		if !ok {
			return nil, errAt(key+".behavior", "%w split behavior %q", ErrUnsupported, cfg.Behavior)
		}
		return splitPreTokenizer{m: runeMatcher(isPunctuation), behavior: b}, nil
	case "Whitespace":
		m, err := newRegexMatcher(`\w+|[^\w\s]+`, key)
		if err != nil {
			return nil, err
		}
		return splitPreTokenizer{m: m, behavior: removed, invert: true}, nil
	case "WhitespaceSplit":
		return splitPreTokenizer{m: runeMatcher(unicode.IsSpace), behavior: removed}, nil
	}
	// TODO: BertPreTokenizer, CharDelimiterSplit, UnicodeScripts are not implemented; none of
	// the BPE families this package targets uses them.
	return nil, unsupported(key+".type", "pre-tokenizer", typ)
}

// sequencePreTokenizer runs each member on every word the previous one produced.
type sequencePreTokenizer []preTokenizer

func (seq sequencePreTokenizer) appendWords(dst []string, s string, first bool) []string {
	words := []string{s}
	for _, p := range seq {
		next := make([]string, 0, len(words)+4)
		for i, w := range words {
			next = p.appendWords(next, w, first && i == 0)
		}
		words = next
	}
	return append(dst, words...)
}

// byteLevelPreTokenizer optionally adds a leading space, optionally splits with GPT-2's
// pattern, and maps every byte of each word to its byte-level character. When it is the last
// pre-tokenizer, the tokenizer defers the mapping to the model (rawBytes), which then maps only
// the words its cache has not seen.
type byteLevelPreTokenizer struct {
	addPrefixSpace, useRegex bool
	rawBytes                 bool // leave words unmapped; the model maps them
}

func (b byteLevelPreTokenizer) appendWords(dst []string, s string, _ bool) []string {
	if b.addPrefixSpace && !strings.HasPrefix(s, " ") {
		s = " " + s
	}
	mapBytes := byteLevelEncode
	if b.rawBytes {
		mapBytes = func(w string) string { return w }
	}
	if !b.useRegex {
		if s == "" {
			return dst
		}
		return append(dst, mapBytes(s))
	}
	spans := getSpans()
	defer putSpans(spans)
	*spans = (handMatcher{}).appendMatches((*spans)[:0], s)
	for _, sp := range *spans {
		dst = append(dst, mapBytes(s[sp.start:sp.end]))
	}
	return dst
}

// deferByteLevel rewrites a pre-tokenizer whose last step is ByteLevel so that it leaves the
// words unmapped, and reports whether it did. A ByteLevel step that then does nothing at all
// (no prefix space, no regex) is dropped.
func deferByteLevel(p preTokenizer) (preTokenizer, bool) {
	switch v := p.(type) {
	case byteLevelPreTokenizer:
		v.rawBytes = true
		return v, true
	case sequencePreTokenizer:
		if len(v) == 0 {
			return p, false
		}
		last, ok := v[len(v)-1].(byteLevelPreTokenizer)
		if !ok {
			return p, false
		}
		seq := append(sequencePreTokenizer(nil), v...)
		if !last.addPrefixSpace && !last.useRegex {
			seq = seq[:len(seq)-1]
		} else {
			last.rawBytes = true
			seq[len(seq)-1] = last
		}
		if len(seq) == 1 {
			return seq[0], true
		}
		return seq, true
	}
	return p, false
}

// spanPool recycles match buffers across calls.
var spanPool = sync.Pool{New: func() any { s := make([]span, 0, 64); return &s }}

func getSpans() *[]span  { return spanPool.Get().(*[]span) }
func putSpans(s *[]span) { spanPool.Put(s) }

// splitPreTokenizer splits by a pattern, treating its matches according to behavior;
// invert swaps matches and the text between them.
type splitPreTokenizer struct {
	m        matcher
	behavior behavior
	invert   bool
}

func (sp splitPreTokenizer) appendWords(dst []string, s string, _ bool) []string {
	spans := getSpans()
	defer putSpans(spans)
	*spans = sp.m.appendMatches((*spans)[:0], s)
	return splitBy(dst, s, *spans, sp.behavior, sp.invert)
}

// splitBy cuts s at the matches and applies the behavior; empty words are dropped.
func splitBy(dst []string, s string, matches []span, b behavior, invert bool) []string {
	if b == isolated {
		// Matches and the text between them are all words, whatever invert says.
		prev := 0
		for _, m := range matches {
			if m.start > prev {
				dst = append(dst, s[prev:m.start])
			}
			if m.end > m.start {
				dst = append(dst, s[m.start:m.end])
			}
			prev = m.end
		}
		if prev < len(s) {
			dst = append(dst, s[prev:])
		}
		return dst
	}
	type part struct {
		span
		match bool
	}
	parts := make([]part, 0, 2*len(matches)+1)
	prev := 0
	for _, m := range matches {
		if m.start > prev {
			parts = append(parts, part{span{prev, m.start}, invert})
		}
		parts = append(parts, part{m, !invert})
		prev = m.end
	}
	if prev < len(s) {
		parts = append(parts, part{span{prev, len(s)}, invert})
	}

	var out []span
	switch b {
	case removed:
		for _, p := range parts {
			if !p.match {
				out = append(out, p.span)
			}
		}
	case mergedWithPrevious:
		prevMatch := false
		for _, p := range parts {
			if p.match && !prevMatch && len(out) > 0 {
				out[len(out)-1].end = p.end
			} else {
				out = append(out, p.span)
			}
			prevMatch = p.match
		}
	case mergedWithNext:
		// Walk backwards so that a match joins the word after it.
		prevMatch := false
		for k := len(parts) - 1; k >= 0; k-- {
			p := parts[k]
			if p.match && !prevMatch && len(out) > 0 {
				out[len(out)-1].start = p.start
			} else {
				out = append(out, p.span)
			}
			prevMatch = p.match
		}
		for l, r := 0, len(out)-1; l < r; l, r = l+1, r-1 {
			out[l], out[r] = out[r], out[l]
		}
	case contiguous:
		prevMatch := false
		for _, p := range parts {
			if p.match == prevMatch && len(out) > 0 {
				out[len(out)-1].end = p.end
			} else {
				out = append(out, p.span)
			}
			prevMatch = p.match
		}
	}
	for _, o := range out {
		if o.end > o.start {
			dst = append(dst, s[o.start:o.end])
		}
	}
	return dst
}

// runeMatcher matches every single rune for which the predicate holds.
type runeMatcher func(rune) bool

func (f runeMatcher) appendMatches(dst []span, s string) []span {
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if f(r) {
			dst = append(dst, span{i, i + n})
		}
		i += n
	}
	return dst
}

// isPunctuation is the Rust library's punctuation test: ASCII punctuation or Unicode P*.
func isPunctuation(r rune) bool {
	if r < utf8.RuneSelf {
		return strings.ContainsRune("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~", r)
	}
	return unicode.IsPunct(r)
}
