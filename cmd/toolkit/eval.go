package main

import (
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/panacea-go/toolkit/trainer"
)

func newEvalCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "eval --model RUN_DIR [--grid 11]",
		Short: "Sweep λ and report the Pareto front of a trained run",
		Long: `eval sweeps λ over a simplex grid (m = 2: --grid points from (0,1) to (1,0); m ≥ 3:
the lattice with --grid points per edge) and measures each dimension at every λ, on the
training rows and the held-out rows of the run's data config, feeding a different λ to each
row so that a sweep batches like one pass over the data:

  DPO runs  preference accuracy (pairs whose implicit reward margin is positive; a tie
            counts one half, so the base model scores 0.5), mean margin, DPO loss
  SFT runs  response NLL per token
  PPO runs  mean reward-model score of greedy responses to --prompts prompts

It writes to --out (default RUN_DIR/eval): front-SPLIT.json (every score and each front's
dominance, hypervolume against the stated reference point, ⟨λ, ξ(λ)⟩, sparsity and
spacing), front-SPLIT.csv (the main front: accuracy, NLL or reward), and plots of the main
front coloured by λ_1 with the base model as a reference point: front-SPLIT.png/.svg, or
one front-SPLIT-i-j.png/.svg per pair of dimensions when m ≥ 3.`,
		Example: `  toolkit eval --model runs/demo/panacea-dpo --grid 11`,
		Args:    cobra.NoArgs,
		RunE:    runEval,
	}
	f := cmd.Flags()
	f.String("model", "", "training run folder (required)")
	f.Int("grid", 11, "λ points per simplex edge (≥ 2)")
	f.StringSlice("splits", []string{"train", "eval"}, "which rows to score: train, eval")
	f.Int("batch", 8, "pairs per forward pass")
	f.Int("prompts", 16, "PPO runs: prompts generated from per λ")
	f.String("out", "", "output folder (default RUN_DIR/eval)")
	return cmd
}

func runEval(cmd *cobra.Command, _ []string) error {
	v, err := settings(cmd)
	if err != nil {
		return err
	}
	dir := v.GetString("model")
	if dir == "" {
		return fmt.Errorf("eval: --model is required")
	}
	if g := v.GetInt("grid"); g < 2 || g > 1001 {
		return fmt.Errorf("eval: --grid must be between 2 and 1001, got %d", g)
	}
	if b := v.GetInt("batch"); b < 1 {
		return fmt.Errorf("eval: --batch must be at least 1, got %d", b)
	}
	opts, err := runtimeOptions(v)
	if err != nil {
		return err
	}
	var bar *progress
	res, err := trainer.Evaluate(dir, opts, trainer.EvalOptions{
		Grid: v.GetInt("grid"), Splits: v.GetStringSlice("splits"), Batch: v.GetInt("batch"),
		Prompts: v.GetInt("prompts"),
		Progress: func(done, total int) {
			if bar == nil {
				bar = newProgress("scoring pairs", int64(total), false)
			}
			bar.Set(int64(done))
			if done == total {
				bar.Finish()
				bar = nil
			}
		},
	})
	if err != nil {
		return err
	}
	out := v.GetString("out")
	if out == "" {
		out = filepath.Join(dir, "eval")
	}
	if err := trainer.WriteEval(out, res); err != nil {
		return err
	}
	for _, se := range res {
		printSplit(cmd.OutOrStdout(), se)
	}
	fmt.Fprintf(cmd.OutOrStdout(), "wrote %s\n", out)
	return nil
}

// printSplit prints one split's front as a table plus its metrics.
func printSplit(w io.Writer, se *trainer.SplitEval) {
	sft, ppo := se.NLL != nil, se.Reward != nil
	fmt.Fprintf(w, "\n%s split (%d examples per dimension: %s)\n", se.Split, se.Base[0].Pairs,
		strings.Join(se.Dimensions, ", "))
	fmt.Fprintf(w, "  %-20s", "λ")
	for _, d := range se.Dimensions {
		if sft {
			fmt.Fprintf(w, " %14s", d+" NLL")
		} else if ppo {
			fmt.Fprintf(w, " %16s", d+" reward")
		} else {
			fmt.Fprintf(w, " %22s", d+" acc / margin")
		}
	}
	fmt.Fprintln(w)
	row := func(label string, scores []trainer.DimScore) {
		fmt.Fprintf(w, "  %-20s", label)
		for _, s := range scores {
			if sft {
				fmt.Fprintf(w, " %14.4f", s.NLL)
			} else if ppo {
				fmt.Fprintf(w, " %16.4f", s.Reward)
			} else {
				fmt.Fprintf(w, " %12.3f / %+7.4f", s.Accuracy, s.Margin)
			}
		}
	}
	main := se.Main()
	for i, l := range se.Lambdas {
		row(fmt.Sprintf("%.2f", l), se.Scores[i])
		if main.Points[i].Dominated {
			fmt.Fprint(w, "  (dominated)")
		}
		fmt.Fprintln(w)
	}
	row("base model", se.Base)
	fmt.Fprintln(w)
	name := "accuracy"
	if sft {
		name = "NLL"
	} else if ppo {
		name = "reward"
	}
	fmt.Fprintf(w, "  %s front: hypervolume %.5f (base model %.5f) vs reference %.4f; "+
		"⟨λ,ξ⟩ mean %.4f; sparsity %.5f; spacing %.5f\n", name, main.Hypervolume,
		se.BaseHypervolume, main.Reference, main.IPMean, main.Sparsity, main.Spacing)
	if se.Margin != nil {
		fmt.Fprintf(w, "  margin front hypervolume %.5f vs reference %.4f; loss front "+
			"hypervolume %.5f vs reference %.4f\n", se.Margin.Hypervolume, se.Margin.Reference,
			se.Loss.Hypervolume, se.Loss.Reference)
	}
}
