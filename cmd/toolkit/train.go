package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/viper"

	"github.com/panacea-go/toolkit/trainer"
)

func newTrainCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "train --config panacea.yaml",
		Short: "Train one λ-conditioned model with Panacea (DPO or SFT)",
		Long: `train puts an SVD-LoRA adapter on every targeted linear layer of an exported model (the
last m singular values of each adapter are the preference vector λ, a graph input), and
trains it with DPO or SFT: every step draws λ from the simplex, one sub-batch per preference
dimension, computes each dimension's loss, aggregates them by λ (linear scalarization "ls"
or Tchebycheff "tche") and updates the adapter with AdamW. The base model stays frozen.

The run folder (--out) receives checkpoints (checkpoint.json + checkpoint-STEP.safetensors),
metrics.jsonl, and at the end the deployable model.onnx with a lambda input, the adapter
(adapter.safetensors), panacea.json and the tokenizer files, so that
  toolkit generate --model OUT --lambda 0.8,0.2 --prompt "..."
  toolkit eval --model OUT
work on it. Ctrl-C saves a checkpoint and stops; --resume continues exactly.

The config file's keys are the flag names below, plus a data: section (see toolkit data).
Relative paths in the file resolve against the file's folder.`,
		Example: `  toolkit train --config examples/panacea-dpo.yaml`,
		Args:    cobra.NoArgs,
		RunE:    runTrain,
	}
	d := trainer.Defaults()
	f := cmd.Flags()
	f.String("model", "", "base model: a folder written by toolkit export (required)")
	f.String("out", "", "run folder (required)")
	f.String("objective", d.Objective, "dpo or sft")
	f.String("aggregation", d.Aggregation, "ls (Σ λ_i L_i) or tche (max_i λ_i (L_i − z_i))")
	f.String("ideal", d.Ideal, "Tchebycheff ideal point: fixed (ideal-point, default 0) or min (running minimum)")
	f.Float64Slice("ideal-point", nil, "fixed ideal point z, one value per dimension")
	f.Float64("ideal-margin", 0, "subtracted from the running minimum (ideal: min)")
	f.Int("steps", 0, "optimiser updates (0: data.epochs passes)")
	f.Int("grad-accum", d.GradAccum, "micro-batches per update")
	f.Float64("lr", d.LR, "peak learning rate")
	f.Int("warmup", d.Warmup, "linear warmup steps")
	f.Float64("min-lr-ratio", d.MinLRRatio, "cosine decay floor as a fraction of lr")
	f.Float64("weight-decay", 0, "AdamW weight decay on U and V")
	f.Float64("max-grad-norm", d.MaxGradNorm, "clip gradients to this global norm (0: off)")
	f.Float64("adam-beta1", d.Beta1, "AdamW β1")
	f.Float64("adam-beta2", d.Beta2, "AdamW β2")
	f.Float64("beta", d.Beta, "DPO β")
	f.Float64("label-smoothing", 0, "DPO label smoothing ε")
	f.Int("rank", d.Rank, "SVD-LoRA rank k (learned singular values)")
	f.Float64("alpha", d.Alpha, "SVD-LoRA scale α (the branch is scaled by α/k)")
	f.StringSlice("targets", nil, "regular expressions of the linear layers to adapt (default: the family's)")
	f.Float64("lambda-alpha", d.LambdaAlpha, "Dirichlet concentration of λ draws")
	f.Float64("vertex-prob", d.VertexProb, "probability of drawing a simplex vertex instead")
	f.Uint64("seed", d.Seed, "seed of adapter initialisation and λ draws")
	f.Int("save-every", d.SaveEvery, "checkpoint every N steps (0: only at the end)")
	f.Int("log-every", d.LogEvery, "log a metrics line every N steps")
	f.Bool("resume", false, "continue the run in --out from its checkpoint")
	return cmd
}

func runTrain(cmd *cobra.Command, _ []string) error {
	v, err := settings(cmd)
	if err != nil {
		return err
	}
	cfg, err := trainConfig(cmd, v)
	if err != nil {
		return err
	}
	opts, err := runtimeOptions(v)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	var bar *progress
	hooks := trainer.Hooks{OnStep: func(total int, m trainer.StepMetrics) {
		if bar == nil {
			bar = newProgress("training", int64(total), false)
		}
		bar.Set(int64(m.Step))
		if cfg.LogEvery > 0 && m.Step%cfg.LogEvery == 0 {
			args := []any{"step", m.Step, "loss", fmt.Sprintf("%.4f", m.Loss),
				"lambda", fmt.Sprintf("%.2f", m.Lambda), "dim_losses", fmt.Sprintf("%.4f", m.DimLosses)}
			if m.Accuracy != nil {
				args = append(args, "accuracy", fmt.Sprintf("%.2f", m.Accuracy))
			}
			args = append(args, "lr", fmt.Sprintf("%.2e", m.LR), "grad_norm",
				fmt.Sprintf("%.3f", m.GradNorm), "tokens_per_s", int(m.TokensPerS))
			slog.Debug("step", args...)
		}
	}}
	err = trainer.Train(ctx, *cfg, opts, v.GetBool("resume"), hooks)
	if bar != nil {
		bar.Finish()
	}
	if errors.Is(err, trainer.ErrInterrupted) {
		slog.Warn(err.Error(), "out", cfg.Out)
		return nil
	}
	if err != nil {
		return err
	}
	slog.Info("training done", "out", cfg.Out)
	return nil
}

// trainConfig assembles the training configuration from flags, environment and the config
// file (whose data: section becomes the data config).
func trainConfig(cmd *cobra.Command, v *viper.Viper) (*trainer.Config, error) {
	cfg := trainer.Defaults()
	if err := v.Unmarshal(&cfg); err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	path := v.GetString("config")
	if path == "" {
		return nil, fmt.Errorf("train: --config is required (it holds the data: section)")
	}
	data, _, err := readDataConfig(path)
	if err != nil {
		return nil, err
	}
	cfg.Data = *data
	cfg.Model = configPath(cmd, v, "model", path)
	cfg.Out = configPath(cmd, v, "out", path)
	return &cfg, nil
}

// configPath returns a path setting. A relative path written in the config file resolves
// against the file's folder (as the data: section's paths do); from a flag or the
// environment, against the working directory.
func configPath(cmd *cobra.Command, v *viper.Viper, key, file string) string {
	p := v.GetString(key)
	fromFile := v.InConfig(key) && !cmd.Flags().Changed(key) &&
		os.Getenv("TOOLKIT_"+strings.ToUpper(strings.ReplaceAll(key, "-", "_"))) == ""
	if p != "" && fromFile && !filepath.IsAbs(p) {
		return filepath.Join(filepath.Dir(file), p)
	}
	return p
}
