package datasets

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

// Row formats, the values of a dimension's `format` key.
const (
	// FormatPKU is PKU-SafeRLHF / BeaverTails: prompt, response_0, response_1 and label
	// columns (better_response_id, safer_response_id, ...), is_response_{0,1}_safe.
	FormatPKU = "pku-saferlhf"
	// FormatHH is Anthropic HH-RLHF: full transcripts {chosen, rejected} split at the last
	// "\n\nAssistant:" into a shared prompt and two responses.
	FormatHH = "hh-rlhf"
	// FormatPreference is generic {prompt, chosen, rejected}; prompt may be a message list
	// and chosen/rejected may be message lists ending in the assistant's answer.
	FormatPreference = "preference"
	// FormatSFT is generic {prompt, response} or {messages: [{role, content}, ...]} whose
	// last message is the assistant's response.
	FormatSFT = "sft"
	// FormatPrompt is prompt-only rows {prompt} (or {messages}) for generation and RLHF.
	FormatPrompt = "prompt"
)

// formatAliases maps accepted spellings to the canonical format names.
var formatAliases = map[string]string{
	FormatPKU: FormatPKU, "pku": FormatPKU, "beavertails": FormatPKU, "pku-safe-rlhf": FormatPKU,
	FormatHH: FormatHH, "hh": FormatHH,
	FormatPreference: FormatPreference, "pairs": FormatPreference,
	FormatSFT: FormatSFT, "messages": FormatSFT,
	FormatPrompt: FormatPrompt, "prompts": FormatPrompt,
}

// Formats lists the canonical row format names.
func Formats() []string {
	return []string{FormatPKU, FormatHH, FormatPreference, FormatSFT, FormatPrompt}
}

func canonicalFormat(f string) string {
	if c, ok := formatAliases[strings.ToLower(strings.TrimSpace(f))]; ok {
		return c
	}
	return f
}

func knownFormat(f string) bool {
	_, ok := formatAliases[f]
	return ok
}

// Kind is the kind of example a format yields.
type Kind int

// Example kinds.
const (
	KindPreference Kind = iota // prompt, chosen, rejected
	KindSFT                    // prompt, response
	KindPrompt                 // prompt only
)

