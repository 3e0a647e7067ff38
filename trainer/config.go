package trainer

import (
	"errors"
	"fmt"
	"strings"

	"github.com/panacea-go/toolkit/datasets"
)

// Config is a training run's configuration. The YAML keys (and the CLI flags) are the
// dashed names in the mapstructure tags; the data section is a [datasets.DataConfig].
type Config struct {
	// Model is the folder written by `toolkit export` (the base model, frozen).
	Model string `mapstructure:"model" json:"model"`
	// Out is the run folder: checkpoints, metrics, the trained λ-input model.
	Out string `mapstructure:"out" json:"out"`
	// Objective is dpo or sft, or reward: a reward model of one dimension (see TrainReward).
	Objective string `mapstructure:"objective" json:"objective"`
	// Aggregation is ls (Σ λ_i L_i) or tche (max_i λ_i (L_i − z_i)).
	Aggregation string `mapstructure:"aggregation" json:"aggregation"`
	// Ideal is the Tchebycheff ideal point z: "fixed" (Ideal values, default 0) or "min"
	// (the running minimum of each dimension's loss, minus IdealMargin).
	Ideal       string    `mapstructure:"ideal" json:"ideal"`
	IdealPoint  []float64 `mapstructure:"ideal-point" json:"ideal_point,omitempty"`
	IdealMargin float64   `mapstructure:"ideal-margin" json:"ideal_margin"`

	// Steps is the number of optimiser updates (0: one pass as the data config's epochs say).
	Steps int `mapstructure:"steps" json:"steps"`
	// GradAccum micro-batches are summed per update.
	GradAccum   int     `mapstructure:"grad-accum" json:"grad_accum"`
	LR          float64 `mapstructure:"lr" json:"lr"`
	Warmup      int     `mapstructure:"warmup" json:"warmup"`
	MinLRRatio  float64 `mapstructure:"min-lr-ratio" json:"min_lr_ratio"`
	WeightDecay float64 `mapstructure:"weight-decay" json:"weight_decay"`
	MaxGradNorm float64 `mapstructure:"max-grad-norm" json:"max_grad_norm"`
	Beta1       float64 `mapstructure:"adam-beta1" json:"adam_beta1"`
	Beta2       float64 `mapstructure:"adam-beta2" json:"adam_beta2"`

	// Beta and LabelSmoothing are DPO's β and ε.
	Beta           float64 `mapstructure:"beta" json:"beta"`
	LabelSmoothing float64 `mapstructure:"label-smoothing" json:"label_smoothing"`

	// Rank k, scale α and target layer patterns of the SVD-LoRA adapter (empty targets: the
	// family's defaults).
	Rank    int      `mapstructure:"rank" json:"rank"`
	Alpha   float64  `mapstructure:"alpha" json:"alpha"`
	Targets []string `mapstructure:"targets" json:"targets,omitempty"`

	// LambdaAlpha is the Dirichlet concentration of λ draws; VertexProb the probability of
	// drawing a vertex (a single dimension) instead.
	LambdaAlpha float64 `mapstructure:"lambda-alpha" json:"lambda_alpha"`
	VertexProb  float64 `mapstructure:"vertex-prob" json:"vertex_prob"`

	// Seed drives adapter initialisation and λ draws (the data config has its own seed).
	Seed      uint64 `mapstructure:"seed" json:"seed"`
	SaveEvery int    `mapstructure:"save-every" json:"save_every"`
	LogEvery  int    `mapstructure:"log-every" json:"log_every"`
	// EvalGrid is the number of λ points of the front evaluated at the end (0: none).
	EvalGrid int `mapstructure:"eval-grid" json:"eval_grid"`

	// PPO holds the RLHF settings (objective ppo).
	PPO PPOConfig `mapstructure:",squash" json:"ppo"`

	Data datasets.DataConfig `mapstructure:"-" json:"data"`

	// RewardLoRA (objective reward) also trains an SVD-LoRA adapter (rank, alpha, targets;
	// m = 1 with λ fixed to 1) under the score head; false trains the head alone.
	RewardLoRA bool `mapstructure:"reward-lora" json:"reward_lora,omitempty"`
}

// Defaults returns the documented defaults (DESIGN.md §1 for the adapter).
func Defaults() Config {
	return Config{
		Objective: "dpo", Aggregation: "ls", Ideal: "fixed",
		GradAccum: 1, LR: 5e-4, Warmup: 0, MinLRRatio: 0.1, MaxGradNorm: 1,
		Beta1: 0.9, Beta2: 0.999, Beta: 0.1,
		Rank: 8, Alpha: 512, LambdaAlpha: 1, VertexProb: 0.1,
		Seed: 1, SaveEvery: 50, LogEvery: 10, EvalGrid: 11,
		PPO: DefaultPPO(),
	}
}

