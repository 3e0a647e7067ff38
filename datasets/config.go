package datasets

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"

	"go.yaml.in/yaml/v3"
)

// DataConfig says which data a run trains on and how it becomes batches. It decodes from
// YAML (snake_case keys, the same in mapstructure tags for viper) and is self-contained, so
// a trainer can embed it under a `data:` key of its own config. Zero values mean the defaults
// documented on each field; call [DataConfig.Validate] (which also fills the defaults) before
// use. Example:
//
//	dimensions:
//	  - {name: helpful, source: pku.jsonl, label: better_response_id, weight: 1}
//	  - {name: harmless, source: pku.jsonl, label: safer_response_id}
//	  - {name: concise, source: pku.jsonl, label: length, prefer: lower, drop_ties: true}
//	template: {style: hh, eos_token: "</s>"}
//	max_prompt_len: 256
//	max_len: 512
//	batch_size: 4
//	seed: 1
//
// For objective sft, `sft: preferred` on each dimension turns its pairs into SFT examples of
// the response the dimension prefers (see examples/panacea-sft3.yaml).
type DataConfig struct {
	// Dimensions lists the preference dimensions in order; the order fixes the dimension
	// index carried by every example and batch row.
	Dimensions []DimensionConfig `yaml:"dimensions" mapstructure:"dimensions"`
	// Template says how prompts are rendered; see [TemplateConfig].
	Template TemplateConfig `yaml:"template" mapstructure:"template"`
	// MaxPromptLen caps prompt tokens (0: no cap, or MaxLen/2 when MaxLen is set).
	MaxPromptLen int `yaml:"max_prompt_len" mapstructure:"max_prompt_len"`
	// MaxLen caps prompt+response tokens (0: no cap). Responses are cut at the end.
	MaxLen int `yaml:"max_len" mapstructure:"max_len"`
	// PromptTruncation is keep_end (default: drop the start of a long prompt, so the last
	// turn survives) or keep_start.
	PromptTruncation string `yaml:"prompt_truncation" mapstructure:"prompt_truncation"`
	// PaddingSide is right (default, for training) or left (for generation).
	PaddingSide string `yaml:"padding_side" mapstructure:"padding_side"`
	// PadID is the token id written into padding positions (default 0; padding is never
	// attended to nor trained on, so the value only matters for readability).
	PadID int `yaml:"pad_id" mapstructure:"pad_id"`
	// PadToMaxLen pads every batch to MaxLen instead of its longest row (static shapes).
	PadToMaxLen bool `yaml:"pad_to_max_len" mapstructure:"pad_to_max_len"`
	// BatchSize is the number of examples (pairs, for preference data) per dimension
	// sub-batch (default 8). A dimension may override it.
	BatchSize int `yaml:"batch_size" mapstructure:"batch_size"`
	// Seed drives shuffling and the train/eval split.
	Seed uint64 `yaml:"seed" mapstructure:"seed"`
	// Epochs is the number of passes over the largest dimension (default 1); smaller
	// dimensions cycle, reshuffled each pass.
	Epochs int `yaml:"epochs" mapstructure:"epochs"`
	// SkipInvalid counts, logs and skips invalid rows instead of failing on the first.
	SkipInvalid bool `yaml:"skip_invalid" mapstructure:"skip_invalid"`
	// EvalFraction holds out about this fraction of each dimension's rows for evaluation,
	// chosen by a hash of the seed and the prompt (the same prompts for every dimension
	// that reads the same file). Ignored for a dimension with an eval file.
	EvalFraction float64 `yaml:"eval_fraction" mapstructure:"eval_fraction"`
	// EvalFile is a separate evaluation file read by every dimension with its own label
	// and format (for one file holding several label columns). A dimension may override.
	EvalFile string `yaml:"eval_file" mapstructure:"eval_file"`

	// BaseDir is the folder relative paths resolve against; LoadDataConfig sets it to the
	// config file's folder. Empty means the working directory.
	BaseDir string `yaml:"-" mapstructure:"-"`
}

