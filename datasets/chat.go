package datasets

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/nikolalohinski/gonja/v2"
	"github.com/nikolalohinski/gonja/v2/config"
	"github.com/nikolalohinski/gonja/v2/exec"
	"github.com/nikolalohinski/gonja/v2/loaders"
)

// TokenizerConfigFile is what this package reads from a Hugging Face tokenizer_config.json.
type TokenizerConfigFile struct {
	ChatTemplate string // the Jinja chat template ("default" one when several are named)
	BOSToken     string
	EOSToken     string
}

// ReadTokenizerConfig reads chat_template, bos_token and eos_token from a
// tokenizer_config.json, or from the one in a folder. A path ending in .jinja is read as the
// chat template itself.
func ReadTokenizerConfig(path string) (*TokenizerConfigFile, error) {
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		path = filepath.Join(path, "tokenizer_config.json")
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if strings.HasSuffix(path, ".jinja") {
		return &TokenizerConfigFile{ChatTemplate: string(raw)}, nil
	}
	var doc struct {
		ChatTemplate json.RawMessage `json:"chat_template"`
		BOSToken     json.RawMessage `json:"bos_token"`
		EOSToken     json.RawMessage `json:"eos_token"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	out := &TokenizerConfigFile{}
	if out.ChatTemplate, err = chatTemplateField(doc.ChatTemplate); err != nil {
		return nil, fmt.Errorf("%s: chat_template: %w", path, err)
	}
	if out.BOSToken, err = addedTokenField(doc.BOSToken); err != nil {
		return nil, fmt.Errorf("%s: bos_token: %w", path, err)
	}
	if out.EOSToken, err = addedTokenField(doc.EOSToken); err != nil {
		return nil, fmt.Errorf("%s: eos_token: %w", path, err)
	}
	return out, nil
}

// chatTemplateField reads chat_template: a string, or a list of {name, template} from which
// the one named "default" (else the first) is taken.
func chatTemplateField(v json.RawMessage) (string, error) {
	if len(v) == 0 || isNull(v) {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(v, &s); err == nil {
		return s, nil
	}
	var named []struct {
		Name     string `json:"name"`
		Template string `json:"template"`
	}
	if err := json.Unmarshal(v, &named); err != nil {
		return "", errors.New("neither a string nor a list of {name, template}")
	}
	for _, n := range named {
		if n.Name == "default" {
			return n.Template, nil
		}
	}
	if len(named) > 0 {
		return named[0].Template, nil
	}
	return "", nil
}

// addedTokenField reads a special token given as a string or as {"content": ...}.
func addedTokenField(v json.RawMessage) (string, error) {
	if len(v) == 0 || isNull(v) {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(v, &s); err == nil {
		return s, nil
	}
	var obj struct {
		Content string `json:"content"`
	}
	if err := json.Unmarshal(v, &obj); err != nil {
		return "", errors.New("neither a string nor {content}")
	}
	return obj.Content, nil
}

// chatTemplate is a parsed Jinja chat template with the variables every render gets.
type chatTemplate struct {
	tpl  *exec.Template
	vars map[string]any
}

const chatTemplateName = "/chat_template.jinja"

// newChatTemplate parses src the way Hugging Face renders chat templates (trim_blocks and
// lstrip_blocks on), with templates read from memory only, so {% include %} cannot reach
// the file system.
func newChatTemplate(src, bos, eos string, extra map[string]any) (ct *chatTemplate, err error) {
	defer func() {
		if r := recover(); r != nil {
			ct, err = nil, fmt.Errorf("parse: %v", r)
		}
	}()
	loader, err := loaders.NewMemoryLoader(map[string]string{chatTemplateName: src})
	if err != nil {
		return nil, err
	}
	cfg := config.New()
	cfg.TrimBlocks = true
	cfg.LeftStripBlocks = true
	tpl, err := exec.NewTemplate(chatTemplateName, cfg, loader, gonja.DefaultEnvironment)
	if err != nil {
		return nil, fmt.Errorf("parse: %w", err)
	}
	vars := map[string]any{
		"bos_token":             bos,
		"eos_token":             eos,
		"add_generation_prompt": true,
		"raise_exception": func(msg string) (string, error) {
			return "", fmt.Errorf("template raised: %s", msg)
		},
	}
	for k, v := range extra {
		vars[k] = v
	}
	return &chatTemplate{tpl: tpl, vars: vars}, nil
}

// render runs the template on turns with the generation prompt appended.
func (c *chatTemplate) render(turns []Message) (out string, err error) {
	defer func() {
		if r := recover(); r != nil {
			out, err = "", fmt.Errorf("render: %v", r)
		}
	}()
	msgs := make([]map[string]any, len(turns))
	for i, m := range turns {
		msgs[i] = map[string]any{"role": m.Role, "content": m.Content}
	}
	data := make(map[string]any, len(c.vars)+1)
	for k, v := range c.vars {
		data[k] = v
	}
	data["messages"] = msgs
	out, err = c.tpl.ExecuteToString(exec.NewContext(data))
	if err != nil {
		return "", fmt.Errorf("render: %w", err)
	}
	return out, nil
}
