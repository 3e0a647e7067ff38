package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/panacea-go/toolkit/graphs/autodiff/gradcheck"
	"github.com/panacea-go/toolkit/ort"
)

func newGradcheckCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "gradcheck --model EXPORT_DIR",
		Short: "Check the adapter gradients of an exported model against finite differences",
		Long: `gradcheck inserts an SVD-LoRA adapter (random non-zero values) into the exported model,
converts the graph to float64, builds the backward pass of a token-level cross-entropy loss,
and compares the gradients with central finite differences for sampled entries of U, V, σ
and s. It prints, per parameter group, the largest absolute and relative error, and exits
non-zero when a relative error exceeds --tolerance. Run it first when adding an
architecture: every op the graph uses must have a correct gradient rule.`,
		Example: `  toolkit gradcheck --model s260k-onnx`,
		Args:    cobra.NoArgs,
		RunE:    runGradcheck,
	}
	f := cmd.Flags()
	f.String("model", "", "export folder (required)")
	f.Int("rank", 4, "adapter rank k")
	f.Int("dims", 2, "preference dimensions m")
	f.Int("samples", 4, "entries checked per adapter tensor")
	f.Int("batch", 2, "rows of the random token batch")
	f.Int("seq", 8, "tokens per row")
	f.Float64("step", 1e-4, "finite-difference step")
	f.Float64("tolerance", 1e-5, "largest relative error that passes")
	f.Uint64("seed", 1, "seed of inputs and adapter values")
	f.StringSlice("targets", nil, "layer patterns to adapt (default: the family's)")
	return cmd
}

func runGradcheck(cmd *cobra.Command, _ []string) error {
	v, err := settings(cmd)
	if err != nil {
		return err
	}
	dir := v.GetString("model")
	if dir == "" {
		return fmt.Errorf("gradcheck: --model is required")
	}
	if err := ort.Init(v.GetString("ort-lib")); err != nil {
		return err
	}
	rep, err := gradcheck.Run(dir, gradcheck.Options{
		Rank: v.GetInt("rank"), Dims: v.GetInt("dims"), Samples: v.GetInt("samples"),
		Batch: v.GetInt("batch"), Seq: v.GetInt("seq"), Step: v.GetFloat64("step"),
		Tolerance: v.GetFloat64("tolerance"), Seed: v.GetUint64("seed"),
		Targets: v.GetStringSlice("targets"), Threads: v.GetInt("threads"),
	})
	if err != nil {
		return err
	}
	if err := rep.Write(cmd.OutOrStdout()); err != nil {
		return err
	}
	if !rep.OK() {
		return fmt.Errorf("gradcheck: largest relative error %.3g exceeds the tolerance %.3g",
			rep.MaxRel(), rep.Tolerance)
	}
	return nil
}
