package tokenizer

import (
	"encoding/json"
	"strings"
	"unicode/utf8"
)

// metaspace is SentencePiece's space handling, both as a pre-tokenizer (spaces become the
// replacement character "▁", a leading one is added, words split before each "▁") and as a
// decoder (the way back).
type metaspace struct {
	replacement string
	prepend     string // "always", "first" or "never"
	split       bool
}

// parseMetaspace reads a Metaspace pre-tokenizer or decoder. Older files carry
// add_prefix_space instead of prepend_scheme.
func parseMetaspace(raw json.RawMessage, key string) (*metaspace, error) {
	cfg := struct {
		Replacement    string `json:"replacement"`
		PrependScheme  string `json:"prepend_scheme"`
		AddPrefixSpace *bool  `json:"add_prefix_space"`
		Split          *bool  `json:"split"`
	}{Replacement: "▁"}
	if err := decodeAt(raw, key, &cfg); err != nil {
		return nil, err
	}
	if utf8.RuneCountInString(cfg.Replacement) != 1 {
		return nil, errAt(key+".replacement", "want one character, got %q", cfg.Replacement)
	}
	m := &metaspace{replacement: cfg.Replacement, prepend: cfg.PrependScheme, split: true}
	if cfg.Split != nil {
		m.split = *cfg.Split
	}
	switch {
	case m.prepend == "" && cfg.AddPrefixSpace != nil && !*cfg.AddPrefixSpace:
		m.prepend = "never"
	case m.prepend == "":
		m.prepend = "always"
	case m.prepend != "always" && m.prepend != "first" && m.prepend != "never":
		return nil, errAt(key+".prepend_scheme", "%w prepend scheme %q", ErrUnsupported, m.prepend)
	}
	return m, nil
}

func (m *metaspace) appendWords(dst []string, s string, first bool) []string {
	s = strings.ReplaceAll(s, " ", m.replacement)
	if !strings.HasPrefix(s, m.replacement) &&
		(m.prepend == "always" || (m.prepend == "first" && first)) {
		s = m.replacement + s
	}
	if !m.split {
		if s == "" {
			return dst
		}
		return append(dst, s)
	}
	spans := getSpans()
	defer putSpans(spans)
	*spans = literalMatcher(m.replacement).appendMatches((*spans)[:0], s)
	return splitBy(dst, s, *spans, mergedWithNext, false)
}

// decodeChain turns "▁" back into spaces; in the first token the leading replacement is
// dropped unless the scheme is "never" (as the Rust decoder does, every "▁" of the first token
// goes).
func (m *metaspace) decodeChain(tokens []string) []string {
	out := make([]string, len(tokens))
	for i, t := range tokens {
		if i == 0 && m.prepend != "never" {
			out[i] = strings.ReplaceAll(t, m.replacement, "")
			continue
		}
		out[i] = strings.ReplaceAll(t, m.replacement, " ")
	}
	return out
}
