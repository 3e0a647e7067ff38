package main

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/spf13/cobra"

	"github.com/panacea-go/toolkit/export"
)

func newExportCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "export --model HF_DIR --out EXPORT_DIR",
		Short: "Convert a Hugging Face causal LM folder to ONNX",
		Long: `export reads a Hugging Face model folder (config.json, model.safetensors or sharded
model-*.safetensors with model.safetensors.index.json, tokenizer files) and writes an ONNX
model to --out:

  model.onnx          graph: input_ids, attention_mask (batch, seq) -> logits (batch, seq, vocab)
  model.onnx.data     the weights (external data, streamed one tensor at a time)
  toolkit.json        family, dimensions, special token ids: later commands need only --out
  tokenizer.json ...  copied from the source folder

Supported: LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM, GPT2LMHeadModel.
With --with-past the graph also takes past_key_values.N.key/value and returns present.N.key/value
for incremental decoding. --dtype f16 stores the weights as float16 (computation stays float32).`,
		Example: `  toolkit export --model ../shared/data/stories260k-hf --out s260k-onnx --with-past`,
		Args:    cobra.NoArgs,
		RunE:    runExport,
	}
	f := cmd.Flags()
	f.String("model", "", "Hugging Face model folder (required)")
	f.String("out", "", "output folder (required)")
	f.String("dtype", "f32", "stored weight type: f32 or f16")
	f.Bool("with-past", false, "add KV-cache inputs and outputs for incremental decoding")
	f.Bool("hidden", false, "also output hidden_states (batch, seq, hidden), the final norm's output")
	return cmd
}

func runExport(cmd *cobra.Command, _ []string) error {
	v, err := settings(cmd)
	if err != nil {
		return err
	}
	src, dst := v.GetString("model"), v.GetString("out")
	if src == "" || dst == "" {
		return fmt.Errorf("export: --model and --out are required")
	}
	dtype := v.GetString("dtype")
	if dtype != "f32" && dtype != "f16" {
		return fmt.Errorf("export: --dtype %q: want f32 or f16", dtype)
	}
	start := time.Now()
	var bar *progress
	m, err := export.Export(src, dst, export.Options{
		DType:    dtype,
		WithPast: v.GetBool("with-past"),
		Hidden:   v.GetBool("hidden"),
		Progress: func(done, total int64) {
			if bar == nil {
				bar = newProgress("writing weights", total, true)
			}
			bar.Set(done)
		},
	})
	if bar != nil {
		bar.Finish()
	}
	if err != nil {
		return err
	}
	slog.Info("exported", "family", m.Family, "model_type", m.ModelType, "layers", m.NumLayers,
		"hidden", m.HiddenSize, "vocab", m.VocabSize, "with_past", m.WithPast, "dtype", m.DType,
		"out", dst, "elapsed", time.Since(start).Round(time.Millisecond))
	return nil
}
