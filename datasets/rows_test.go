package datasets

import (
	"fmt"
	"strings"
	"testing"
)

func rec(t *testing.T, line string) record {
	t.Helper()
	r := parseJSONLine([]byte(line))
	if r.err != nil {
		t.Fatalf("parse %s: %v", line, r.err)
	}
	r.pos = position{file: "t.jsonl", line: 1}
	return r
}

func TestParsePKU(t *testing.T) {
	row := func(better, safer, s0, s1, sev0, sev1 string) string {
		return fmt.Sprintf(`{"prompt": "p", "response_0": "r0", "response_1": "r1", `+
			`"better_response_id": %s, "safer_response_id": %s, "is_response_0_safe": %s, `+
			`"is_response_1_safe": %s, "response_0_severity_level": %s, `+
			`"response_1_severity_level": %s}`, better, safer, s0, s1, sev0, sev1)
	}
	cases := []struct {
		name       string
		line       string
		dim        DimensionConfig
		wantChosen string
		wantReason Reason
	}{
		{"better 0", row("0", "1", "true", "false", "0", "2"),
			DimensionConfig{Label: "better_response_id"}, "r0", ""},
		{"safer 1", row("0", "1", "true", "false", "0", "2"),
			DimensionConfig{Label: "safer_response_id"}, "r1", ""},
		{"float id", row("1.0", "1", "true", "false", "0", "2"),
			DimensionConfig{Label: "better_response_id"}, "r1", ""},
		{"out of range", row("2", "1", "true", "false", "0", "2"),
			DimensionConfig{Label: "better_response_id"}, "", ReasonLabelRange},
		{"string label", row(`"1"`, "1", "true", "false", "0", "2"),
			DimensionConfig{Label: "better_response_id"}, "", ReasonMissingField},
		{"missing label", row("0", "1", "true", "false", "0", "2"),
			DimensionConfig{Label: "quality_id"}, "", ReasonMissingField},
		{"null tie invalid", row("null", "1", "true", "false", "0", "2"),
			DimensionConfig{Label: "better_response_id"}, "", ReasonTie},
		{"-1 tie dropped", row("-1", "1", "true", "false", "0", "2"),
			DimensionConfig{Label: "better_response_id", DropTies: true}, "", FilterTie},
		{"score label lower", row("0", "0", "true", "false", "3", "1"),
			DimensionConfig{Label: "response_{}_severity_level", Prefer: "lower"}, "r1", ""},
		{"score label higher", row("0", "0", "true", "false", "3", "1"),
			DimensionConfig{Label: "response_{}_severity_level", Prefer: "higher"}, "r0", ""},
		{"bool score", row("0", "0", "false", "true", "3", "1"),
			DimensionConfig{Label: "is_response_{}_safe", Prefer: "higher"}, "r1", ""},
		{"score tie", row("0", "0", "true", "true", "1", "1"),
			DimensionConfig{Label: "is_response_{}_safe", Prefer: "higher", DropTies: true}, "", FilterTie},
		{"safety same", row("0", "0", "true", "true", "1", "1"),
			DimensionConfig{Label: "better_response_id", Prefer: "higher", OnlySafetyDiffers: true},
			"", FilterSafetySame},
		{"safety differs", row("1", "0", "true", "false", "1", "1"),
			DimensionConfig{Label: "safer_response_id", Prefer: "higher", OnlySafetyDiffers: true},
			"r0", ""},
		{"identical", `{"prompt": "p", "response_0": "x", "response_1": "x", "l": 0}`,
			DimensionConfig{Label: "l"}, "", ReasonIdentical},
		{"empty response", `{"prompt": "p", "response_0": " \n", "response_1": "x", "l": 0}`,
			DimensionConfig{Label: "l"}, "", ReasonEmptyResponse},
		{"empty prompt", `{"prompt": "", "response_0": "y", "response_1": "x", "l": 0}`,
			DimensionConfig{Label: "l"}, "", ReasonEmptyPrompt},
		{"renamed columns", `{"q": "p", "a": "y", "b": "x", "l": 1}`,
			DimensionConfig{Label: "l", Columns: map[string]string{"prompt": "q",
				"response_0": "a", "response_1": "b"}}, "x", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.dim.Prefer == "" {
				tc.dim.Prefer = "higher"
			}
			ex, p := newRowParser(FormatPKU, tc.dim)(rec(t, tc.line))
			if tc.wantReason != "" {
				if p == nil || p.reason != tc.wantReason {
					t.Fatalf("problem %+v, want reason %q", p, tc.wantReason)
				}
				return
			}
			if p != nil {
				t.Fatalf("unexpected problem %+v", p)
			}
			if ex.chosen != tc.wantChosen || ex.rejected == ex.chosen {
				t.Errorf("chosen %q rejected %q, want chosen %q", ex.chosen, ex.rejected,
					tc.wantChosen)
			}
		})
	}
}

