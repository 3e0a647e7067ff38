package datasets

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// A rowParser turns one record into a text example, or says why it cannot.
type rowParser func(rec record) (textExample, *rowProblem)

// newRowParser returns the parser of a (canonical) row format for one dimension.
func newRowParser(format string, d DimensionConfig) rowParser {
	cols := columnsFor(d.Columns)
	switch format {
	case FormatPKU:
		return func(rec record) (textExample, *rowProblem) { return parsePKU(rec, cols, d) }
	case FormatHH:
		return func(rec record) (textExample, *rowProblem) { return parseHH(rec, cols) }
	case FormatPreference:
		return func(rec record) (textExample, *rowProblem) { return parsePreference(rec, cols) }
	case FormatSFT:
		return func(rec record) (textExample, *rowProblem) { return parseSFT(rec, cols) }
	default:
		return func(rec record) (textExample, *rowProblem) { return parsePrompt(rec, cols) }
	}
}

// parsePKU reads a PKU-SafeRLHF / BeaverTails row and orders its pair by the dimension's
// label.
func parsePKU(rec record, cols columns, d DimensionConfig) (textExample, *rowProblem) {
	prompt, p := rec.conversation(cols, "prompt")
	if p != nil {
		return textExample{}, p
	}
	var resp [2]string
	for i, logical := range []string{"response_0", "response_1"} {
		if resp[i], p = rec.str(cols, logical); p != nil {
			return textExample{}, p
		}
	}
	if p := checkPair(prompt, resp[0], resp[1]); p != nil {
		return textExample{}, p
	}

	// Order the pair by the label; a tie is dropped or invalid depending on drop_ties.
	winner, tie, p := pkuWinner(rec, d, resp)
	if p != nil {
		return textExample{}, p
	}
	if tie {
		if d.DropTies {
			return textExample{}, filtered(FilterTie)
		}
		return textExample{}, invalid(ReasonTie, "label "+d.Label)
	}

	if d.OnlySafetyDiffers {
		s0, null0, p := rec.number(cols["safe_0"])
		if p != nil {
			return textExample{}, p
		}
		s1, null1, p := rec.number(cols["safe_1"])
		if p != nil {
			return textExample{}, p
		}
		if null0 || null1 {
			return textExample{}, invalid(ReasonMissingField, "null safety flag")
		}
		if s0 == s1 {
			return textExample{}, filtered(FilterSafetySame)
		}
	}
	return textExample{pos: rec.pos, prompt: prompt, chosen: resp[winner],
		rejected: resp[1-winner]}, nil
}

// pkuWinner returns the index (0 or 1) of the preferred response under d's label: an id
// column, a per-response score column pattern, or a computed label scoring resp.
func pkuWinner(rec record, d DimensionConfig, resp [2]string) (winner int, tie bool,
	p *rowProblem) {
	switch {
	case d.Label == LabelLength:
		return scoreWinner([2]float64{float64(utf8.RuneCountInString(resp[0])),
			float64(utf8.RuneCountInString(resp[1]))}, d.Prefer)
	case strings.Contains(d.Label, "{}"):
		var s [2]float64
		for i := range s {
			name := strings.Replace(d.Label, "{}", fmt.Sprint(i), 1)
			v, null, p := rec.number(name)
			if p != nil {
				return 0, false, p
			}
			if null {
				return 0, true, nil
			}
			s[i] = v
		}
		return scoreWinner(s, d.Prefer)
	}
	id, null, p := rec.number(d.Label)
	if p != nil {
		return 0, false, p
	}
	switch {
	case null || id == -1:
		return 0, true, nil
	case id == 0 || id == 1:
		return int(id), false, nil
	}
	return 0, false, invalid(ReasonLabelRange, fmt.Sprintf("%s = %v, want 0 or 1", d.Label, id))
}

// scoreWinner returns the index of the response whose score prefer (higher or lower) picks;
// equal scores are a tie.
func scoreWinner(s [2]float64, prefer string) (winner int, tie bool, p *rowProblem) {
	if s[0] == s[1] {
		return 0, true, nil
	}
	better := 0
	if s[1] > s[0] {
		better = 1
	}
	if prefer == "lower" {
		better = 1 - better
	}
	return better, false, nil
}

// checkPair reports an empty prompt, an empty response or identical responses.
func checkPair(prompt []Message, a, b string) *rowProblem {
	if emptyConversation(prompt) {
		return invalid(ReasonEmptyPrompt, "")
	}
	if strings.TrimSpace(a) == "" || strings.TrimSpace(b) == "" {
		return invalid(ReasonEmptyResponse, "")
	}
	if a == b {
		return invalid(ReasonIdentical, "")
	}
	return nil
}

func emptyConversation(msgs []Message) bool {
	for _, m := range msgs {
		if strings.TrimSpace(m.Content) != "" {
			return false
		}
	}
	return true
}

// HH-RLHF turn markers.
const (
	hhHuman     = "\n\nHuman:"
	hhAssistant = "\n\nAssistant:"
)

// parseHH splits HH-RLHF transcripts at their last "\n\nAssistant:" into a shared prompt
// (parsed into turns) and the two responses.
func parseHH(rec record, cols columns) (textExample, *rowProblem) {
	chosen, p := rec.str(cols, "chosen")
	if p != nil {
		return textExample{}, p
	}
	rejected, p := rec.str(cols, "rejected")
	if p != nil {
		return textExample{}, p
	}
	pc, rc, okc := splitLastAssistant(chosen)
	pr, rr, okr := splitLastAssistant(rejected)
	if !okc || !okr {
		return textExample{}, invalid(ReasonNoAssistant, `no "\n\nAssistant:" in a transcript`)
	}
	if pc != pr {
		return textExample{}, invalid(ReasonPromptsDiffer, "")
	}
	prompt := ParseHHTranscript(pc)
	if p := checkPair(prompt, rc, rr); p != nil {
		return textExample{}, p
	}
	return textExample{pos: rec.pos, prompt: prompt, chosen: rc, rejected: rr}, nil
}

