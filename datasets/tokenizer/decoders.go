package tokenizer

import (
	"encoding/json"
	"strconv"
	"strings"
	"unicode/utf8"
)

// decoder rewrites the list of token strings on the way back to text. The final text is the
// concatenation of what the last decoder returns.
type decoder interface {
	decodeChain(tokens []string) []string
}

// parseDecoder builds the decoder at JSON key key; a null one is nil.
func parseDecoder(raw json.RawMessage, key string) (decoder, error) {
	if isNull(raw) {
		return nil, nil
	}
	typ, err := componentType(raw, key)
	if err != nil {
		return nil, err
	}
	switch typ {
	case "Sequence":
		seq, err := parseSequence(raw, key, "decoders", parseDecoder)
		return sequenceDecoder(seq), err
	case "ByteLevel":
		return byteLevelDecoder{}, nil
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
		return replaceDecoder{replaceNormalizer{m: m, content: cfg.Content}}, nil
	case "ByteFallback":
		return byteFallbackDecoder{}, nil
	case "Fuse":
		return fuseDecoder{}, nil
	case "Strip":
		var cfg struct {
			Content string `json:"content"`
			Start   int    `json:"start"`
			Stop    int    `json:"stop"`
		}
		if err := decodeAt(raw, key, &cfg); err != nil {
			return nil, err
		}
		if utf8.RuneCountInString(cfg.Content) != 1 || cfg.Start < 0 || cfg.Stop < 0 {
			return nil, errAt(key, "strip wants one content character and counts >= 0, got %q %d %d",
				cfg.Content, cfg.Start, cfg.Stop)
		}
		r, _ := utf8.DecodeRuneInString(cfg.Content)
		return stripDecoder{content: r, start: cfg.Start, stop: cfg.Stop}, nil
	case "Metaspace":
		return parseMetaspace(raw, key)
	}
	// TODO: WordPiece, BPEDecoder (end-of-word suffix) and CTC decoders are not implemented;
	// none of the BPE families this package targets uses them.
	return nil, unsupported(key+".type", "decoder", typ)
}

// sequenceDecoder runs its members in order.
type sequenceDecoder []decoder

func (seq sequenceDecoder) decodeChain(tokens []string) []string {
	for _, d := range seq {
		tokens = d.decodeChain(tokens)
	}
	return tokens
}

// byteLevelDecoder maps byte-level characters back to bytes and the bytes to text; invalid
// UTF-8 becomes U+FFFD.
type byteLevelDecoder struct{}

func (byteLevelDecoder) decodeChain(tokens []string) []string {
	var buf []byte
	for _, t := range tokens {
		buf = byteLevelDecode(buf, t)
	}
	return []string{lossyUTF8(buf)}
}

// replaceDecoder replaces a pattern in every token (Llama 2: "▁" to " ").
type replaceDecoder struct{ r replaceNormalizer }

func (d replaceDecoder) decodeChain(tokens []string) []string {
	out := make([]string, len(tokens))
	for i, t := range tokens {
		out[i] = d.r.normalize(t)
	}
	return out
}

// byteFallbackDecoder turns runs of <0xXX> tokens into the text their bytes spell; a run that
// is not valid UTF-8 becomes one U+FFFD per byte.
type byteFallbackDecoder struct{}

func (byteFallbackDecoder) decodeChain(tokens []string) []string {
	out := make([]string, 0, len(tokens))
	var pending []byte
	flush := func() {
		if len(pending) == 0 {
			return
		}
		if utf8.Valid(pending) {
			out = append(out, string(pending))
		} else {
			for range pending {
				out = append(out, "\uFFFD")
			}
		}
		pending = pending[:0]
	}
	for _, t := range tokens {
		if b, ok := parseByteToken(t); ok {
			pending = append(pending, b)
			continue
		}
		flush()
		out = append(out, t)
	}
	flush()
	return out
}

// parseByteToken reads a byte-fallback token "<0xXX>".
func parseByteToken(t string) (byte, bool) {
	if len(t) != 6 || !strings.HasPrefix(t, "<0x") || t[5] != '>' {
		return 0, false
	}
	v, err := strconv.ParseUint(t[3:5], 16, 8)
	if err != nil {
		return 0, false
	}
	return byte(v), true
}

// byteToken is the byte-fallback token of b, "<0xXX>".
func byteToken(b byte) string {
	const hex = "0123456789ABCDEF"
	return string([]byte{'<', '0', 'x', hex[b>>4], hex[b&15], '>'})
}

// fuseDecoder joins all tokens into one.
type fuseDecoder struct{}

func (fuseDecoder) decodeChain(tokens []string) []string {
	return []string{strings.Join(tokens, "")}
}

// stripDecoder removes up to start leading and stop trailing copies of content from every
// token (Llama 2: the space the normalizer prepended).
type stripDecoder struct {
	content     rune
	start, stop int
}

func (d stripDecoder) decodeChain(tokens []string) []string {
	out := make([]string, len(tokens))
	for i, t := range tokens {
		runes := []rune(t)
		lo := 0
		for lo < d.start && lo < len(runes) && runes[lo] == d.content {
			lo++
		}
		hi := len(runes)
		for k := 0; k < d.stop && hi > lo && runes[hi-1] == d.content; k++ {
			hi--
		}
		out[i] = string(runes[lo:hi])
	}
	return out
}
