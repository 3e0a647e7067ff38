package datasets

import (
	"fmt"
	"strings"
)

// Template renders prompt turns into the text a model is conditioned on, and says how a
// response follows that text. Training text is Prompt(turns) + Response(text); the response
// tokens alone carry the loss.
type Template struct {
	style     string
	separator string
	system    string
	chat      *chatTemplate // style chat only
	// EOSToken is the token text appended (as one id) after every response; empty for none.
	EOSToken string
	// AddSpecialTokens is passed to the tokenizer when encoding prompts.
	AddSpecialTokens bool
}

// NewTemplate builds the template a config asks for. Relative paths in tc resolve against
// baseDir.
func NewTemplate(tc TemplateConfig, baseDir string) (*Template, error) {
	t := &Template{style: tc.Style, separator: tc.Separator, system: tc.System,
		AddSpecialTokens: tc.addSpecial()}
	if t.style == "" {
		t.style = StyleHH
	}
	var tokCfg *TokenizerConfigFile
	if tc.TokenizerConfig != "" {
		var err error
		path := (&DataConfig{BaseDir: baseDir}).Resolve(tc.TokenizerConfig)
		if tokCfg, err = ReadTokenizerConfig(path); err != nil {
			return nil, fmt.Errorf("datasets: template.tokenizer_config: %w", err)
		}
	}

	// The EOS token: explicit, "none", or the tokenizer config's.
	switch {
	case tc.EOSToken == "none":
	case tc.EOSToken != "":
		t.EOSToken = tc.EOSToken
	case tokCfg != nil:
		t.EOSToken = tokCfg.EOSToken
	}

	switch t.style {
	case StyleHH, StylePlain:
	case StyleChat:
		src := tc.ChatTemplate
		if src == "" && tokCfg != nil {
			src = tokCfg.ChatTemplate
		}
		if src == "" {
			return nil, fmt.Errorf("datasets: template.tokenizer_config: %s has no chat_template",
				tc.TokenizerConfig)
		}
		var bos, eos string
		if tokCfg != nil {
			bos, eos = tokCfg.BOSToken, tokCfg.EOSToken
		}
		chat, err := newChatTemplate(src, bos, eos, tc.Vars)
		if err != nil {
			return nil, fmt.Errorf("datasets: template.chat_template: %w", err)
		}
		t.chat = chat
	default:
		return nil, fmt.Errorf("datasets: template.style: %q is not hh, plain or chat", t.style)
	}
	return t, nil
}

// Style returns hh, plain or chat.
func (t *Template) Style() string { return t.style }

// Prompt renders prompt turns, ending where the model's response begins (for chat templates,
// after the generation prompt). The configured system prompt is put first when the turns
// hold none.
func (t *Template) Prompt(turns []Message) (string, error) {
	if t.system != "" && (len(turns) == 0 || turns[0].Role != RoleSystem) {
		turns = append([]Message{{Role: RoleSystem, Content: t.system}}, turns...)
	}
	switch t.style {
	case StylePlain:
		parts := make([]string, len(turns))
		for i, m := range turns {
			parts[i] = m.Content
		}
		return strings.Join(parts, "\n\n"), nil
	case StyleChat:
		return t.chat.render(turns)
	default:
		return renderHH(turns), nil
	}
}

// Response returns the text of a response as it follows the rendered prompt: after one space
// in style hh, after the separator in style plain, unchanged in style chat.
func (t *Template) Response(text string) string {
	switch t.style {
	case StylePlain:
		return t.separator + text
	case StyleChat:
		return text
	default:
		return " " + text
	}
}

// renderHH writes turns as "\n\nHuman: …\n\nAssistant: …" and ends with "\n\nAssistant:".
// A system turn is written as is, without a marker; an empty turn is its marker alone.
func renderHH(turns []Message) string {
	var b strings.Builder
	for _, m := range turns {
		switch m.Role {
		case RoleSystem:
			b.WriteString(m.Content)
			continue
		case RoleAssistant:
			b.WriteString(hhAssistant)
		default:
			b.WriteString(hhHuman)
		}
		if m.Content != "" {
			b.WriteByte(' ')
			b.WriteString(m.Content)
		}
	}
	b.WriteString(hhAssistant)
	return b.String()
}
