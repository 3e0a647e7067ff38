package datasets

import (
	"fmt"
	"strings"
	"testing"
)

func TestPreferenceBatchLayout(t *testing.T) {
	pairs := []PreferenceExample{
		{ID: 11, Dim: 1, Prompt: []int{1, 10, 11}, Chosen: []int{20, 21, 2}, Rejected: []int{30, 2}},
		{ID: 12, Dim: 1, Prompt: []int{1, 12}, Chosen: []int{22, 2}, Rejected: []int{31, 32, 33, 2}},
	}
	cases := []struct {
		name            string
		opt             BatchOptions
		ids, attn, loss [][]int64
	}{
		{"right", BatchOptions{PadID: 0, Side: PadRight},
			[][]int64{{1, 10, 11, 20, 21, 2}, {1, 12, 22, 2, 0, 0}, {1, 10, 11, 30, 2, 0}, {1, 12, 31, 32, 33, 2}},
			[][]int64{{1, 1, 1, 1, 1, 1}, {1, 1, 1, 1, 0, 0}, {1, 1, 1, 1, 1, 0}, {1, 1, 1, 1, 1, 1}},
			[][]int64{{0, 0, 0, 1, 1, 1}, {0, 0, 1, 1, 0, 0}, {0, 0, 0, 1, 1, 0}, {0, 0, 1, 1, 1, 1}}},
		{"left fixed", BatchOptions{PadID: 9, Side: PadLeft, Length: 7},
			[][]int64{{9, 1, 10, 11, 20, 21, 2}, {9, 9, 9, 1, 12, 22, 2}, {9, 9, 1, 10, 11, 30, 2}, {9, 1, 12, 31, 32, 33, 2}},
			[][]int64{{0, 1, 1, 1, 1, 1, 1}, {0, 0, 0, 1, 1, 1, 1}, {0, 0, 1, 1, 1, 1, 1}, {0, 1, 1, 1, 1, 1, 1}},
			[][]int64{{0, 0, 0, 0, 1, 1, 1}, {0, 0, 0, 0, 0, 1, 1}, {0, 0, 0, 0, 0, 1, 1}, {0, 0, 0, 1, 1, 1, 1}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b, err := PreferenceBatch(pairs, tc.opt)
			if err != nil {
				t.Fatal(err)
			}
			if b.Rows != 4 || b.Pairs != 2 || b.Len != len(tc.ids[0]) || b.Kind != KindPreference {
				t.Fatalf("rows %d pairs %d len %d kind %v", b.Rows, b.Pairs, b.Len, b.Kind)
			}
			for i := range b.Rows {
				ids, attn, loss := b.Row(i)
				if fmt.Sprint(ids) != fmt.Sprint(tc.ids[i]) ||
					fmt.Sprint(attn) != fmt.Sprint(tc.attn[i]) ||
					fmt.Sprint(loss) != fmt.Sprint(tc.loss[i]) {
					t.Errorf("row %d:\n ids  %v want %v\n attn %v want %v\n loss %v want %v",
						i, ids, tc.ids[i], attn, tc.attn[i], loss, tc.loss[i])
				}
			}
			if fmt.Sprint(b.ExampleIDs) != "[11 12 11 12]" || fmt.Sprint(b.Dims) != "[1 1 1 1]" ||
				fmt.Sprint(b.PromptLens) != "[3 2 3 2]" {
				t.Errorf("ids %v dims %v prompt lens %v", b.ExampleIDs, b.Dims, b.PromptLens)
			}
		})
	}
}

func TestBatchEdges(t *testing.T) {
	// A response with no prompt: its first token has nothing to be predicted from.
	b, err := SFTBatch([]SFTExample{{Response: []int{5, 6}}}, BatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, loss := b.Row(0); fmt.Sprint(loss) != "[0 1]" {
		t.Errorf("loss %v, want [0 1]", loss)
	}
	// Prompt batches carry no loss.
	b, err = PromptBatch([]PromptExample{{Prompt: []int{1, 2}}, {Prompt: []int{3}}},
		BatchOptions{Side: PadLeft})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(b.InputIDs, b.LossMask) != "[1 2 0 3] [0 0 0 0]" {
		t.Errorf("ids %v loss %v", b.InputIDs, b.LossMask)
	}
	// Errors, not panics.
	if _, err := SFTBatch(nil, BatchOptions{}); err == nil {
		t.Error("empty batch: no error")
	}
	_, err = SFTBatch([]SFTExample{{Source: "f.jsonl", Line: 4, Prompt: []int{1, 2, 3},
		Response: []int{4}}}, BatchOptions{Length: 3})
	if err == nil || !strings.Contains(err.Error(), "f.jsonl:4") {
		t.Errorf("too long: error %v, want one naming f.jsonl:4", err)
	}
	if _, err := SFTBatch([]SFTExample{{Prompt: []int{1}}}, BatchOptions{Side: "up"}); err == nil {
		t.Error("bad side: no error")
	}
}

func TestTruncation(t *testing.T) {
	dir := t.TempDir()
	p := writeFile(t, dir, "sft.jsonl", `{"prompt": "abcdefgh", "response": "0123456789"}`+"\n")
	cases := []struct {
		name                 string
		maxPrompt, maxLen    int
		trunc                string
		wantPrompt, wantResp string
	}{
		{"none", 0, 0, "", "<s>abcdefgh", "|0123456789</s>"},
		{"keep end", 4, 0, "", "efgh", "|0123456789</s>"},
		{"keep start", 4, 0, "keep_start", "<s>abc", "|0123456789</s>"},
		{"cut response", 4, 10, "", "efgh", "|01234"},
		{"default prompt cap", 0, 12, "", "cdefgh", "|01234"},
		{"fits", 0, 40, "", "<s>abcdefgh", "|0123456789</s>"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := &DataConfig{Dimensions: []DimensionConfig{{Name: "d", Source: p}},
				Template:     TemplateConfig{Style: StylePlain, Separator: "|", EOSToken: "</s>"},
				MaxPromptLen: tc.maxPrompt, MaxLen: tc.maxLen, PromptTruncation: tc.trunc}
			ds := mustLoad(t, cfg, byteTok{})
			e := ds.Dims[0].Train.SFT[0]
			tok := byteTok{}
			if got := tok.Decode(e.Prompt, false); got != tc.wantPrompt {
				t.Errorf("prompt %q, want %q", got, tc.wantPrompt)
			}
			if got := tok.Decode(e.Response, false); got != tc.wantResp {
				t.Errorf("response %q, want %q", got, tc.wantResp)
			}
			st := ds.Dims[0].Stats
			wantPromptCut := len(tc.wantPrompt) < len("<s>abcdefgh")
			if (st.PromptTruncated == 1) != wantPromptCut || st.PromptLens[0] != 9 ||
				st.ChosenLens[0] != 12 {
				t.Errorf("stats %+v", st)
			}
		})
	}
}