// DimensionConfig is one preference dimension: where its rows come from and how they are
// ordered into pairs.
type DimensionConfig struct {
	// Name identifies the dimension (e.g. helpful); it must be unique.
	Name string `yaml:"name" mapstructure:"name"`
	// Source is the training file (JSONL, JSON array or Parquet, optionally gzipped).
	Source string `yaml:"source" mapstructure:"source"`
	// Format is the row format (see [Formats]); empty means detect it from the fields.
	Format string `yaml:"format" mapstructure:"format"`
	// Label orders a response pair (pku-saferlhf format only): an id column holding 0 or 1
	// (null or -1 is a tie), a per-response score column pattern with "{}" standing for
	// 0 and 1, e.g. "response_{}_severity_level" with prefer: lower, or a computed label:
	// "length" scores each response by its length in Unicode characters (runes) of
	// response_0 and response_1 as stored, so that prefer: lower makes the shorter response
	// win (conciseness). Equal scores are a tie (see DropTies). A computed label's name
	// shadows a column of the same name.
	Label string `yaml:"label" mapstructure:"label"`
	// Prefer is higher (default) or lower: which score wins, for score and computed labels.
	Prefer string `yaml:"prefer" mapstructure:"prefer"`
	// SFT turns a preference source into SFT examples of this dimension. "preferred" keeps,
	// from each pair, the prompt and the response the dimension prefers (the chosen side:
	// the one its label picks for pku-saferlhf, chosen for hh-rlhf and preference rows) and
	// drops the other, so that objective sft trains each dimension on the responses it
	// prefers. Ties, only_safety_differs and invalid rows are handled as for pairs, before
	// the other response is dropped. Empty (default): pair formats give preference
	// examples. Only formats with pairs (pku-saferlhf, hh-rlhf, preference) accept it.
	SFT string `yaml:"sft" mapstructure:"sft"`
	// Weight is the dimension's weight in evaluation (default 1).
	Weight float64 `yaml:"weight" mapstructure:"weight"`
	// BatchSize overrides DataConfig.BatchSize for this dimension.
	BatchSize int `yaml:"batch_size" mapstructure:"batch_size"`
	// EvalFile overrides DataConfig.EvalFile for this dimension.
	EvalFile string `yaml:"eval_file" mapstructure:"eval_file"`
	// Columns renames fields: logical name (prompt, chosen, rejected, response, messages,
	// response_0, response_1, safe_0, safe_1) to the column that holds it.
	Columns map[string]string `yaml:"columns" mapstructure:"columns"`
	// OnlySafetyDiffers keeps only pairs whose two safety flags differ (pku-saferlhf).
	OnlySafetyDiffers bool `yaml:"only_safety_differs" mapstructure:"only_safety_differs"`
	// DropTies drops (and counts) pairs whose label is a tie; otherwise a tie is invalid.
	DropTies bool `yaml:"drop_ties" mapstructure:"drop_ties"`
}

// TemplateConfig says how prompt turns become text and how responses end.
type TemplateConfig struct {
	// Style is hh (default: "\n\nHuman: {prompt}\n\nAssistant:"), plain (the prompt text,
	// then Separator, then the response) or chat (the tokenizer's Jinja chat template,
	// rendered with the generation prompt appended).
	Style string `yaml:"style" mapstructure:"style"`
	// TokenizerConfig is the tokenizer_config.json (or its folder) holding chat_template,
	// bos_token and eos_token. Required for style chat unless ChatTemplate is set.
	TokenizerConfig string `yaml:"tokenizer_config" mapstructure:"tokenizer_config"`
	// ChatTemplate is an inline Jinja template that overrides the tokenizer's.
	ChatTemplate string `yaml:"chat_template" mapstructure:"chat_template"`
	// System is a system prompt put before the turns of every prompt without one.
	System string `yaml:"system" mapstructure:"system"`
	// Separator goes between prompt and response in style plain (default empty).
	Separator string `yaml:"separator" mapstructure:"separator"`
	// EOSToken is the token appended to every response (e.g. "</s>", "<|im_end|>"); empty
	// means the eos_token of TokenizerConfig, if any; "none" appends nothing.
	EOSToken string `yaml:"eos_token" mapstructure:"eos_token"`
	// AddSpecialTokens is passed to the tokenizer when encoding a prompt (default true for
	// hh and plain, false for chat, whose templates write their own BOS).
	AddSpecialTokens *bool `yaml:"add_special_tokens" mapstructure:"add_special_tokens"`
	// Vars are extra chat template variables, e.g. {enable_thinking: false}.
	Vars map[string]any `yaml:"vars" mapstructure:"vars"`
}