// Validate checks the configuration and names the offending key.
func (c *Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...)))
	}
	if c.Model == "" {
		bad("model", "required (a folder written by toolkit export)")
	}
	if c.Out == "" {
		bad("out", "required (the run folder)")
	}
	if c.Objective != "dpo" && c.Objective != "sft" && c.Objective != "reward" &&
		c.Objective != "ppo" {
		bad("objective", "%q: want dpo, sft, reward or ppo", c.Objective)
	}
	if c.Aggregation != "ls" && c.Aggregation != "tche" {
		bad("aggregation", "%q: want ls or tche", c.Aggregation)
	}
	if c.Ideal != "fixed" && c.Ideal != "min" {
		bad("ideal", "%q: want fixed or min", c.Ideal)
	}
	if m := len(c.Data.Dimensions); len(c.IdealPoint) != 0 && len(c.IdealPoint) != m {
		bad("ideal-point", "has %d values for %d dimensions", len(c.IdealPoint), m)
	}
	if c.Steps < 0 {
		bad("steps", "must be ≥ 0, got %d", c.Steps)
	}
	if c.GradAccum < 1 {
		bad("grad-accum", "must be ≥ 1, got %d", c.GradAccum)
	}
	if c.LR <= 0 {
		bad("lr", "must be > 0, got %g", c.LR)
	}
	if c.Warmup < 0 || c.MinLRRatio < 0 || c.MinLRRatio > 1 {
		bad("warmup/min-lr-ratio", "warmup ≥ 0 and min-lr-ratio in [0, 1] (got %d, %g)",
			c.Warmup, c.MinLRRatio)
	}
	if c.Beta1 < 0 || c.Beta1 >= 1 || c.Beta2 < 0 || c.Beta2 >= 1 {
		bad("adam-beta1/adam-beta2", "must be in [0, 1)")
	}
	if c.Beta <= 0 {
		bad("beta", "must be > 0, got %g", c.Beta)
	}
	if c.LabelSmoothing < 0 || c.LabelSmoothing >= 0.5 {
		bad("label-smoothing", "must be in [0, 0.5), got %g", c.LabelSmoothing)
	}
	if c.Rank < 1 {
		bad("rank", "must be ≥ 1, got %d", c.Rank)
	}
	if c.Alpha <= 0 {
		bad("alpha", "must be > 0, got %g", c.Alpha)
	}
	if c.LambdaAlpha <= 0 {
		bad("lambda-alpha", "must be > 0, got %g", c.LambdaAlpha)
	}
	if c.VertexProb < 0 || c.VertexProb > 1 {
		bad("vertex-prob", "must be in [0, 1], got %g", c.VertexProb)
	}
	if c.WeightDecay < 0 || c.MaxGradNorm < 0 {
		bad("weight-decay/max-grad-norm", "must be ≥ 0 (got %g, %g)", c.WeightDecay, c.MaxGradNorm)
	}
	if c.SaveEvery < 0 || c.LogEvery < 0 || c.EvalGrid < 0 || c.EvalGrid == 1 {
		bad("save-every/log-every/eval-grid", "must be ≥ 0 (eval-grid 0 or ≥ 2)")
	}
	if c.Objective == "reward" && len(c.Data.Dimensions) != 1 {
		bad("data.dimensions", "objective reward trains one reward model per dimension: "+
			"give exactly 1 dimension, got %d", len(c.Data.Dimensions))
	} else if c.Objective != "reward" && len(c.Data.Dimensions) < 2 {
		bad("data.dimensions", "Panacea needs at least 2 preference dimensions, got %d",
			len(c.Data.Dimensions))
	}
	if err := c.Data.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("data: %w", err))
	}
	if c.Objective == "ppo" {
		errs = append(errs, c.PPO.validate(len(c.Data.Dimensions))...)
	}
	errs = append(errs, checkFinite(c)...)
	if len(errs) > 0 {
		return fmt.Errorf("config: %w", errors.Join(errs...))
	}
	return nil
}

// DimNames lists the dimension names in order.
func (c *Config) DimNames() []string {
	var names []string
	for _, d := range c.Data.Dimensions {
		names = append(names, d.Name)
	}
	return names
}

func (c *Config) String() string {
	return fmt.Sprintf("%s/%s on %s (%s)", c.Objective, c.Aggregation, c.Model,
		strings.Join(c.DimNames(), ", "))
}
