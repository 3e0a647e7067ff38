package datasets

import (
	"fmt"
)

// encoder renders and tokenizes text examples and applies the truncation policy:
//
//   - a prompt longer than maxPrompt keeps its last maxPrompt tokens (keep_end) or its first;
//   - a response longer than maxLen − len(prompt) keeps its first tokens (losing its EOS).
//
// Responses are tokenized together with their prompt and split at the prompt's length when
// the joint ids start with the prompt's own ids, so that tokens merging across the boundary
// are tokenized as the model will see them; otherwise (counted in boundaryMismatch) the
// response is tokenized on its own.
type encoder struct {
	tok       Tokenizer
	tpl       *Template
	eos       int // appended to every response; -1 for none
	maxPrompt int // 0: no cap
	maxLen    int // 0: no cap
	keepEnd   bool

	cache map[string][]int // memo of Encode, shared by dimensions reading the same rows

	boundaryMismatch int
}

// encoded is one tokenized example before it is given an id and a dimension.
type encoded struct {
	prompt    []int
	responses [][]int // chosen (or the SFT response), then rejected
	rawPrompt int     // prompt tokens before truncation
	rawResp   []int   // response tokens before truncation, EOS included
	promptCut bool
	respCut   bool // some response was cut
}

func newEncoder(tok Tokenizer, tpl *Template, cfg *DataConfig) (*encoder, error) {
	e := &encoder{tok: tok, tpl: tpl, eos: -1, maxPrompt: cfg.MaxPromptLen, maxLen: cfg.MaxLen,
		keepEnd: cfg.PromptTruncation != defaultKeepStart, cache: map[string][]int{}}
	if tpl.EOSToken != "" {
		id, ok := tok.TokenID(tpl.EOSToken)
		if !ok {
			return nil, fmt.Errorf("datasets: template.eos_token: %q is not a token of the "+
				"tokenizer", tpl.EOSToken)
		}
		e.eos = id
	}
	return e, nil
}

func (e *encoder) encode(text string, special bool) []int {
	key := text
	if special {
		key = "\x01" + text
	} else {
		key = "\x00" + text
	}
	if ids, ok := e.cache[key]; ok {
		return ids
	}
	ids := e.tok.Encode(text, special)
	e.cache[key] = ids
	return ids
}

// encodeExample renders and tokenizes a text example with its responses (none for
// prompt-only rows).
func (e *encoder) encodeExample(ex *textExample, responses ...string) (*encoded, *rowProblem) {
	promptText, err := e.tpl.Prompt(ex.prompt)
	if err != nil {
		return nil, &rowProblem{reason: ReasonTemplateFailed, err: err}
	}
	special := e.tpl.AddSpecialTokens
	prompt := e.encode(promptText, special)
	out := &encoded{rawPrompt: len(prompt)}

	// Tokenize each response in the context of the prompt.
	for _, r := range responses {
		rt := e.tpl.Response(r)
		// TODO: a tokenizer whose post-processor appends EOS makes the joint ids fail the
		// prefix test below; such responses are then tokenized on their own.
		full := e.encode(promptText+rt, special)
		var ids []int
		if hasPrefix(full, prompt) {
			ids = full[len(prompt):]
		} else {
			e.boundaryMismatch++
			ids = e.encode(rt, false)
		}
		ids = append(ids[:len(ids):len(ids)], e.eosIDs()...)
		out.responses = append(out.responses, ids)
		out.rawResp = append(out.rawResp, len(ids))
	}

	// Truncate the prompt, then the responses to what max_len leaves.
	// TODO: keep_end drops a leading BOS with the start of the prompt; re-insert it once the
	// tokenizer interface says which ids are special.
	if e.maxPrompt > 0 && len(prompt) > e.maxPrompt {
		out.promptCut = true
		if e.keepEnd {
			prompt = prompt[len(prompt)-e.maxPrompt:]
		} else {
			prompt = prompt[:e.maxPrompt]
		}
	}
	out.prompt = prompt
	if e.maxLen > 0 {
		room := e.maxLen - len(prompt)
		for i, r := range out.responses {
			if len(r) > room {
				out.responses[i] = r[:room]
				out.respCut = true
			}
		}
	}
	return out, nil
}

func (e *encoder) eosIDs() []int {
	if e.eos < 0 {
		return nil
	}
	return []int{e.eos}
}

func hasPrefix(s, prefix []int) bool {
	if len(prefix) > len(s) {
		return false
	}
	for i, v := range prefix {
		if s[i] != v {
			return false
		}
	}
	return true
}