func TestParseHH(t *testing.T) {
	const prompt = "\n\nHuman: hi\n\nAssistant: hello\n\nHuman: more?"
	cases := []struct {
		name, chosen, rejected string
		wantReason             Reason
	}{
		{"ok", prompt + "\n\nAssistant: yes", prompt + "\n\nAssistant: no", ""},
		{"prompts differ", prompt + "\n\nAssistant: yes", "\n\nHuman: x\n\nAssistant: no",
			ReasonPromptsDiffer},
		{"empty", prompt + "\n\nAssistant:", prompt + "\n\nAssistant: no", ReasonEmptyResponse},
		{"no marker", "\n\nHuman: x", "\n\nHuman: y", ReasonNoAssistant},
		{"identical", prompt + "\n\nAssistant: a", prompt + "\n\nAssistant: a", ReasonIdentical},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			line := fmt.Sprintf(`{"chosen": %q, "rejected": %q}`, tc.chosen, tc.rejected)
			ex, p := newRowParser(FormatHH, DimensionConfig{})(rec(t, line))
			if tc.wantReason != "" {
				if p == nil || p.reason != tc.wantReason {
					t.Fatalf("problem %+v, want %q", p, tc.wantReason)
				}
				return
			}
			if p != nil {
				t.Fatal(p.reason)
			}
			want := []Message{{"user", "hi"}, {"assistant", "hello"}, {"user", "more?"}}
			if fmt.Sprint(ex.prompt) != fmt.Sprint(want) || ex.chosen != "yes" ||
				ex.rejected != "no" {
				t.Errorf("got %q / %q / %q", ex.prompt, ex.chosen, ex.rejected)
			}
			if got := renderHH(ex.prompt) + " " + ex.chosen; got != tc.chosen {
				t.Errorf("hh round trip %q, want %q", got, tc.chosen)
			}
		})
	}
}

func TestParseHHTranscript(t *testing.T) {
	cases := []struct {
		in   string
		want []Message
	}{
		{"\n\nHuman: a", []Message{{"user", "a"}}},
		{"sys\n\nHuman: a\n\nAssistant: b", []Message{{"system", "sys"}, {"user", "a"},
			{"assistant", "b"}}},
		{"\n\nHuman:\n\nAssistant:  two spaces", []Message{{"user", ""},
			{"assistant", " two spaces"}}},
		{"", nil},
	}
	for _, tc := range cases {
		got := ParseHHTranscript(tc.in)
		if fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("ParseHHTranscript(%q) = %q, want %q", tc.in, got, tc.want)
		}
		if back := strings.TrimSuffix(renderHH(got), hhAssistant); back != tc.in {
			t.Errorf("render(parse(%q)) = %q", tc.in, back)
		}
	}
}

