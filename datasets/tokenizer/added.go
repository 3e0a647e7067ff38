package tokenizer

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// addedToken is a token matched in the text before the model sees it: a special token such as
// <|endoftext|> or <s>, or an ordinary token the model's authors added later.
type addedToken struct {
	id         int
	content    string
	special    bool // skipped by Decode when asked
	lstrip     bool // swallows the whitespace on its left
	rstrip     bool // swallows the whitespace on its right
	normalized bool // matched in the normalized text rather than the raw text
	singleWord bool // matches only where it is not part of a longer word
}

// addedJSON is one entry of "added_tokens".
type addedJSON struct {
	ID         *int   `json:"id"`
	Content    string `json:"content"`
	SingleWord bool   `json:"single_word"`
	LStrip     bool   `json:"lstrip"`
	RStrip     bool   `json:"rstrip"`
	Normalized *bool  `json:"normalized"`
	Special    bool   `json:"special"`
}

// segment is a stretch of text: an added token (id >= 0) or text for the model (id -1).
type segment struct {
	text string
	id   int
}

// tokenTrie finds added tokens by leftmost-longest matching, as the Rust library's
// Aho-Corasick automaton does.
type tokenTrie struct {
	root  trieNode
	first [256]bool // bytes that can start a token, to skip the rest quickly
}

type trieNode struct {
	next map[byte]*trieNode
	tok  *addedToken // token ending here, if any
}

func (t *tokenTrie) add(pattern string, tok *addedToken) {
	if pattern == "" {
		return
	}
	t.first[pattern[0]] = true
	n := &t.root
	for k := 0; k < len(pattern); k++ {
		if n.next == nil {
			n.next = map[byte]*trieNode{}
		}
		child, ok := n.next[pattern[k]]
		if !ok {
			child = &trieNode{}
			n.next[pattern[k]] = child
		}
		n = child
	}
	if n.tok == nil {
		n.tok = tok
	}
}

// longest returns the longest token starting at byte i of s and its end, or nil.
func (t *tokenTrie) longest(s string, i int) (*addedToken, int) {
	var best *addedToken
	end := -1
	n := &t.root
	for k := i; k < len(s) && n.next != nil; k++ {
		n = n.next[s[k]]
		if n == nil {
			break
		}
		if n.tok != nil {
			best, end = n.tok, k+1
		}
	}
	return best, end
}

// empty reports whether the trie holds no token.
func (t *tokenTrie) empty() bool { return t.root.next == nil }

// split cuts s into added tokens and the text between them (empty stretches dropped).
func (t *tokenTrie) split(dst []segment, s string) []segment {
	if t.empty() {
		return append(dst, segment{s, -1})
	}
	from := 0 // start of the text not yet emitted
	for i := 0; i < len(s); {
		if !t.first[s[i]] {
			i++
			continue
		}
		tok, end := t.longest(s, i)
		if tok == nil {
			i++
			continue
		}
		start, stop := i, end
		if tok.singleWord && (endsWithWord(s[:start]) || startsWithWord(s[stop:])) {
			i = end
			continue
		}
		if tok.lstrip {
			start = max(len(strings.TrimRightFunc(s[:start], unicode.IsSpace)), from)
		}
		if tok.rstrip {
			stop = len(s) - len(strings.TrimLeftFunc(s[stop:], unicode.IsSpace))
		}
		if from < start {
			dst = append(dst, segment{s[from:start], -1})
		}
		dst = append(dst, segment{s[start:stop], tok.id})
		from, i = stop, stop
	}
	if from < len(s) {
		dst = append(dst, segment{s[from:], -1})
	}
	return dst
}

// isWordChar is the regex class \w of the Rust library (Unicode letters, marks, decimal
// digits, connector punctuation and the joiners).
func isWordChar(r rune) bool {
	return unicode.IsLetter(r) || unicode.IsMark(r) || unicode.Is(unicode.Nd, r) ||
		unicode.Is(unicode.Pc, r) || r == 0x200C || r == 0x200D
}

func endsWithWord(s string) bool {
	r, n := utf8.DecodeLastRuneInString(s)
	return n > 0 && isWordChar(r)
}

func startsWithWord(s string) bool {
	r, n := utf8.DecodeRuneInString(s)
	return n > 0 && isWordChar(r)
}
