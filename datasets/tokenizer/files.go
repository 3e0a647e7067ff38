package tokenizer

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// gpt2EndOfText is GPT-2's one special token; a vocab/merges pair does not mark it, so the
// loader does (Hugging Face's GPT2Tokenizer does the same).
const gpt2EndOfText = "<|endoftext|>"

// LoadDir loads DIR/tokenizer.json, or falls back to GPT-2 style DIR/vocab.json +
// DIR/merges.txt, or to OpenAI's original names for the same pair, DIR/encoder.json +
// DIR/vocab.bpe.
func LoadDir(dir string) (*Tokenizer, error) {
	if p := filepath.Join(dir, "tokenizer.json"); exists(p) {
		return Load(p)
	}
	pairs := [][2]string{{"vocab.json", "merges.txt"}, {"encoder.json", "vocab.bpe"}}
	for _, pair := range pairs {
		vocab, merges := filepath.Join(dir, pair[0]), filepath.Join(dir, pair[1])
		if exists(vocab) && exists(merges) {
			return LoadVocabMerges(vocab, merges)
		}
	}
	return nil, fmt.Errorf("tokenizer: %s: %w: no tokenizer.json, vocab.json+merges.txt "+
		"or encoder.json+vocab.bpe", dir, fs.ErrNotExist)
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// LoadVocabMerges builds a GPT-2 byte-level BPE tokenizer from a vocabulary (a JSON object of
// token → id, vocab.json or encoder.json) and a merges file (one "a b" rule per line after an
// optional "#version" line, merges.txt or vocab.bpe). <|endoftext|>, when in the vocabulary,
// is a special added token.
func LoadVocabMerges(vocabPath, mergesPath string) (*Tokenizer, error) {
	data, err := os.ReadFile(vocabPath)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: read %s: %w", vocabPath, err)
	}
	var vocab map[string]int
	if err := json.Unmarshal(data, &vocab); err != nil {
		return nil, &FormatError{File: vocabPath, Err: fmt.Errorf("decode json: %w", err)}
	}
	mergesData, err := os.ReadFile(mergesPath)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: read %s: %w", mergesPath, err)
	}
	merges, err := parseMergesFile(mergesData)
	if err != nil {
		return nil, withFile(err, mergesPath)
	}
	model, err := newBPE(vocab, merges, bpeOptions{}, "vocab")
	if err != nil {
		// Merge errors come out under "vocab.merges[i]": name the merges file and the line.
		var fe *FormatError
		if errors.As(err, &fe) && strings.HasPrefix(fe.Key, "vocab.merges") {
			fe.File, fe.Key = mergesPath, "rule"+strings.TrimPrefix(fe.Key, "vocab.merges")
		}
		return nil, withFile(err, vocabPath)
	}
	t := &Tokenizer{
		model:    model,
		pre:      byteLevelPreTokenizer{useRegex: true, rawBytes: true},
		rawBytes: true,
		dec:      byteLevelDecoder{},
	}
	var added []addedJSON
	if id, ok := vocab[gpt2EndOfText]; ok {
		added = append(added, addedJSON{ID: &id, Content: gpt2EndOfText, Special: true})
	}
	// TODO: added_tokens.json and special_tokens_map.json beside the pair are not read.
	if err := t.addTokens(added); err != nil {
		return nil, withFile(err, vocabPath)
	}
	return t, nil
}

// parseMergesFile reads merge rules, one "a b" per line; a first line starting with
// "#version" and empty lines are skipped.
func parseMergesFile(data []byte) ([]mergeJSON, error) {
	var merges []mergeJSON
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimRight(sc.Text(), "\r")
		if text == "" || (line == 1 && strings.HasPrefix(text, "#version")) {
			continue
		}
		a, b, ok := strings.Cut(text, " ")
		if !ok || a == "" || b == "" || strings.Contains(b, " ") {
			return nil, errAt(fmt.Sprintf("line %d", line),
				"want two tokens separated by one space, got %q", text)
		}
		merges = append(merges, mergeJSON{a, b})
	}
	if err := sc.Err(); err != nil {
		return nil, errAt("", "scan: %w", err)
	}
	return merges, nil
}
