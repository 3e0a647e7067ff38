package tokenizer

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"unicode/utf8"
)

// Tokenizer turns text into token ids and back, following one tokenizer.json. It is
// immutable once loaded (its word cache aside) and safe for concurrent use.
type Tokenizer struct {
	model      *bpeModel
	normalizer normalizer    // nil: none
	pre        preTokenizer  // nil: the whole text is one word
	post       postProcessor // nil: nothing is added
	dec        decoder       // nil: tokens are joined with spaces
	rawBytes   bool          // pre yields raw words; the model maps them to byte-level

	added     map[int]*addedToken    // by id
	byContent map[string]*addedToken // by content
	rawTrie   tokenTrie              // added tokens matched in the raw text
	normTrie  tokenTrie              // added tokens matched in the normalized text
	vocabSize int
}

// fileJSON is the top level of tokenizer.json.
type fileJSON struct {
	AddedTokens   []addedJSON     `json:"added_tokens"`
	Normalizer    json.RawMessage `json:"normalizer"`
	PreTokenizer  json.RawMessage `json:"pre_tokenizer"`
	PostProcessor json.RawMessage `json:"post_processor"`
	Decoder       json.RawMessage `json:"decoder"`
	Model         json.RawMessage `json:"model"`
	Truncation    json.RawMessage `json:"truncation"`
	Padding       json.RawMessage `json:"padding"`
}

// Load reads a Hugging Face tokenizer.json.
func Load(path string) (*Tokenizer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: read %s: %w", path, err)
	}
	t, err := Parse(data)
	if err != nil {
		return nil, withFile(err, path)
	}
	slog.Debug("tokenizer: loaded", "file", path, "vocab_size", t.vocabSize, "added", len(t.added))
	return t, nil
}

// Parse builds a tokenizer from the contents of a tokenizer.json. Errors are *FormatError
// values naming the JSON key at fault.
func Parse(data []byte) (*Tokenizer, error) {
	var f fileJSON
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, &FormatError{Err: fmt.Errorf("decode json: %w", err)}
	}
	if !isNull(f.Truncation) || !isNull(f.Padding) {
		slog.Debug("tokenizer: truncation and padding settings ignored; callers batch the ids")
	}
	model, err := parseModel(f.Model, "model")
	if err != nil {
		return nil, err
	}
	t := &Tokenizer{model: model}
	if t.normalizer, err = parseNormalizer(f.Normalizer, "normalizer"); err != nil {
		return nil, err
	}
	if t.pre, err = parsePreTokenizer(f.PreTokenizer, "pre_tokenizer"); err != nil {
		return nil, err
	}
	t.pre, t.rawBytes = deferByteLevel(t.pre)
	if t.post, err = parsePostProcessor(f.PostProcessor, "post_processor"); err != nil {
		return nil, err
	}
	if t.dec, err = parseDecoder(f.Decoder, "decoder"); err != nil {
		return nil, err
	}
	if err := t.addTokens(f.AddedTokens); err != nil {
		return nil, err
	}
	return t, nil
}

// addTokens registers the added tokens and builds the tries that find them.
func (t *Tokenizer) addTokens(list []addedJSON) error {
	t.added = make(map[int]*addedToken, len(list))
	t.byContent = make(map[string]*addedToken, len(list))
	t.vocabSize = len(t.model.tokens)
	for i, a := range list {
		key := fmt.Sprintf("added_tokens[%d]", i)
		if a.ID == nil || *a.ID < 0 {
			return errAt(key+".id", "missing or negative id")
		}
		if a.Content == "" {
			continue // the Rust library ignores empty added tokens too
		}
		tok := &addedToken{
			id: *a.ID, content: a.Content, special: a.Special, lstrip: a.LStrip,
			rstrip: a.RStrip, singleWord: a.SingleWord, normalized: !a.Special,
		}
		if a.Normalized != nil {
			tok.normalized = *a.Normalized
		}
		if id, ok := t.model.vocab[a.Content]; ok && id != tok.id {
			slog.Warn("tokenizer: added token id differs from the model vocabulary",
				"token", a.Content, "added_id", tok.id, "vocab_id", id)
		}
		t.added[tok.id] = tok
		t.byContent[tok.content] = tok
		t.vocabSize = max(t.vocabSize, tok.id+1)
		if tok.normalized {
			pattern := tok.content
			if t.normalizer != nil {
				pattern = t.normalizer.normalize(pattern)
			}
			t.normTrie.add(pattern, tok)
		} else {
			t.rawTrie.add(tok.content, tok)
		}
	}
	return nil
}