// String returns preference, sft or prompt.
func (k Kind) String() string {
	switch k {
	case KindPreference:
		return "preference"
	case KindSFT:
		return "sft"
	case KindPrompt:
		return "prompt"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

func kindOf(format string) Kind {
	switch format {
	case FormatSFT:
		return KindSFT
	case FormatPrompt:
		return KindPrompt
	}
	return KindPreference
}

// kindFor is the kind of example a dimension yields from rows of a (canonical) format: the
// format's own kind, or SFT for a pair format under sft: preferred.
func kindFor(format string, d DimensionConfig) Kind {
	k := kindOf(format)
	if k == KindPreference && d.SFT == SFTPreferred {
		return KindSFT
	}
	return k
}

// logicalColumns are the field names a dimension's `columns` map may rename.
var logicalColumns = []string{"prompt", "chosen", "rejected", "response", "messages",
	"response_0", "response_1", "safe_0", "safe_1"}

var defaultColumns = map[string]string{
	"prompt": "prompt", "chosen": "chosen", "rejected": "rejected", "response": "response",
	"messages": "messages", "response_0": "response_0", "response_1": "response_1",
	"safe_0": "is_response_0_safe", "safe_1": "is_response_1_safe",
}

func knownColumn(name string) bool {
	_, ok := defaultColumns[name]
	return ok
}

// columns maps logical field names to a file's column names.
type columns map[string]string

func columnsFor(overrides map[string]string) columns {
	c := columns{}
	for k, v := range defaultColumns {
		c[k] = v
	}
	for k, v := range overrides {
		c[k] = v
	}
	return c
}

// detectFormat picks a row format from the fields of a record.
func detectFormat(rec record, cols columns) (string, error) {
	has := func(logical string) bool {
		v, ok := rec.fields[cols[logical]]
		return ok && !isNull(v)
	}
	switch {
	case has("response_0") && has("response_1"):
		return FormatPKU, nil
	case has("chosen") && has("rejected") && has("prompt"):
		return FormatPreference, nil
	case has("chosen") && has("rejected"):
		if isString(rec.fields[cols["chosen"]]) {
			return FormatHH, nil
		}
		return FormatPreference, nil
	case has("messages"):
		return FormatSFT, nil
	case has("prompt") && has("response"):
		return FormatSFT, nil
	case has("prompt"):
		return FormatPrompt, nil
	}
	names := make([]string, 0, len(rec.fields))
	for k := range rec.fields {
		names = append(names, k)
	}
	sort.Strings(names)
	return "", fmt.Errorf("datasets: %s: cannot detect the row format from fields [%s]; "+
		"set format to one of %s", rec.pos, strings.Join(names, ", "), strings.Join(Formats(), ", "))
}

// Message is one turn of a conversation.
type Message struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

// Roles used in messages.
const (
	RoleSystem    = "system"
	RoleUser      = "user"
	RoleAssistant = "assistant"
)

// textExample is a row after its format is applied and before tokenization.
type textExample struct {
	pos      position
	prompt   []Message // turns before the response; the last one is usually the user's
	chosen   string    // preference: the preferred response; sft: the response
	rejected string    // preference only
}

// splitKey is the text the train/eval split hashes: the prompt turns, so that every
// dimension reading the same prompts holds out the same ones.
func (e *textExample) splitKey() string {
	var b strings.Builder
	for _, m := range e.prompt {
		b.WriteString(m.Role)
		b.WriteByte(0)
		b.WriteString(m.Content)
		b.WriteByte(0)
	}
	return b.String()
}

func isNull(v json.RawMessage) bool {
	return bytes.Equal(bytes.TrimSpace(v), []byte("null"))
}

func isString(v json.RawMessage) bool {
	v = bytes.TrimSpace(v)
	return len(v) > 0 && v[0] == '"'
}

// str reads a string field; a missing, null or non-string field is a problem naming it.
func (r record) str(cols columns, logical string) (string, *rowProblem) {
	name := cols[logical]
	v, ok := r.fields[name]
	if !ok || isNull(v) {
		return "", invalid(ReasonMissingField, "no field "+name)
	}
	var s string
	if err := json.Unmarshal(v, &s); err != nil {
		return "", invalid(ReasonMissingField, "field "+name+" is not a string")
	}
	return s, nil
}

// conversation reads a field that is either a string (one user turn) or a message list.
func (r record) conversation(cols columns, logical string) ([]Message, *rowProblem) {
	name := cols[logical]
	v, ok := r.fields[name]
	if !ok || isNull(v) {
		return nil, invalid(ReasonMissingField, "no field "+name)
	}
	if isString(v) {
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			return nil, invalid(ReasonMissingField, "field "+name+" is not a string")
		}
		return []Message{{Role: RoleUser, Content: s}}, nil
	}
	var msgs []Message
	if err := json.Unmarshal(v, &msgs); err != nil {
		return nil, invalid(ReasonMissingField,
			"field "+name+" is neither a string nor a list of {role, content}")
	}
	for i, m := range msgs {
		switch m.Role {
		case RoleSystem, RoleUser, RoleAssistant, "tool":
		default:
			return nil, invalid(ReasonMissingField, fmt.Sprintf("%s[%d].role %q is not "+
				"system, user, assistant or tool", name, i, m.Role))
		}
	}
	return msgs, nil
}

// number reads a numeric or boolean field as a float (true is 1); null is reported by ok.
func (r record) number(name string) (val float64, null bool, p *rowProblem) {
	v, ok := r.fields[name]
	if !ok {
		return 0, false, invalid(ReasonMissingField, "no field "+name)
	}
	if isNull(v) {
		return 0, true, nil
	}
	var b bool
	if err := json.Unmarshal(v, &b); err == nil {
		if b {
			return 1, false, nil
		}
		return 0, false, nil
	}
	if err := json.Unmarshal(v, &val); err != nil {
		return 0, false, invalid(ReasonMissingField, "field "+name+" is not a number or bool")
	}
	return val, false, nil
}