// UnmarshalYAML accepts the short form `template: hh` as well as the mapping form.
func (t *TemplateConfig) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		t.Style = n.Value
		return nil
	}
	type plain TemplateConfig
	return n.Decode((*plain)(t))
}

// Template styles.
const (
	StyleHH    = "hh"
	StylePlain = "plain"
	StyleChat  = "chat"
)

// Values of a dimension's `sft` key.
const (
	// SFTPreferred makes SFT examples of each pair's preferred (chosen) response.
	SFTPreferred = "preferred"
)

// Computed labels: label names that score each response of a pku-saferlhf pair from its
// text rather than from a column.
const (
	// LabelLength scores a response by its length in Unicode characters (runes).
	LabelLength = "length"
)

// Defaults used by [DataConfig.Validate].
const (
	DefaultBatchSize = 8
	defaultKeepEnd   = "keep_end"
	defaultKeepStart = "keep_start"
)

// LoadDataConfig reads a YAML data config, resolves its relative paths against the file's
// folder, fills defaults and validates it. Unknown keys are errors.
func LoadDataConfig(path string) (*DataConfig, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("datasets: read config: %w", err)
	}
	cfg, err := ParseDataConfig(raw)
	if err != nil {
		return nil, fmt.Errorf("datasets: %s: %w", path, err)
	}
	cfg.BaseDir = filepath.Dir(path)
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("datasets: %s: %w", path, err)
	}
	return cfg, nil
}

// ParseDataConfig decodes YAML into a DataConfig without validating it. Unknown keys are
// errors, with the line they are on.
func ParseDataConfig(raw []byte) (*DataConfig, error) {
	var cfg DataConfig
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("parse yaml: %w", err)
	}
	return &cfg, nil
}

// Resolve returns p unchanged when absolute or empty, else joined to BaseDir.
func (c *DataConfig) Resolve(p string) string {
	if p == "" || filepath.IsAbs(p) || c.BaseDir == "" {
		return p
	}
	return filepath.Join(c.BaseDir, p)
}

// Validate fills defaults and checks every key, naming the first offending key in the error.
func (c *DataConfig) Validate() error {
	c.applyDefaults()
	if len(c.Dimensions) == 0 {
		return errors.New("dimensions: at least one dimension is required")
	}
	seen := map[string]int{}
	for i := range c.Dimensions {
		d := &c.Dimensions[i]
		key := fmt.Sprintf("dimensions[%d]", i)
		if prev, dup := seen[d.Name]; dup {
			return fmt.Errorf("%s.name: %q already used by dimensions[%d]", key, d.Name, prev)
		}
		seen[d.Name] = i
		if err := d.validate(key); err != nil {
			return err
		}
	}
	if err := c.Template.validate(); err != nil {
		return err
	}
	switch {
	case c.MaxPromptLen < 0:
		return fmt.Errorf("max_prompt_len: %d is negative", c.MaxPromptLen)
	case c.MaxLen < 0:
		return fmt.Errorf("max_len: %d is negative", c.MaxLen)
	case c.MaxLen == 1:
		return fmt.Errorf("max_len: 1 leaves no room for a prompt token and a response token " +
			"(at least 2)")
	case c.MaxLen > 0 && c.MaxPromptLen >= c.MaxLen:
		return fmt.Errorf("max_prompt_len: %d leaves no room for a response within max_len %d",
			c.MaxPromptLen, c.MaxLen)
	case c.PromptTruncation != defaultKeepEnd && c.PromptTruncation != defaultKeepStart:
		return fmt.Errorf("prompt_truncation: %q is not keep_end or keep_start", c.PromptTruncation)
	case c.PaddingSide != string(PadRight) && c.PaddingSide != string(PadLeft):
		return fmt.Errorf("padding_side: %q is not right or left", c.PaddingSide)
	case c.PadToMaxLen && c.MaxLen == 0:
		return errors.New("pad_to_max_len: needs max_len")
	case c.BatchSize < 1:
		return fmt.Errorf("batch_size: %d is below 1", c.BatchSize)
	case c.Epochs < 1:
		return fmt.Errorf("epochs: %d is below 1", c.Epochs)
	case c.EvalFraction < 0 || c.EvalFraction >= 1 || math.IsNaN(c.EvalFraction):
		return fmt.Errorf("eval_fraction: %v is outside [0, 1)", c.EvalFraction)
	case c.PadID < 0:
		return fmt.Errorf("pad_id: %d is negative", c.PadID)
	}
	return nil
}