// Encode tokenizes text; addSpecialTokens applies the post-processor (e.g. BOS). Added tokens
// written in the text (such as "<|endoftext|>") are always recognised, as in Hugging Face
// tokenizers. Invalid UTF-8 is read as U+FFFD.
func (t *Tokenizer) Encode(text string, addSpecialTokens bool) []int {
	if !utf8.ValidString(text) {
		text = strings.ToValidUTF8(text, "\uFFFD")
	}
	ids := make([]int, 0, len(text)/3+4)
	first := true // the next stretch begins the text (Metaspace's prepend_scheme "first")
	var rawBuf, normBuf [8]segment
	for _, seg := range t.rawTrie.split(rawBuf[:0], text) {
		if seg.id >= 0 {
			ids = append(ids, seg.id)
			first = false
			continue
		}
		s := seg.text
		if t.normalizer != nil {
			s = t.normalizer.normalize(s)
		}
		for _, piece := range t.normTrie.split(normBuf[:0], s) {
			if piece.id >= 0 {
				ids = append(ids, piece.id)
			} else {
				ids = t.encodeText(ids, piece.text, first)
			}
			first = false
		}
	}
	if addSpecialTokens && t.post != nil {
		ids = t.post.process(ids)
	}
	return ids
}

// encodeText appends the ids of normalized text that holds no added token.
func (t *Tokenizer) encodeText(ids []int, s string, first bool) []int {
	if s == "" {
		return ids
	}
	if t.pre == nil {
		return t.model.tokenize(ids, s)
	}
	words := getWords()
	defer putWords(words)
	*words = t.pre.appendWords((*words)[:0], s, first)
	for _, w := range *words {
		if t.rawBytes {
			ids = t.model.tokenizeBytes(ids, w)
		} else {
			ids = t.model.tokenize(ids, w)
		}
	}
	return ids
}

// wordPool recycles word lists across Encode calls.
var wordPool = sync.Pool{New: func() any { w := make([]string, 0, 64); return &w }}

func getWords() *[]string  { return wordPool.Get().(*[]string) }
func putWords(w *[]string) { clear(*w); wordPool.Put(w) }

// Decode turns ids back to text, dropping special tokens when skipSpecialTokens. Ids outside
// the vocabulary are skipped; bytes that do not form UTF-8 become U+FFFD.
func (t *Tokenizer) Decode(ids []int, skipSpecialTokens bool) string {
	tokens := make([]string, 0, len(ids))
	for _, id := range ids {
		if a, ok := t.added[id]; ok {
			if !skipSpecialTokens || !a.special {
				tokens = append(tokens, a.content)
			}
			continue
		}
		if id >= 0 && id < len(t.model.tokens) && t.model.tokens[id] != "" {
			tokens = append(tokens, t.model.tokens[id])
		}
	}
	if t.dec == nil {
		return strings.Join(tokens, " ")
	}
	return strings.Join(t.dec.decodeChain(tokens), "")
}

// TokenID returns the id of a token string (added tokens first, then the model vocabulary).
func (t *Tokenizer) TokenID(token string) (int, bool) {
	if a, ok := t.byContent[token]; ok {
		return a.id, true
	}
	id, ok := t.model.vocab[token]
	return id, ok
}

// Token returns the token string of an id, as stored in the vocabulary (so a byte-level
// token shows "Ġ" for a space).
func (t *Tokenizer) Token(id int) (string, bool) {
	if a, ok := t.added[id]; ok {
		return a.content, true
	}
	if id >= 0 && id < len(t.model.tokens) && t.model.tokens[id] != "" {
		return t.model.tokens[id], true
	}
	return "", false
}

// IsSpecial reports whether id is a special added token (the ones Decode can skip).
func (t *Tokenizer) IsSpecial(id int) bool {
	a, ok := t.added[id]
	return ok && a.special
}

// VocabSize is one more than the largest id of the model vocabulary and the added tokens:
// the number of rows an embedding matrix needs (a checkpoint may pad it further).
func (t *Tokenizer) VocabSize() int { return t.vocabSize }
