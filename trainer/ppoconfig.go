package trainer

import (
	"fmt"
)

// PPOConfig holds the settings of RLHF training with PPO (objective ppo). Keys are the
// flags of `toolkit train`.
type PPOConfig struct {
	// RewardModels are reward-model folders (written by objective reward), one per
	// dimension, in the order of data.dimensions.
	RewardModels []string `mapstructure:"reward-models" json:"reward_models,omitempty"`
	// KLCoef weighs the per-token KL penalty −kl·(log π(y_t) − log π_ref(y_t)).
	KLCoef float64 `mapstructure:"kl-coef" json:"kl_coef"`
	// Gamma and GAELambda are GAE's discount γ and λ_GAE.
	Gamma     float64 `mapstructure:"gamma" json:"gamma"`
	GAELambda float64 `mapstructure:"gae-lambda" json:"gae_lambda"`
	// ClipRange is ε of the clipped policy ratio; ValueClip that of the value estimate.
	ClipRange float64 `mapstructure:"clip-range" json:"clip_range"`
	ValueClip float64 `mapstructure:"value-clip" json:"value_clip"`
	// VFCoef weighs the value loss, EntCoef the entropy bonus (0: off).
	VFCoef  float64 `mapstructure:"vf-coef" json:"vf_coef"`
	EntCoef float64 `mapstructure:"ent-coef" json:"ent_coef"`
	// PPOEpochs passes over each rollout batch, in minibatches of MiniBatch rows.
	PPOEpochs int `mapstructure:"ppo-epochs" json:"ppo_epochs"`
	MiniBatch int `mapstructure:"minibatch" json:"minibatch"`
	// RolloutBatch prompts are generated per step (each with its own λ draw).
	RolloutBatch int `mapstructure:"rollout-batch" json:"rollout_batch"`
	// MaxNewTokens, Temperature and TopP control rollout sampling.
	MaxNewTokens int     `mapstructure:"max-new-tokens" json:"max_new_tokens"`
	Temperature  float64 `mapstructure:"temperature" json:"temperature"`
	TopP         float64 `mapstructure:"top-p" json:"top_p"`
	// RewardNorm is running (normalise each dimension's reward by its running mean and
	// standard deviation) or none. RewardClip bounds the aggregated reward (0: no bound).
	RewardNorm string  `mapstructure:"reward-norm" json:"reward_norm"`
	RewardClip float64 `mapstructure:"reward-clip" json:"reward_clip"`
	// SampleEvery writes sample generations at fixed λ every N steps (0: only at the end).
	SampleEvery int `mapstructure:"sample-every" json:"sample_every"`
}

// DefaultPPO returns the documented PPO defaults.
func DefaultPPO() PPOConfig {
	return PPOConfig{KLCoef: 0.05, Gamma: 1, GAELambda: 0.95, ClipRange: 0.2, ValueClip: 0.2,
		VFCoef: 0.1, PPOEpochs: 2, MiniBatch: 4, RolloutBatch: 8, MaxNewTokens: 24,
		Temperature: 1, TopP: 1, RewardNorm: "running", RewardClip: 5, SampleEvery: 0}
}

func (p *PPOConfig) validate(m int) []error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...)))
	}
	if len(p.RewardModels) != m {
		bad("reward-models", "objective ppo needs one reward model per dimension (%d), got %d",
			m, len(p.RewardModels))
	}
	if p.KLCoef < 0 {
		bad("kl-coef", "must be ≥ 0, got %g", p.KLCoef)
	}
	if p.Gamma <= 0 || p.Gamma > 1 || p.GAELambda < 0 || p.GAELambda > 1 {
		bad("gamma/gae-lambda", "gamma in (0, 1] and gae-lambda in [0, 1] (got %g, %g)",
			p.Gamma, p.GAELambda)
	}
	if p.ClipRange <= 0 || p.ValueClip <= 0 {
		bad("clip-range/value-clip", "must be > 0 (got %g, %g)", p.ClipRange, p.ValueClip)
	}
	if p.VFCoef < 0 || p.EntCoef < 0 {
		bad("vf-coef/ent-coef", "must be ≥ 0 (got %g, %g)", p.VFCoef, p.EntCoef)
	}
	if p.PPOEpochs < 1 || p.MiniBatch < 1 || p.RolloutBatch < 1 {
		bad("ppo-epochs/minibatch/rollout-batch", "must be ≥ 1 (got %d, %d, %d)", p.PPOEpochs,
			p.MiniBatch, p.RolloutBatch)
	}
	if p.MaxNewTokens < 1 {
		bad("max-new-tokens", "must be ≥ 1, got %d", p.MaxNewTokens)
	}
	// TODO: with top-p < 1 the rollouts come from the renormalised nucleus while the
	// log-probs PPO uses are of the whole tempered distribution (slightly off-policy).
	if p.Temperature <= 0 || p.TopP <= 0 || p.TopP > 1 {
		bad("temperature/top-p", "temperature > 0 (PPO learns from sampled rollouts) and "+
			"top-p in (0, 1] (got %g, %g)", p.Temperature, p.TopP)
	}
	if p.RewardNorm != "running" && p.RewardNorm != "none" {
		bad("reward-norm", "%q: want running or none", p.RewardNorm)
	}
	if p.RewardClip < 0 || p.SampleEvery < 0 {
		bad("reward-clip/sample-every", "must be ≥ 0")
	}
	return errs
}
