package trainer

import (
	"github.com/panacea-go/toolkit/export"
	"github.com/panacea-go/toolkit/graphs"
	"github.com/panacea-go/toolkit/graphs/onnxpb"
)

// Names of the PPO graphs' extra inputs, parameters and outputs.
const (
	InOldLogp     = "old_logp"     // float (rows, seq): log π_old(target_t) from the rollout
	InAdvantages  = "advantages"   // float (rows, seq): GAE advantages (whitened)
	InReturns     = "returns"      // float (rows, seq): advantages + old values
	InOldValues   = "old_values"   // float (rows, seq): value estimates from the rollout
	InTokenWeight = "token_weight" // float (rows, seq): loss_mask / Σ loss_mask
	ValueWeight   = "value.head.weight"
	ValueBias     = "value.head.bias"
	OutTokLogp    = "tok_logp" // float (rows, seq)
	OutValues     = "values"   // float (rows, seq)
	OutPGLoss     = "pg_loss"  // float (1)
	OutVLoss      = "v_loss"   // float (1)
	OutEntropy    = "entropy"  // float (1), mean over response tokens
)

// PPOSpec holds the coefficients of the PPO loss and the rollouts' sampling temperature.
type PPOSpec struct {
	Clip, ValueClip, VFCoef, EntCoef float64
	Temperature                      float64 // > 0; 1 leaves the logits as they are
}

// temperedLogits returns the logits the rollouts were sampled from, logits / T, so that
// the policy's, the old policy's and the reference's log-probs all describe the sampling
// distribution (with T ≠ 1 the unscaled ones would make PPO off-policy and the KL estimate
// biased). https://onnx.ai/onnx/operators/onnx__Mul.html
func temperedLogits(b *graphs.Builder, temperature float64) string {
	if temperature == 1 || temperature <= 0 {
		return export.Logits
	}
	return b.Op("Mul", export.Logits, b.ScalarFloat(1/temperature, graphs.Float))
}

// addValueHead adds V = hidden·w + b (rows, seq) with w (H, 1) and b (1) graph inputs. The
// value head shares the policy's trunk and adapter (its gradient reaches the adapter too).
func addValueHead(b *graphs.Builder, hidden string, size int) string {
	b.Input(ValueWeight, graphs.Float, size, 1)
	b.Input(ValueBias, graphs.Float, 1)
	v := b.Op("MatMul", hidden, ValueWeight) // (rows, seq, 1)
	return b.Op("Add", b.Op("Squeeze", v, b.ConstInt64(-1)), ValueBias)
}

// addPPOScore turns a policy graph into one whose outputs are tok_logp (of logits / T) and
// values, for scoring rollouts (the old policy's log-probs and values).
func addPPOScore(model *onnxpb.ModelProto, hiddenSize int, temperature float64) error {
	b, hidden, err := trunk(model.GetGraph())
	if err != nil {
		return err
	}
	l := lossBuilder{b: b}
	prev := l.b.Scope("ppo")
	defer l.b.Scope(prev)
	tok, _ := l.tokenLogp(temperedLogits(l.b, temperature))
	values := addValueHead(l.b, hidden, hiddenSize)
	l.b.Output(tok, OutTokLogp, graphs.Float, "rows", "seq")
	l.b.Output(values, OutValues, graphs.Float, "rows", "seq")
	return nil
}

// addPPOLoss turns a policy graph into the PPO loss graph. With W = token_weight, A the
// advantages, R the returns, ρ = exp(logπ − logπ_old):
//
//	L_pg  = Σ W·max(−A·ρ, −A·clip(ρ, 1−ε, 1+ε))
//	V_c   = V_old + clip(V − V_old, −ε_v, ε_v)
//	L_v   = ½ Σ W·max((V − R)², (V_c − R)²)
//	H     = Σ W·(−Σ_v p_v log p_v)
//	loss  = L_pg + c_v·L_v − c_e·H
//
// Log-probabilities are of logits / spec.Temperature (see temperedLogits). Outputs: loss,
// pg_loss, v_loss, entropy (each (1)) and tok_logp (rows, seq).
// https://onnx.ai/onnx/operators/onnx__Clip.html, https://onnx.ai/onnx/operators/onnx__Max.html
func addPPOLoss(model *onnxpb.ModelProto, hiddenSize int, spec PPOSpec) error {
	b, hidden, err := trunk(model.GetGraph())
	if err != nil {
		return err
	}
	l := lossBuilder{b: b}
	prev := b.Scope("ppo")
	defer b.Scope(prev)
	for _, in := range []string{InOldLogp, InAdvantages, InReturns, InOldValues, InTokenWeight} {
		b.Input(in, graphs.Float, "rows", "seq")
	}
	f := func(v float64) string { return b.ScalarFloat(v, graphs.Float) }
	sum := func(x string) string { // Σ over all elements of x·W, shape (1)
		return b.Node("ReduceSum", []string{b.Op("Reshape", b.Op("Mul", x, InTokenWeight),
			b.ConstInt64(-1)), b.ConstInt64(0)}, graphs.AttrInt("keepdims", 1))
	}

	logits := temperedLogits(b, spec.Temperature)
	tok, logp := l.tokenLogp(logits)
	ratio := b.Op("Exp", b.Op("Sub", tok, InOldLogp))
	negA := b.Op("Neg", InAdvantages)
	clipped := b.Op("Clip", ratio, f(1-spec.Clip), f(1+spec.Clip))
	pg := sum(b.Op("Max", b.Op("Mul", negA, ratio), b.Op("Mul", negA, clipped)))

	values := addValueHead(b, hidden, hiddenSize)
	delta := b.Op("Clip", b.Op("Sub", values, InOldValues), f(-spec.ValueClip), f(spec.ValueClip))
	vClipped := b.Op("Add", InOldValues, delta)
	sq := func(x string) string { d := b.Op("Sub", x, InReturns); return b.Op("Mul", d, d) }
	vl := b.Op("Mul", f(0.5), sum(b.Op("Max", sq(values), sq(vClipped))))

	loss := b.Op("Add", pg, b.Op("Mul", f(spec.VFCoef), vl))
	ent := ""
	if spec.EntCoef > 0 {
		p := b.Node("Softmax", []string{logits}, graphs.AttrInt("axis", -1))
		h := b.Op("Neg", b.Node("ReduceSum", []string{b.Op("Mul", p, logp), b.ConstInt64(-1)},
			graphs.AttrInt("keepdims", 0))) // (rows, seq)
		ent = sum(h)
		loss = b.Op("Sub", loss, b.Op("Mul", f(spec.EntCoef), ent))
	}
	b.Output(loss, OutLoss, graphs.Float, 1)
	b.Output(pg, OutPGLoss, graphs.Float, 1)
	b.Output(vl, OutVLoss, graphs.Float, 1)
	if ent != "" {
		b.Output(ent, OutEntropy, graphs.Float, 1)
	}
	b.Output(tok, OutTokLogp, graphs.Float, "rows", "seq")
	return nil
}
