package tokenizer

import (
	"encoding/json"
	"strings"
	"unicode"

	"golang.org/x/text/unicode/norm"
)

// normalizer rewrites a stretch of text (one that holds no added token) before it is split.
type normalizer interface {
	normalize(s string) string
}

// parseNormalizer builds the normalizer at JSON key key; a null one is nil.
func parseNormalizer(raw json.RawMessage, key string) (normalizer, error) {
	if isNull(raw) {
		return nil, nil
	}
	typ, err := componentType(raw, key)
	if err != nil {
		return nil, err
	}
	switch typ {
	case "Sequence":
		seq, err := parseSequence(raw, key, "normalizers", parseNormalizer)
		return sequenceNormalizer(seq), err
	case "Prepend":
		var cfg struct {
			Prepend string `json:"prepend"`
		}
		if err := decodeAt(raw, key, &cfg); err != nil {
			return nil, err
		}
		return prependNormalizer(cfg.Prepend), nil
	case "Replace":
		var cfg struct {
			Pattern patternJSON `json:"pattern"`
			Content string      `json:"content"`
		}
		if err := decodeAt(raw, key, &cfg); err != nil {
			return nil, err
		}
		m, err := newPatternMatcher(cfg.Pattern, key+".pattern")
		if err != nil {
			return nil, err
		}
		return replaceNormalizer{m: m, content: cfg.Content}, nil
	case "NFC":
		return unicodeNormalizer{norm.NFC}, nil
	case "NFD":
		return unicodeNormalizer{norm.NFD}, nil
	case "NFKC":
		return unicodeNormalizer{norm.NFKC}, nil
	case "NFKD":
		return unicodeNormalizer{norm.NFKD}, nil
	case "Lowercase":
		return lowercaseNormalizer{}, nil
	case "Strip":
		var cfg struct {
			Left  bool `json:"strip_left"`
			Right bool `json:"strip_right"`
		}
		if err := decodeAt(raw, key, &cfg); err != nil {
			return nil, err
		}
		return stripNormalizer{left: cfg.Left, right: cfg.Right}, nil
	case "StripAccents":
		return stripAccentsNormalizer{}, nil
	}
	// TODO: BertNormalizer, Precompiled (SentencePiece charsmap) and NMT are not implemented;
	// none of the BPE families this package targets uses them.
	return nil, unsupported(key+".type", "normalizer", typ)
}

// sequenceNormalizer applies its members in order.
type sequenceNormalizer []normalizer

func (seq sequenceNormalizer) normalize(s string) string {
	for _, n := range seq {
		s = n.normalize(s)
	}
	return s
}

// prependNormalizer puts a string in front of non-empty text (Llama 2's "▁").
type prependNormalizer string

func (p prependNormalizer) normalize(s string) string {
	if s == "" {
		return s
	}
	return string(p) + s
}

// replaceNormalizer replaces every match of a pattern by content.
type replaceNormalizer struct {
	m       matcher
	content string
}

func (r replaceNormalizer) normalize(s string) string {
	if lit, ok := r.m.(literalMatcher); ok {
		if lit == "" {
			return s
		}
		return strings.ReplaceAll(s, string(lit), r.content)
	}
	return regexReplace(r.m, s, r.content)
}

// unicodeNormalizer applies a Unicode normalization form (NFC, NFD, NFKC, NFKD).
type unicodeNormalizer struct{ form norm.Form }

func (u unicodeNormalizer) normalize(s string) string { return u.form.String(s) }

// lowercaseNormalizer lowercases text.
//
// TODO: Rust's str::to_lowercase maps a word-final Σ to ς; strings.ToLower always gives σ.
type lowercaseNormalizer struct{}

func (lowercaseNormalizer) normalize(s string) string { return strings.ToLower(s) }

// stripNormalizer removes whitespace from the left and/or right end.
type stripNormalizer struct{ left, right bool }

func (st stripNormalizer) normalize(s string) string {
	if st.left {
		s = strings.TrimLeftFunc(s, unicode.IsSpace)
	}
	if st.right {
		s = strings.TrimRightFunc(s, unicode.IsSpace)
	}
	return s
}

// stripAccentsNormalizer removes nonspacing marks (use after NFD to drop accents).
type stripAccentsNormalizer struct{}

func (stripAccentsNormalizer) normalize(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.Is(unicode.Mn, r) {
			return -1
		}
		return r
	}, s)
}
