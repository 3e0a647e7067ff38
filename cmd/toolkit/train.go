package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"os/signal"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"

	"github.com/go-viper/mapstructure/v2"
	"github.com/spf13/cobra"
	"github.com/spf13/viper"

	"github.com/panacea-go/toolkit/trainer"
)

func newTrainCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "train --config panacea.yaml",
		Short: "Train one λ-conditioned model with Panacea (DPO, SFT or PPO), or a reward model",
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
work on it. Ctrl-C saves a checkpoint and stops (exit status 1); --resume continues exactly, with the
settings the run was started with (a changed setting is refused, naming the keys).

With objective: reward and exactly one data dimension, train instead fits a reward model
of that dimension: the base model's final hidden state at each row's last token, times a
learned vector, is the score, trained with the Bradley–Terry loss −log σ(score_w − score_l)
on the dimension's pairs (the head alone, or with --reward-lora an adapter too). --out then
receives model.onnx (input_ids, attention_mask -> score), toolkit.json, the tokenizer files,
metrics.jsonl and reward.json with the pair accuracy on the training and held-out splits
(see examples/reward-helpful.yaml).

With objective: ppo, train runs RLHF with PPO: --reward-models names one reward folder per
data dimension, in the same order; each step generates responses to --rollout-batch prompts
under per-row λ draws, scores them with every reward model, normalises the rewards per
dimension, aggregates them by λ, subtracts a per-token KL penalty against the base model
(--kl-coef) and runs --ppo-epochs passes of clipped PPO updates on the adapter and a value
head (see examples/panacea-ppo.yaml). The run folder gets the same files as a DPO run plus
samples.md (generations at the simplex vertices and centre).

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
	f.String("objective", d.Objective, "dpo, sft, ppo, or reward (one dimension's reward model)")
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
	pp := d.PPO
	f.StringSlice("reward-models", nil, "objective ppo: reward-model folders, one per dimension")
	f.Float64("kl-coef", pp.KLCoef, "objective ppo: per-token KL penalty against the base model")
	f.Float64("gamma", pp.Gamma, "objective ppo: GAE discount γ")
	f.Float64("gae-lambda", pp.GAELambda, "objective ppo: GAE λ")
	f.Float64("clip-range", pp.ClipRange, "objective ppo: policy ratio clip ε")
	f.Float64("value-clip", pp.ValueClip, "objective ppo: value clip ε_v")
	f.Float64("vf-coef", pp.VFCoef, "objective ppo: value loss weight")
	f.Float64("ent-coef", pp.EntCoef, "objective ppo: entropy bonus weight (0: off)")
	f.Int("ppo-epochs", pp.PPOEpochs, "objective ppo: passes over each rollout batch")
	f.Int("minibatch", pp.MiniBatch, "objective ppo: rows per PPO update")
	f.Int("rollout-batch", pp.RolloutBatch, "objective ppo: prompts generated per step")
	f.Int("max-new-tokens", pp.MaxNewTokens, "objective ppo: most tokens per rollout response")
	f.Float64("temperature", pp.Temperature, "objective ppo: rollout sampling temperature")
	f.Float64("top-p", pp.TopP, "objective ppo: rollout nucleus mass")
	f.String("reward-norm", pp.RewardNorm, "objective ppo: running (mean/std per dimension) or none")
	f.Float64("reward-clip", pp.RewardClip, "objective ppo: bound of the aggregated reward (0: none)")
	f.Int("sample-every", pp.SampleEvery, "objective ppo: write samples.md every N steps (0: at the end)")
	f.Bool("reward-lora", false, "objective reward: also train an SVD-LoRA adapter (rank, "+
		"alpha, targets) under the score head; default: the head alone")
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
			args := []any{"step", m.Step}
			switch {
			case m.Rewards != nil: // PPO
				args = append(args, "pg_loss", fmt.Sprintf("%.4f", m.Loss), "rewards",
					fmt.Sprintf("%.3f", m.Rewards), "kl", fmt.Sprintf("%.4f", m.KL))
			case len(m.Lambda) == 0: // reward model
				args = append(args, "loss", fmt.Sprintf("%.4f", m.Loss))
			default:
				args = append(args, "loss", fmt.Sprintf("%.4f", m.Loss), "lambda",
					fmt.Sprintf("%.2f", m.Lambda), "dim_losses", fmt.Sprintf("%.4f", m.DimLosses))
			}
			if m.Accuracy != nil {
				args = append(args, "accuracy", fmt.Sprintf("%.2f", m.Accuracy))
			}
			args = append(args, "lr", fmt.Sprintf("%.2e", m.LR), "grad_norm",
				fmt.Sprintf("%.3f", m.GradNorm))
			if m.TokensPerS > 0 {
				args = append(args, "tokens_per_s", int(m.TokensPerS))
			}
			slog.Info("step", args...)
		}
	}}
	err = trainer.Train(ctx, *cfg, opts, v.GetBool("resume"), hooks)
	if bar != nil {
		bar.Finish()
	}
	if errors.Is(err, trainer.ErrInterrupted) {
		// Exit non-zero so that `train && eval` stops here; the checkpoint is safe.
		return fmt.Errorf("%w (run folder %s)", err, cfg.Out)
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
	if err := v.Unmarshal(&cfg, viper.DecodeHook(mapstructure.ComposeDecodeHookFunc(
		wholeNumbers, mapstructure.StringToTimeDurationHookFunc(),
		mapstructure.StringToSliceHookFunc(",")))); err != nil {
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
	if v.InConfig("reward-models") && !cmd.Flags().Changed("reward-models") {
		for i, p := range cfg.PPO.RewardModels {
			if !filepath.IsAbs(p) {
				cfg.PPO.RewardModels[i] = filepath.Join(filepath.Dir(path), p)
			}
		}
	}
	return &cfg, nil
}

// wholeNumbers refuses what the decoder would otherwise truncate or wrap silently: a
// fraction for an integer setting (steps: 2.7) and a negative number for an unsigned one
// (seed: -1). Flags already refuse both.
func wholeNumbers(from, to reflect.Type, data any) (any, error) {
	isInt := func(k reflect.Kind) bool { return k >= reflect.Int && k <= reflect.Int64 }
	isUint := func(k reflect.Kind) bool { return k >= reflect.Uint && k <= reflect.Uint64 }
	if !isInt(to.Kind()) && !isUint(to.Kind()) {
		return data, nil
	}
	var f float64
	switch x := reflect.ValueOf(data); {
	case x.CanFloat():
		f = x.Float()
	case x.CanInt():
		f = float64(x.Int())
	default:
		return data, nil
	}
	if f != math.Trunc(f) {
		return nil, fmt.Errorf("%v is not a whole number", data)
	}
	if isUint(to.Kind()) && f < 0 {
		return nil, fmt.Errorf("%v is negative", data)
	}
	return data, nil
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
