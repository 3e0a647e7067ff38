package tokenizer

import (
	"encoding/json"
	"fmt"
)

// postProcessor adds the model's special tokens around the ids of one sequence.
type postProcessor interface {
	process(ids []int) []int
}

// parsePostProcessor builds the post-processor at JSON key key; a null one is nil.
func parsePostProcessor(raw json.RawMessage, key string) (postProcessor, error) {
	if isNull(raw) {
		return nil, nil
	}
	typ, err := componentType(raw, key)
	if err != nil {
		return nil, err
	}
	switch typ {
	case "TemplateProcessing":
		return parseTemplate(raw, key)
	case "ByteLevel":
		// It only trims offsets, which Encode does not return.
		return nil, nil
	case "Sequence":
		seq, err := parseSequence(raw, key, "processors", parsePostProcessor)
		return sequenceProcessor(seq), err
	case "RobertaProcessing", "BertProcessing":
		// Each of "cls" and "sep" is a [token, id] pair.
		var cfg struct {
			Sep [2]json.RawMessage `json:"sep"`
			Cls [2]json.RawMessage `json:"cls"`
		}
		if err := decodeAt(raw, key, &cfg); err != nil {
			return nil, err
		}
		var cls, sep int
		if err := decodeAt(cfg.Cls[1], key+".cls[1]", &cls); err != nil {
			return nil, err
		}
		if err := decodeAt(cfg.Sep[1], key+".sep[1]", &sep); err != nil {
			return nil, err
		}
		return templateProcessor{{ids: []int{cls}}, {sequence: true}, {ids: []int{sep}}}, nil
	}
	return nil, unsupported(key+".type", "post-processor", typ)
}

// templatePiece is one item of a template: fixed special-token ids, or the sequence itself.
type templatePiece struct {
	ids      []int
	sequence bool
}

// templateProcessor is TemplateProcessing's "single" template, e.g. "<s> $A".
type templateProcessor []templatePiece

func parseTemplate(raw json.RawMessage, key string) (templateProcessor, error) {
	var cfg struct {
		Single []struct {
			SpecialToken *struct {
				ID string `json:"id"`
			} `json:"SpecialToken"`
			Sequence *struct {
				ID string `json:"id"`
			} `json:"Sequence"`
		} `json:"single"`
		SpecialTokens map[string]struct {
			IDs []int `json:"ids"`
		} `json:"special_tokens"`
	}
	if err := decodeAt(raw, key, &cfg); err != nil {
		return nil, err
	}
	if len(cfg.Single) == 0 {
		return templateProcessor{{sequence: true}}, nil // no template: the sequence alone
	}
	var t templateProcessor
	for i, item := range cfg.Single {
		itemKey := fmt.Sprintf("%s.single[%d]", key, i)
		switch {
		case item.SpecialToken != nil:
			st, ok := cfg.SpecialTokens[item.SpecialToken.ID]
			if !ok {
				return nil, errAt(itemKey, "special token %q missing from %s.special_tokens",
					item.SpecialToken.ID, key)
			}
			t = append(t, templatePiece{ids: st.IDs})
		case item.Sequence != nil:
			if item.Sequence.ID != "A" {
				return nil, errAt(itemKey, "single template refers to sequence %q", item.Sequence.ID)
			}
			t = append(t, templatePiece{sequence: true})
		default:
			return nil, errAt(itemKey, "want SpecialToken or Sequence")
		}
	}
	return t, nil
}

func (t templateProcessor) process(ids []int) []int {
	n := len(ids)
	for _, p := range t {
		n += len(p.ids)
	}
	out := make([]int, 0, n)
	for _, p := range t {
		if p.sequence {
			out = append(out, ids...)
		} else {
			out = append(out, p.ids...)
		}
	}
	return out
}

// sequenceProcessor applies its members in order.
type sequenceProcessor []postProcessor

func (seq sequenceProcessor) process(ids []int) []int {
	for _, p := range seq {
		ids = p.process(ids)
	}
	return ids
}
