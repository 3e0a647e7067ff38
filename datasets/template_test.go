package datasets

import (
	"path/filepath"
	"strings"
	"testing"
)

var conversation = []Message{
	{RoleSystem, "Be brief."},
	{RoleUser, "Hi there"},
	{RoleAssistant, "Hello!"},
	{RoleUser, " How are you? "},
}

func TestTemplates(t *testing.T) {
	llama3 := filepath.Join("testdata", "chat_templates", "llama3.tokenizer_config.json")
	qwen3 := filepath.Join("testdata", "chat_templates", "qwen3.tokenizer_config.json")
	cases := []struct {
		name     string
		cfg      TemplateConfig
		turns    []Message
		want     string
		wantResp string // Response("ok")
	}{
		{"hh single", TemplateConfig{Style: StyleHH}, []Message{{RoleUser, "Hi"}},
			"\n\nHuman: Hi\n\nAssistant:", " ok"},
		{"hh multi", TemplateConfig{Style: StyleHH}, conversation,
			"Be brief.\n\nHuman: Hi there\n\nAssistant: Hello!\n\nHuman:  How are you? " +
				"\n\nAssistant:", " ok"},
		{"plain", TemplateConfig{Style: StylePlain, Separator: "\n"},
			[]Message{{RoleUser, "Hi"}}, "Hi", "\nok"},
		{"plain system", TemplateConfig{Style: StylePlain, System: "S"},
			[]Message{{RoleUser, "Hi"}}, "S\n\nHi", "ok"},
		{"llama3", TemplateConfig{Style: StyleChat, TokenizerConfig: llama3,
			Vars: map[string]any{"bos_token": "<|begin_of_text|>"}}, conversation,
			"<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>" +
				"<|start_header_id|>user<|end_header_id|>\n\nHi there<|eot_id|>" +
				"<|start_header_id|>assistant<|end_header_id|>\n\nHello!<|eot_id|>" +
				"<|start_header_id|>user<|end_header_id|>\n\nHow are you?<|eot_id|>" +
				"<|start_header_id|>assistant<|end_header_id|>\n\n", "ok"},
		{"llama3 configured system", TemplateConfig{Style: StyleChat, TokenizerConfig: llama3,
			System: "S"}, []Message{{RoleUser, "Hi"}},
			"<|start_header_id|>system<|end_header_id|>\n\nS<|eot_id|>" +
				"<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>" +
				"<|start_header_id|>assistant<|end_header_id|>\n\n", "ok"},
		{"qwen3", TemplateConfig{Style: StyleChat, TokenizerConfig: qwen3}, conversation,
			"<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi there<|im_end|>\n" +
				"<|im_start|>assistant\nHello!<|im_end|>\n" +
				"<|im_start|>user\n How are you? <|im_end|>\n<|im_start|>assistant\n", "ok"},
		{"qwen3 single", TemplateConfig{Style: StyleChat, TokenizerConfig: qwen3},
			[]Message{{RoleUser, "Hi"}},
			"<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n", "ok"},
		{"qwen3 no thinking", TemplateConfig{Style: StyleChat, TokenizerConfig: qwen3,
			Vars: map[string]any{"enable_thinking": false}}, []Message{{RoleUser, "Hi"}},
			"<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n", "ok"},
		{"qwen3 reasoning history", TemplateConfig{Style: StyleChat, TokenizerConfig: qwen3},
			[]Message{{RoleUser, "a"}, {RoleAssistant, "<think>\nhmm\n</think>\n\nb"},
				{RoleUser, "c"}},
			"<|im_start|>user\na<|im_end|>\n<|im_start|>assistant\nb<|im_end|>\n" +
				"<|im_start|>user\nc<|im_end|>\n<|im_start|>assistant\n", "ok"},
		{"inline", TemplateConfig{Style: StyleChat, ChatTemplate: "{% for m in messages %}" +
			"[{{ m.role }}]\n{{ m.content }}\n{% endfor %}{% if add_generation_prompt %}[a]{% endif %}"},
			[]Message{{RoleUser, "Hi"}}, "[user]\nHi\n[a]", "ok"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tpl, err := NewTemplate(tc.cfg, "")
			if err != nil {
				t.Fatal(err)
			}
			got, err := tpl.Prompt(tc.turns)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("Prompt:\n got %q\nwant %q", got, tc.want)
			}
			if r := tpl.Response("ok"); r != tc.wantResp {
				t.Errorf("Response = %q, want %q", r, tc.wantResp)
			}
		})
	}
}

func TestTemplateErrors(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name   string
		cfg    TemplateConfig
		wantIn string
	}{
		{"no chat template", TemplateConfig{Style: StyleChat,
			TokenizerConfig: writeFile(t, dir, "a.json", `{"eos_token": "x"}`)}, "no chat_template"},
		{"parse error", TemplateConfig{Style: StyleChat, ChatTemplate: "{% for %}"}, "parse"},
		{"missing file", TemplateConfig{Style: StyleChat, TokenizerConfig: "/nonexistent.json"},
			"tokenizer_config"},
		{"bad json", TemplateConfig{Style: StyleChat,
			TokenizerConfig: writeFile(t, dir, "b.json", `{"chat_template": 3}`)}, "chat_template"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewTemplate(tc.cfg, "")
			if err == nil || !strings.Contains(err.Error(), tc.wantIn) {
				t.Fatalf("NewTemplate error %v, want one containing %q", err, tc.wantIn)
			}
		})
	}

	// A template that raises fails at render time with its message.
	tpl, err := NewTemplate(TemplateConfig{Style: StyleChat,
		ChatTemplate: "{{ raise_exception('roles must alternate') }}"}, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tpl.Prompt([]Message{{RoleUser, "x"}}); err == nil ||
		!strings.Contains(err.Error(), "roles must alternate") {
		t.Fatalf("Prompt error %v, want the raised message", err)
	}
}

func TestReadTokenizerConfig(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "tokenizer_config.json", `{
		"bos_token": {"content": "<s>", "lstrip": false},
		"eos_token": "</s>",
		"chat_template": [{"name": "tool_use", "template": "T"}, {"name": "default", "template": "D"}]}`)
	got, err := ReadTokenizerConfig(dir)
	if err != nil {
		t.Fatal(err)
	}
	if *got != (TokenizerConfigFile{ChatTemplate: "D", BOSToken: "<s>", EOSToken: "</s>"}) {
		t.Errorf("got %+v", *got)
	}
	// The eos token the file names is used when the template config sets none.
	tpl, err := NewTemplate(TemplateConfig{Style: StyleHH, TokenizerConfig: dir}, "")
	if err != nil || tpl.EOSToken != "</s>" {
		t.Fatalf("EOSToken %q, err %v; want </s>", tpl.EOSToken, err)
	}
	tpl, err = NewTemplate(TemplateConfig{Style: StyleHH, TokenizerConfig: dir, EOSToken: "none"}, "")
	if err != nil || tpl.EOSToken != "" {
		t.Fatalf("EOSToken %q, err %v; want none", tpl.EOSToken, err)
	}
}