// splitLastAssistant splits a transcript before its last "\n\nAssistant:" marker; the
// response loses the single space that follows the marker.
func splitLastAssistant(t string) (prompt, response string, ok bool) {
	i := strings.LastIndex(t, hhAssistant)
	if i < 0 {
		return "", "", false
	}
	return t[:i], strings.TrimPrefix(t[i+len(hhAssistant):], " "), true
}

// ParseHHTranscript parses "\n\nHuman: …\n\nAssistant: …" text into turns. Text before the
// first marker becomes a system turn; each turn's content loses the one space after its
// marker. Rendering the turns with the hh template gives the text back.
func ParseHHTranscript(t string) []Message {
	var msgs []Message
	role, rest := "", t
	for {
		next, nextRole, markLen := nextHHMarker(rest)
		content := rest
		if next >= 0 {
			content = rest[:next]
		}
		switch {
		case role == "" && content != "":
			msgs = append(msgs, Message{Role: RoleSystem, Content: content})
		case role != "":
			msgs = append(msgs, Message{Role: role, Content: strings.TrimPrefix(content, " ")})
		}
		if next < 0 {
			return msgs
		}
		role, rest = nextRole, rest[next+markLen:]
	}
}

// nextHHMarker finds the first Human or Assistant marker in s.
func nextHHMarker(s string) (at int, role string, length int) {
	h, a := strings.Index(s, hhHuman), strings.Index(s, hhAssistant)
	switch {
	case h < 0 && a < 0:
		return -1, "", 0
	case a < 0 || (h >= 0 && h < a):
		return h, RoleUser, len(hhHuman)
	default:
		return a, RoleAssistant, len(hhAssistant)
	}
}

// parsePreference reads a generic {prompt, chosen, rejected} row. chosen and rejected may be
// message lists ending in the assistant's turn; turns before it extend the prompt and must
// agree between the two.
func parsePreference(rec record, cols columns) (textExample, *rowProblem) {
	chosenTurns, p := rec.conversation(cols, "chosen")
	if p != nil {
		return textExample{}, p
	}
	rejectedTurns, p := rec.conversation(cols, "rejected")
	if p != nil {
		return textExample{}, p
	}
	chosenCtx, chosen, p := responseOf(chosenTurns, isString(rec.fields[cols["chosen"]]))
	if p != nil {
		return textExample{}, p
	}
	rejectedCtx, rejected, p := responseOf(rejectedTurns, isString(rec.fields[cols["rejected"]]))
	if p != nil {
		return textExample{}, p
	}
	if !sameTurns(chosenCtx, rejectedCtx) {
		return textExample{}, invalid(ReasonPromptsDiffer, "")
	}
	var prompt []Message
	if _, has := rec.fields[cols["prompt"]]; has {
		if prompt, p = rec.conversation(cols, "prompt"); p != nil {
			return textExample{}, p
		}
	}
	prompt = append(prompt, chosenCtx...)
	if p := checkPair(prompt, chosen, rejected); p != nil {
		return textExample{}, p
	}
	return textExample{pos: rec.pos, prompt: prompt, chosen: chosen, rejected: rejected}, nil
}

// responseOf splits a response field into context turns and the response text. A plain
// string field is the response itself.
func responseOf(turns []Message, plain bool) ([]Message, string, *rowProblem) {
	if plain {
		return nil, turns[0].Content, nil
	}
	if len(turns) == 0 || turns[len(turns)-1].Role != RoleAssistant {
		return nil, "", invalid(ReasonNoAssistant, "the last message is not the assistant's")
	}
	return turns[:len(turns)-1], turns[len(turns)-1].Content, nil
}

func sameTurns(a, b []Message) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// parseSFT reads {messages: [...]} (the last message is the response) or {prompt, response}.
func parseSFT(rec record, cols columns) (textExample, *rowProblem) {
	var prompt []Message
	var response string
	if v, has := rec.fields[cols["messages"]]; has && !isNull(v) {
		turns, p := rec.conversation(cols, "messages")
		if p != nil {
			return textExample{}, p
		}
		if prompt, response, p = responseOf(turns, false); p != nil {
			return textExample{}, p
		}
	} else {
		var p *rowProblem
		if prompt, p = rec.conversation(cols, "prompt"); p != nil {
			return textExample{}, p
		}
		if response, p = rec.str(cols, "response"); p != nil {
			return textExample{}, p
		}
	}
	if emptyConversation(prompt) {
		return textExample{}, invalid(ReasonEmptyPrompt, "")
	}
	if strings.TrimSpace(response) == "" {
		return textExample{}, invalid(ReasonEmptyResponse, "")
	}
	return textExample{pos: rec.pos, prompt: prompt, chosen: response}, nil
}

// parsePrompt reads a prompt-only row: {prompt} as a string or message list, or {messages}.
func parsePrompt(rec record, cols columns) (textExample, *rowProblem) {
	logical := "prompt"
	if _, has := rec.fields[cols["prompt"]]; !has {
		if _, hasMsgs := rec.fields[cols["messages"]]; hasMsgs {
			logical = "messages"
		}
	}
	prompt, p := rec.conversation(cols, logical)
	if p != nil {
		return textExample{}, p
	}
	if emptyConversation(prompt) {
		return textExample{}, invalid(ReasonEmptyPrompt, "")
	}
	return textExample{pos: rec.pos, prompt: prompt}, nil
}
