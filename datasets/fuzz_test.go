package datasets

import (
	"strings"
	"testing"
)

// FuzzParseJSONLine feeds arbitrary lines to the JSONL row parser and to every row format.
// None may panic; a row accepted as a pair must have a non-empty prompt and two different,
// non-empty responses.
func FuzzParseJSONLine(f *testing.F) {
	seeds := []string{
		`{"prompt": "p", "response_0": "a", "response_1": "b", "better_response_id": 1, ` +
			`"safer_response_id": 0, "is_response_0_safe": true, "is_response_1_safe": false}`,
		`{"chosen": "\n\nHuman: hi\n\nAssistant: yes", "rejected": "\n\nHuman: hi\n\nAssistant: no"}`,
		`{"prompt": [{"role": "user", "content": "p"}], "chosen": "c", "rejected": "r"}`,
		`{"messages": [{"role": "user", "content": "p"}, {"role": "assistant", "content": "c"}]}`,
		`{"prompt": "p", "response": "r"}`,
		`{"prompt": null, "response_0": 3, "better_response_id": "x"}`,
		`{"chosen": [{"role": 1}], "rejected": {}}`,
		`[1, 2]`, `null`, `{"a": 1} {"b": 2}`, `{"a": 1}]`, `{"prompt": "\u0000\ud800"}`, `{`,
	}
	for _, s := range seeds {
		f.Add(s)
	}
	dims := []struct {
		format string
		dim    DimensionConfig
	}{
		{FormatPKU, DimensionConfig{Label: "better_response_id", Prefer: "higher"}},
		{FormatPKU, DimensionConfig{Label: "is_response_{}_safe", Prefer: "lower",
			OnlySafetyDiffers: true, DropTies: true}},
		{FormatHH, DimensionConfig{}},
		{FormatPreference, DimensionConfig{}},
		{FormatSFT, DimensionConfig{}},
		{FormatPrompt, DimensionConfig{}},
	}
	f.Fuzz(func(t *testing.T, line string) {
		rec := parseJSONLine([]byte(line))
		if rec.err != nil {
			if rec.fields != nil {
				t.Fatal("a failed parse returned fields")
			}
			return
		}
		if _, err := detectFormat(rec, columnsFor(nil)); err != nil &&
			!strings.Contains(err.Error(), "cannot detect") {
			t.Fatalf("detectFormat: unexpected error %v", err)
		}
		for _, d := range dims {
			ex, p := newRowParser(d.format, d.dim)(rec)
			if p != nil {
				if p.reason == "" {
					t.Fatalf("%s: problem without a reason", d.format)
				}
				continue
			}
			if emptyConversation(ex.prompt) {
				t.Fatalf("%s: accepted an empty prompt", d.format)
			}
			if kindOf(d.format) == KindPreference && (ex.chosen == ex.rejected ||
				strings.TrimSpace(ex.chosen) == "" || strings.TrimSpace(ex.rejected) == "") {
				t.Fatalf("%s: accepted a bad pair", d.format)
			}
		}
	})
}
