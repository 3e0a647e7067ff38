package tokenizer

import (
	"log/slog"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/dlclark/regexp2"
)

// span is the byte range [start, end) of a match in a string.
type span struct{ start, end int }

// matcher finds the non-overlapping matches of a pattern in s, left to right, as the Rust
// library's find_iter does.
type matcher interface {
	appendMatches(dst []span, s string) []span
}

// regexTimeout bounds one regexp2 match (backtracking can explode on a pathological pattern).
const regexTimeout = 10 * time.Second

// The pre-tokenizer patterns of the byte-level families. They need lookahead ((?!\S)), which
// Go's regexp lacks. Each has a hand-written matcher (handMatcher) that splitter_test.go
// proves equal to regexp2 running the pattern itself; any other pattern runs on regexp2.
const (
	// gpt2Pattern is GPT-2's pattern, built into the ByteLevel pre-tokenizer (use_regex).
	gpt2Pattern = `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
	// llama3Pattern is the Split pattern of Llama 3 (tiktoken's cl100k_base).
	llama3Pattern = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|` +
		` ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
	// qwen2Pattern is the Split pattern of Qwen 2 and 3: Llama 3's with single digits.
	qwen2Pattern = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}|` +
		` ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
)

// newPatternMatcher returns the matcher of a Split/Replace pattern. key names the JSON key of
// the pattern, for errors.
func newPatternMatcher(p patternJSON, key string) (matcher, error) {
	switch {
	case p.String != nil && p.Regex != nil:
		return nil, errAt(key, "pattern has both String and Regex")
	case p.String != nil:
		return literalMatcher(*p.String), nil
	case p.Regex != nil:
		return newRegexMatcher(*p.Regex, key)
	}
	return nil, errAt(key, "pattern needs String or Regex")
}

// newRegexMatcher picks the hand-written matcher for a known pattern, else compiles it with
// regexp2. regexp2's default (.NET) syntax treats \s, \p{L} and \p{N} as Unicode classes, as
// Oniguruma does in the Rust library.
func newRegexMatcher(pattern, key string) (matcher, error) {
	switch pattern {
	case gpt2Pattern:
		return handMatcher{}, nil
	case llama3Pattern:
		return handMatcher{llama: true, maxDigits: 3}, nil
	case qwen2Pattern:
		return handMatcher{llama: true, maxDigits: 1}, nil
	}
	re, err := regexp2.Compile(pattern, regexp2.None)
	if err != nil {
		return nil, errAt(key, "compile regex %q: %w", pattern, err)
	}
	re.MatchTimeout = regexTimeout
	return regexMatcher{re: re}, nil
}

// literalMatcher matches a fixed string.
type literalMatcher string

func (m literalMatcher) appendMatches(dst []span, s string) []span {
	if m == "" {
		return dst
	}
	for off := 0; ; {
		i := strings.Index(s[off:], string(m))
		if i < 0 {
			return dst
		}
		dst = append(dst, span{off + i, off + i + len(m)})
		off += i + len(m)
	}
}

// regexMatcher runs any pattern on regexp2, which counts positions in runes.
type regexMatcher struct{ re *regexp2.Regexp }

func (m regexMatcher) appendMatches(dst []span, s string) []span {
	// byteAt[k] is the byte offset of rune k (and len(s) for k = rune count).
	byteAt := make([]int, 0, len(s)+1)
	for i := range s {
		byteAt = append(byteAt, i)
	}
	byteAt = append(byteAt, len(s))

	// regexp2 fails only on a timeout, which needs a pathological pattern.
	match, err := m.re.FindStringMatch(s)
	for err == nil && match != nil {
		dst = append(dst, span{byteAt[match.Index], byteAt[match.Index+match.Length]})
		match, err = m.re.FindNextMatch(match)
	}
	if err != nil {
		slog.Warn("tokenizer: regex gave up, the rest of the text is not split",
			"pattern", m.re.String(), "err", err)
	}
	return dst
}

// regexReplace replaces every match of m in s by content.
func regexReplace(m matcher, s, content string) string {
	spans := m.appendMatches(nil, s)
	if len(spans) == 0 {
		return s
	}
	var sb strings.Builder
	prev := 0
	for _, sp := range spans {
		sb.WriteString(s[prev:sp.start])
		sb.WriteString(content)
		prev = sp.end
	}
	sb.WriteString(s[prev:])
	return sb.String()
}

// Character classes of the byte-level patterns, with an ASCII table for speed.
const (
	classOther  = iota // [^\s\p{L}\p{N}]
	classSpace         // \s: unicode.IsSpace, which is also regexp2's \s
	classLetter        // \p{L}
	classNumber        // \p{N}
)

var asciiClass [utf8.RuneSelf]uint8

func init() {
	for r := rune(0); r < utf8.RuneSelf; r++ {
		asciiClass[r] = uint8(classOf(r))
	}
}

func classOf(r rune) int {
	switch {
	case unicode.IsSpace(r):
		return classSpace
	case unicode.IsLetter(r):
		return classLetter
	case unicode.IsNumber(r):
		return classNumber
	}
	return classOther
}

// runeAt decodes the rune at byte i of s and returns it, its size and its class.
func runeAt(s string, i int) (rune, int, int) {
	if c := s[i]; c < utf8.RuneSelf {
		return rune(c), 1, int(asciiClass[c])
	}
	r, n := utf8.DecodeRuneInString(s[i:])
	return r, n, classOf(r)
}

// runOf returns the end of the run of class cls that starts at byte i.
func runOf(s string, i, cls int) int {
	for i < len(s) {
		_, n, c := runeAt(s, i)
		if c != cls {
			break
		}
		i += n
	}
	return i
}

// handMatcher implements gpt2Pattern (llama false) and llama3Pattern / qwen2Pattern (llama
// true, with maxDigits 3 or 1). All three match at every position, so the matches tile s.
type handMatcher struct {
	llama     bool
	maxDigits int
}

func (m handMatcher) appendMatches(dst []span, s string) []span {
	for i := 0; i < len(s); {
		var j int
		if m.llama {
			j = m.nextLlama(s, i)
		} else {
			j = nextGPT2(s, i)
		}
		dst = append(dst, span{i, j})
		i = j
	}
	return dst
}

// contraction returns the length of 's|'t|'re|'ve|'m|'ll|'d after the apostrophe at byte i
// (0 when none), comparing case-insensitively when fold is set.
//
// TODO: fold follows regexp2 (simple lowercasing), as the JavaScript encoders' [sS] classes
// do; Oniguruma's (?i) in the Rust library also folds 'ſ' (U+017F) to 's', so "'ſ" is a
// contraction there and not here.
func contraction(s string, i int, fold bool) int {
	lower := func(k int) rune {
		if k >= len(s) {
			return -1
		}
		r, _ := utf8.DecodeRuneInString(s[k:])
		if fold {
			r = unicode.ToLower(r)
		}
		return r
	}
	switch c := lower(i); c {
	case 's', 't', 'm', 'd':
		return runeLen(s, i)
	case 'r', 'v':
		if lower(i+runeLen(s, i)) == 'e' {
			return runeLen(s, i) + runeLen(s, i+runeLen(s, i))
		}
	case 'l':
		if lower(i+runeLen(s, i)) == 'l' {
			return runeLen(s, i) + runeLen(s, i+runeLen(s, i))
		}
	}
	return 0
}

// runeLen is the byte length of the rune at byte i of s.
func runeLen(s string, i int) int {
	_, n := utf8.DecodeRuneInString(s[i:])
	return n
}

// spaceTail handles \s+(?!\S)|\s+ at byte i, the start of a whitespace run: the whole run
// when it ends the text, else the run less its last character (which then leads the next
// word), unless that would leave nothing.
func spaceTail(s string, i int) int {
	j := runOf(s, i, classSpace)
	if j == len(s) {
		return j
	}
	_, last := utf8.DecodeLastRuneInString(s[i:j])
	if j-last > i {
		return j - last
	}
	return j
}

// nextGPT2 returns the end of the gpt2Pattern match that starts at byte i.
func nextGPT2(s string, i int) int {
	r, n, cls := runeAt(s, i)
	if r == '\'' {
		if k := contraction(s, i+1, false); k > 0 {
			return i + 1 + k
		}
	}
	// ' ?\p{L}+', ' ?\p{N}+', ' ?[^\s\p{L}\p{N}]+'
	if r == ' ' && i+1 < len(s) {
		if _, n2, c2 := runeAt(s, i+1); c2 != classSpace {
			return runOf(s, i+1+n2, c2)
		}
	}
	if cls != classSpace {
		return runOf(s, i+n, cls)
	}
	return spaceTail(s, i)
}

// nextLlama returns the end of the llama3Pattern / qwen2Pattern match that starts at byte i.
func (m handMatcher) nextLlama(s string, i int) int {
	r, n, cls := runeAt(s, i)
	if r == '\'' {
		if k := contraction(s, i+1, true); k > 0 {
			return i + 1 + k
		}
	}
	// [^\r\n\p{L}\p{N}]?\p{L}+
	if cls == classLetter {
		return runOf(s, i+n, classLetter)
	}
	if r != '\r' && r != '\n' && cls != classNumber && i+n < len(s) {
		if _, n2, c2 := runeAt(s, i+n); c2 == classLetter {
			return runOf(s, i+n+n2, classLetter)
		}
	}
	// \p{N}{1,maxDigits}
	if cls == classNumber {
		j := i + n
		for count := 1; count < m.maxDigits && j < len(s); count++ {
			_, n2, c2 := runeAt(s, j)
			if c2 != classNumber {
				break
			}
			j += n2
		}
		return j
	}
	// ' ?[^\s\p{L}\p{N}]+[\r\n]*'
	start := -1
	if cls == classOther {
		start = i
	} else if r == ' ' && i+1 < len(s) {
		if _, _, c2 := runeAt(s, i+1); c2 == classOther {
			start = i + 1
		}
	}
	if start >= 0 {
		j := runOf(s, start, classOther)
		for j < len(s) && (s[j] == '\r' || s[j] == '\n') {
			j++
		}
		return j
	}
	// \s*[\r\n]+ : through the last line break of the whitespace run.
	j := runOf(s, i, classSpace)
	if k := strings.LastIndexAny(s[i:j], "\r\n"); k >= 0 {
		return i + k + 1
	}
	return spaceTail(s, i)
}