func (c *DataConfig) applyDefaults() {
	if c.MaxPromptLen == 0 && c.MaxLen > 0 {
		c.MaxPromptLen = c.MaxLen / 2
	}
	if c.PromptTruncation == "" {
		c.PromptTruncation = defaultKeepEnd
	}
	if c.PaddingSide == "" {
		c.PaddingSide = string(PadRight)
	}
	if c.BatchSize == 0 {
		c.BatchSize = DefaultBatchSize
	}
	if c.Epochs == 0 {
		c.Epochs = 1
	}
	if c.Template.Style == "" {
		c.Template.Style = StyleHH
	}
	for i := range c.Dimensions {
		d := &c.Dimensions[i]
		if d.Weight == 0 {
			d.Weight = 1
		}
		if d.BatchSize == 0 {
			d.BatchSize = c.BatchSize
		}
		if d.Prefer == "" {
			d.Prefer = "higher"
		}
		d.Format = canonicalFormat(d.Format)
	}
}

func (d *DimensionConfig) validate(key string) error {
	switch {
	case strings.TrimSpace(d.Name) == "":
		return fmt.Errorf("%s.name: required", key)
	case d.Source == "":
		return fmt.Errorf("%s.source: required", key)
	case d.Format != "" && !knownFormat(d.Format):
		return fmt.Errorf("%s.format: %q is not one of %s", key, d.Format,
			strings.Join(Formats(), ", "))
	case d.Format == FormatPKU && d.Label == "":
		return fmt.Errorf("%s.label: required for format %s (e.g. better_response_id)",
			key, FormatPKU)
	case d.Format != "" && d.Format != FormatPKU && d.Label != "":
		return fmt.Errorf("%s.label: only format %s reads a label; %s rows are ordered already",
			key, FormatPKU, d.Format)
	case d.Format != "" && d.Format != FormatPKU && d.OnlySafetyDiffers:
		return fmt.Errorf("%s.only_safety_differs: only format %s has safety flags", key, FormatPKU)
	case d.SFT != "" && d.SFT != SFTPreferred:
		return fmt.Errorf("%s.sft: %q is not %s (or empty for pairs)", key, d.SFT, SFTPreferred)
	case d.SFT != "" && (d.Format == FormatSFT || d.Format == FormatPrompt):
		return fmt.Errorf("%s.sft: format %s has no pairs to take the preferred response "+
			"from (sft: %s needs %s, %s or %s rows)", key, d.Format, d.SFT, FormatPKU,
			FormatHH, FormatPreference)
	case d.Label != "" && strings.Count(d.Label, "{}") > 1:
		return fmt.Errorf("%s.label: %q has more than one {}", key, d.Label)
	case d.Prefer != "higher" && d.Prefer != "lower":
		return fmt.Errorf("%s.prefer: %q is not higher or lower", key, d.Prefer)
	case d.Weight < 0 || math.IsNaN(d.Weight) || math.IsInf(d.Weight, 0):
		return fmt.Errorf("%s.weight: %v is not a finite non-negative number", key, d.Weight)
	case d.BatchSize < 1:
		return fmt.Errorf("%s.batch_size: %d is below 1", key, d.BatchSize)
	}
	for logical, col := range d.Columns {
		if !knownColumn(logical) {
			return fmt.Errorf("%s.columns.%s: unknown field (want one of %s)", key, logical,
				strings.Join(logicalColumns, ", "))
		}
		if col == "" {
			return fmt.Errorf("%s.columns.%s: empty column name", key, logical)
		}
	}
	return nil
}

func (t *TemplateConfig) validate() error {
	switch t.Style {
	case StyleHH, StylePlain:
	case StyleChat:
		if t.TokenizerConfig == "" && t.ChatTemplate == "" {
			return errors.New("template.tokenizer_config: required for style chat " +
				"(or set template.chat_template)")
		}
	default:
		return fmt.Errorf("template.style: %q is not hh, plain or chat", t.Style)
	}
	return nil
}

// addSpecial reports whether prompts are encoded with the tokenizer's special tokens.
func (t *TemplateConfig) addSpecial() bool {
	if t.AddSpecialTokens != nil {
		return *t.AddSpecialTokens
	}
	return t.Style != StyleChat
}
