package datasets

import (
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadDataConfig(t *testing.T) {
	dir := t.TempDir()
	p := writeFile(t, dir, "data.yaml", `
dimensions:
  - {name: helpful, source: pku.jsonl, label: better_response_id, weight: 2}
  - name: harmless
    source: /abs/pku.jsonl
    format: beavertails
    label: safer_response_id
    drop_ties: true
template: plain
max_len: 100
batch_size: 3
seed: 7
skip_invalid: true
eval_fraction: 0.25
`)
	cfg, err := LoadDataConfig(p)
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"base dir", cfg.BaseDir, dir},
		{"resolve relative", cfg.Resolve(cfg.Dimensions[0].Source), filepath.Join(dir, "pku.jsonl")},
		{"resolve absolute", cfg.Resolve(cfg.Dimensions[1].Source), "/abs/pku.jsonl"},
		{"weight", cfg.Dimensions[0].Weight, 2.0},
		{"default weight", cfg.Dimensions[1].Weight, 1.0},
		{"alias format", cfg.Dimensions[1].Format, FormatPKU},
		{"scalar template", cfg.Template.Style, StylePlain},
		{"default max_prompt_len", cfg.MaxPromptLen, 50},
		{"dimension batch size", cfg.Dimensions[1].BatchSize, 3},
		{"padding side", cfg.PaddingSide, "right"},
		{"epochs", cfg.Epochs, 1},
		{"seed", cfg.Seed, uint64(7)},
		{"drop ties", cfg.Dimensions[1].DropTies, true},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s: got %v, want %v", c.name, c.got, c.want)
		}
	}
}

func TestValidateNamesKey(t *testing.T) {
	base := func() DataConfig {
		return DataConfig{Dimensions: []DimensionConfig{{Name: "a", Source: "x.jsonl"}}}
	}
	cases := []struct {
		name   string
		edit   func(c *DataConfig)
		wantIn string
	}{
		{"no dimensions", func(c *DataConfig) { c.Dimensions = nil }, "dimensions:"},
		{"missing name", func(c *DataConfig) { c.Dimensions[0].Name = " " }, "dimensions[0].name"},
		{"duplicate name", func(c *DataConfig) {
			c.Dimensions = append(c.Dimensions, DimensionConfig{Name: "a", Source: "y"})
		}, "dimensions[1].name"},
		{"missing source", func(c *DataConfig) { c.Dimensions[0].Source = "" }, "dimensions[0].source"},
		{"bad format", func(c *DataConfig) { c.Dimensions[0].Format = "csv" }, "dimensions[0].format"},
		{"pku without label", func(c *DataConfig) { c.Dimensions[0].Format = "pku" }, "dimensions[0].label"},
		{"label on hh", func(c *DataConfig) {
			c.Dimensions[0].Format, c.Dimensions[0].Label = "hh", "x"
		}, "dimensions[0].label"},
		{"bad prefer", func(c *DataConfig) { c.Dimensions[0].Prefer = "more" }, "dimensions[0].prefer"},
		{"negative weight", func(c *DataConfig) { c.Dimensions[0].Weight = -1 }, "dimensions[0].weight"},
		{"unknown column", func(c *DataConfig) {
			c.Dimensions[0].Columns = map[string]string{"question": "q"}
		}, "dimensions[0].columns.question"},
		{"bad style", func(c *DataConfig) { c.Template.Style = "alpaca" }, "template.style"},
		{"chat without config", func(c *DataConfig) { c.Template.Style = "chat" }, "template.tokenizer_config"},
		{"prompt cap too big", func(c *DataConfig) { c.MaxLen, c.MaxPromptLen = 10, 10 }, "max_prompt_len"},
		{"negative max_len", func(c *DataConfig) { c.MaxLen = -1 }, "max_len"},
		{"max_len 1", func(c *DataConfig) { c.MaxLen, c.MaxPromptLen = 1, 0 }, "max_len: 1"},
		{"bad truncation", func(c *DataConfig) { c.PromptTruncation = "middle" }, "prompt_truncation"},
		{"bad padding", func(c *DataConfig) { c.PaddingSide = "top" }, "padding_side"},
		{"pad to nothing", func(c *DataConfig) { c.PadToMaxLen = true }, "pad_to_max_len"},
		{"negative batch", func(c *DataConfig) { c.BatchSize = -2 }, "batch_size"},
		{"eval fraction", func(c *DataConfig) { c.EvalFraction = 1 }, "eval_fraction"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := base()
			tc.edit(&c)
			err := c.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.wantIn) {
				t.Fatalf("Validate() = %v, want an error naming %q", err, tc.wantIn)
			}
		})
	}
	c := base()
	if err := c.Validate(); err != nil {
		t.Fatalf("valid config: %v", err)
	}
}

func TestParseDataConfigUnknownKey(t *testing.T) {
	_, err := ParseDataConfig([]byte("dimensions: []\nbatchsize: 3\n"))
	if err == nil || !strings.Contains(err.Error(), "batchsize") {
		t.Fatalf("got %v, want an error naming the unknown key", err)
	}
}

func TestExampleConfig(t *testing.T) {
	cfg, err := LoadDataConfig(filepath.Join("testdata", "example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	got := cfg.Resolve(cfg.Dimensions[2].Source)
	want := filepath.Join("testdata", "..", "..", "..", "shared", "data", "hh-rlhf",
		"harmless-base-test.jsonl.gz")
	if filepath.Clean(got) != filepath.Clean(want) || len(cfg.Dimensions) != 3 ||
		cfg.Dimensions[2].Weight != 0.5 || cfg.Template.EOSToken != "</s>" {
		t.Errorf("example config decoded as %+v", cfg)
	}
}