func TestParseGeneric(t *testing.T) {
	cases := []struct {
		name, format, line string
		cols               map[string]string
		wantPrompt         string // fmt of prompt turns
		wantChosen         string
		wantReason         Reason
	}{
		{"preference", FormatPreference, `{"prompt": "p", "chosen": "c", "rejected": "r"}`,
			nil, "[{user p}]", "c", ""},
		{"preference messages", FormatPreference,
			`{"chosen": [{"role": "user", "content": "p"}, {"role": "assistant", "content": "c"}],` +
				` "rejected": [{"role": "user", "content": "p"}, {"role": "assistant", "content": "r"}]}`,
			nil, "[{user p}]", "c", ""},
		{"preference messages differ", FormatPreference,
			`{"chosen": [{"role": "user", "content": "p"}, {"role": "assistant", "content": "c"}],` +
				` "rejected": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "r"}]}`,
			nil, "", "", ReasonPromptsDiffer},
		{"preference bad role", FormatPreference,
			`{"prompt": [{"role": "robot", "content": "p"}], "chosen": "c", "rejected": "r"}`,
			nil, "", "", ReasonMissingField},
		{"preference renamed", FormatPreference, `{"question": "p", "good": "c", "bad": "r"}`,
			map[string]string{"prompt": "question", "chosen": "good", "rejected": "bad"},
			"[{user p}]", "c", ""},
		{"sft", FormatSFT, `{"prompt": "p", "response": "c"}`, nil, "[{user p}]", "c", ""},
		{"sft messages", FormatSFT, `{"messages": [{"role": "system", "content": "s"}, ` +
			`{"role": "user", "content": "p"}, {"role": "assistant", "content": "c"}]}`,
			nil, "[{system s} {user p}]", "c", ""},
		{"sft messages no answer", FormatSFT,
			`{"messages": [{"role": "user", "content": "p"}]}`, nil, "", "", ReasonNoAssistant},
		{"sft empty", FormatSFT, `{"prompt": "p", "response": ""}`, nil, "", "",
			ReasonEmptyResponse},
		{"sft number", FormatSFT, `{"prompt": "p", "response": 3}`, nil, "", "",
			ReasonMissingField},
		{"prompt", FormatPrompt, `{"prompt": "p", "other": 1}`, nil, "[{user p}]", "", ""},
		{"prompt messages", FormatPrompt, `{"messages": [{"role": "user", "content": "p"}]}`,
			nil, "[{user p}]", "", ""},
		{"prompt empty", FormatPrompt, `{"prompt": "  "}`, nil, "", "", ReasonEmptyPrompt},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ex, p := newRowParser(tc.format, DimensionConfig{Columns: tc.cols})(rec(t, tc.line))
			if tc.wantReason != "" {
				if p == nil || p.reason != tc.wantReason {
					t.Fatalf("problem %+v, want %q", p, tc.wantReason)
				}
				return
			}
			if p != nil {
				t.Fatalf("unexpected problem %q %s", p.reason, p.detail)
			}
			if fmt.Sprint(ex.prompt) != tc.wantPrompt || ex.chosen != tc.wantChosen {
				t.Errorf("got prompt %v chosen %q, want %s %q", ex.prompt, ex.chosen,
					tc.wantPrompt, tc.wantChosen)
			}
		})
	}
}

func TestDetectFormat(t *testing.T) {
	cases := []struct{ line, want string }{
		{`{"prompt": "p", "response_0": "a", "response_1": "b"}`, FormatPKU},
		{`{"chosen": "\n\nHuman: a\n\nAssistant: b", "rejected": "x"}`, FormatHH},
		{`{"chosen": [], "rejected": []}`, FormatPreference},
		{`{"prompt": "p", "chosen": "a", "rejected": "b"}`, FormatPreference},
		{`{"messages": []}`, FormatSFT},
		{`{"prompt": "p", "response": "r"}`, FormatSFT},
		{`{"prompt": "p"}`, FormatPrompt},
	}
	for _, tc := range cases {
		got, err := detectFormat(rec(t, tc.line), columnsFor(nil))
		if err != nil || got != tc.want {
			t.Errorf("detectFormat(%s) = %q, %v; want %q", tc.line, got, err, tc.want)
		}
	}
}
