package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"github.com/panacea-go/toolkit/datasets"
	"github.com/panacea-go/toolkit/datasets/tokenizer"
)

func newDataCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "data --config FILE [--model DIR]",
		Short: "Show what a data config yields before training",
		Long: `data loads the datasets a config names and prints, per dimension: the rows kept, the
rows skipped and why, prompt and response token-length percentiles (and how many will be
truncated), and the first rendered training example with its loss mask visible
(response tokens, the ones trained on, are bracketed).

--config is a data config (keys dimensions, template, max_len, ...) or a training config with
a data: section, whose model: key then names the tokenizer folder. --model overrides it: an
export folder or a Hugging Face folder holding tokenizer.json.`,
		Example: `  toolkit data --config examples/panacea-dpo.yaml`,
		Args:    cobra.NoArgs,
		RunE:    runData,
	}
	cmd.Flags().String("model", "", "folder with the tokenizer (export or Hugging Face folder)")
	return cmd
}

func runData(cmd *cobra.Command, _ []string) error {
	v, err := readSettings(cmd, false)
	if err != nil {
		return err
	}
	path := v.GetString("config")
	if path == "" {
		return fmt.Errorf("data: --config is required")
	}
	cfg, model, err := readDataConfig(path)
	if err != nil {
		return err
	}
	if m := v.GetString("model"); m != "" {
		model = m
	}
	if model == "" {
		return fmt.Errorf("data: no tokenizer: pass --model (or set model: in the training config)")
	}
	tok, err := tokenizer.LoadDir(model)
	if err != nil {
		return err
	}
	rep, err := datasets.Inspect(*cfg, tok)
	if err != nil {
		return err
	}
	return rep.Write(cmd.OutOrStdout())
}

// readDataConfig reads a data config, or the data: section of a training config (then also
// returning its model: key, resolved against the file's folder).
func readDataConfig(path string) (*datasets.DataConfig, string, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, "", fmt.Errorf("data: %w", err)
	}
	// One strict decode: the data: section in place, so that an unknown key's error names
	// its line in the file; the training keys around it land in Rest. A file without a
	// data: key is a data config of its own.
	var doc struct {
		Model string               `yaml:"model"`
		Data  *datasets.DataConfig `yaml:"data"`
		Rest  map[string]any       `yaml:",inline"`
	}
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(&doc); err != nil && !errors.Is(err, io.EOF) {
		return nil, "", fmt.Errorf("data: %s: %w", path, err)
	}
	if doc.Data == nil {
		cfg, err := datasets.LoadDataConfig(path)
		return cfg, "", err
	}
	cfg := doc.Data
	cfg.BaseDir = filepath.Dir(path)
	model := doc.Model
	if model != "" && !filepath.IsAbs(model) {
		model = filepath.Join(filepath.Dir(path), model)
	}
	return cfg, model, nil
}
