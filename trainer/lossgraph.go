package trainer

import (
	"fmt"

	"github.com/panacea-go/toolkit/graphs"
	"github.com/panacea-go/toolkit/graphs/onnxpb"
)

// Names of the inputs and outputs the loss subgraphs add to a policy graph.
const (
	InTargets    = "targets"     // int64 (rows, seq): the token each position must predict
	InLossMask   = "loss_mask"   // float (rows, seq): 1 where the target is a response token
	InRefLogp    = "ref_logp"    // float (rows): the reference model's sequence log-probs
	InDimWeight  = "dim_weight"  // float (units, m): onehot(dimension)/count per unit
	InAggWeight  = "agg_weight"  // float (m): λ for the aggregation
	InIdeal      = "ideal"       // float (m): Tchebycheff ideal point z
	OutSeqLogp   = "seq_logp"    // float (rows): Σ_t mask·log π(target_t | prefix)
	OutLoss      = "loss"        // float (1): the λ-aggregated loss
	OutDimLosses = "dim_losses"  // float (m): per-dimension losses
	OutMargins   = "margins"     // float (pairs): DPO implicit reward margins
	OutUnitLoss  = "unit_losses" // float (units): per-pair (DPO) or per-row (SFT) losses
)

// lossBuilder adds loss nodes after a graph's logits.
type lossBuilder struct {
	b *graphs.Builder
}

// seqLogp adds
//
//	logp_tok = GatherElements(LogSoftmax(logits), targets)   (rows, seq)
//	seq_logp = Σ_t logp_tok · loss_mask                      (rows)
//
// and returns (seq_logp, logp_tok·loss_mask).
// https://onnx.ai/onnx/operators/onnx__LogSoftmax.html,
// https://onnx.ai/onnx/operators/onnx__GatherElements.html
func (l lossBuilder) seqLogp(logits string) (seq, maskedTok string) {
	b := l.b
	b.Input(InLossMask, graphs.Float, "rows", "seq")
	tok, _ := l.tokenLogp(logits)
	maskedTok = b.Op("Mul", tok, InLossMask)
	seq = b.Node("ReduceSum", []string{maskedTok, b.ConstInt64(1)}, graphs.AttrInt("keepdims", 0))
	return seq, maskedTok
}

// tokenLogp adds the targets input and returns log π(target_t | prefix) (rows, seq) and
// the whole log-softmax (rows, seq, vocab).
func (l lossBuilder) tokenLogp(logits string) (tok, logp string) {
	b := l.b
	b.Input(InTargets, graphs.Int64, "rows", "seq")
	logp = b.Node("LogSoftmax", []string{logits}, graphs.AttrInt("axis", -1)) // (rows, seq, vocab)
	idx := b.Op("Unsqueeze", InTargets, b.ConstInt64(-1))                     // (rows, seq, 1)
	tok = b.Node("GatherElements", []string{logp, idx}, graphs.AttrInt("axis", -1))
	return b.Op("Squeeze", tok, b.ConstInt64(-1)), logp
}

// logSigmoid adds log σ(x) = min(x, 0) − log(1 + exp(−|x|)), stable for large |x|.
func (l lossBuilder) logSigmoid(x string) string {
	b := l.b
	zero := b.ScalarFloat(0, graphs.Float)
	one := b.ScalarFloat(1, graphs.Float)
	soft := b.Op("Log", b.Op("Add", one, b.Op("Exp", b.Op("Neg", b.Op("Abs", x)))))
	return b.Op("Sub", b.Op("Min", x, zero), soft)
}

// dpoUnits adds the DPO loss of each pair. Rows hold the B chosen responses, then the B
// rejected ones:
//
//	h_b    = β·[(logπ(y_w) − logπ_ref(y_w)) − (logπ(y_l) − logπ_ref(y_l))]
//	loss_b = −(1−ε)·log σ(h_b) − ε·log σ(−h_b)       (ε: label smoothing)
func (l lossBuilder) dpoUnits(seq string, beta, smoothing float64) (units, margins string) {
	b := l.b
	b.Input(InRefLogp, graphs.Float, "rows")
	delta := b.Op("Sub", seq, InRefLogp) // (2B)
	halves := b.NodeN("Split", []string{delta}, 2, graphs.AttrInt("axis", 0),
		graphs.AttrInt("num_outputs", 2))
	margins = b.Op("Mul", b.ScalarFloat(beta, graphs.Float), b.Op("Sub", halves[0], halves[1]))
	units = b.Op("Mul", b.ScalarFloat(-(1-smoothing), graphs.Float), l.logSigmoid(margins))
	if smoothing > 0 {
		neg := l.logSigmoid(b.Op("Neg", margins))
		units = b.Op("Sub", units, b.Op("Mul", b.ScalarFloat(smoothing, graphs.Float), neg))
	}
	return units, margins
}

// sftUnits adds each row's summed token NLL, −Σ_t mask·log π; dim_weight then divides by the
// number of response tokens of the row's dimension, giving a per-dimension token mean.
func (l lossBuilder) sftUnits(maskedTok string) string {
	b := l.b
	sum := b.Node("ReduceSum", []string{maskedTok, b.ConstInt64(1)}, graphs.AttrInt("keepdims", 0))
	return b.Op("Neg", sum)
}

// aggregate adds per-dimension losses L = unitsᵀ·dim_weight (m) and the aggregated loss:
//
//	LS:          Σ_i w_i·L_i
//	Tchebycheff: max_i w_i·(L_i − z_i)
func (l lossBuilder) aggregate(units string, m int, tche bool) (loss, dims string) {
	b := l.b
	b.Input(InDimWeight, graphs.Float, "units", m)
	b.Input(InAggWeight, graphs.Float, m)
	row := b.Op("Unsqueeze", units, b.ConstInt64(0))                          // (1, units)
	dims = b.Op("Squeeze", b.Op("MatMul", row, InDimWeight), b.ConstInt64(0)) // (m)
	if tche {
		b.Input(InIdeal, graphs.Float, m)
		gap := b.Op("Mul", InAggWeight, b.Op("Sub", dims, InIdeal))
		loss = b.Node("ReduceMax", []string{gap, b.ConstInt64(0)}, graphs.AttrInt("keepdims", 1))
	} else {
		loss = b.Node("ReduceSum", []string{b.Op("Mul", InAggWeight, dims), b.ConstInt64(0)},
			graphs.AttrInt("keepdims", 1))
	}
	return loss, dims
}

// LossSpec says which objective a step graph computes.
type LossSpec struct {
	Objective string // "dpo" or "sft"
	Dims      int    // m
	Tche      bool   // Tchebycheff instead of linear scalarization
	Beta      float64
	Smoothing float64
}

// AddLoss turns a policy model (output "logits") into a loss model: its outputs become loss
// (1), dim_losses (m), unit_losses and, for DPO, margins. The logits output is dropped.
func AddLoss(model *onnxpb.ModelProto, spec LossSpec) error {
	g := model.GetGraph()
	logits := ""
	for _, o := range g.GetOutput() {
		if o.GetName() == "logits" {
			logits = o.GetName()
		}
	}
	if logits == "" {
		return fmt.Errorf("trainer: the policy graph has no logits output")
	}
	g.Output = nil
	l := lossBuilder{b: graphs.WrapGraph(g)}
	prev := l.b.Scope("loss")
	defer l.b.Scope(prev)
	seq, masked := l.seqLogp(logits)
	var units, margins string
	switch spec.Objective {
	case "dpo":
		units, margins = l.dpoUnits(seq, spec.Beta, spec.Smoothing)
	case "sft":
		units = l.sftUnits(masked)
	default:
		return fmt.Errorf("trainer: unknown objective %q (want dpo or sft)", spec.Objective)
	}
	loss, dims := l.aggregate(units, spec.Dims, spec.Tche)
	l.b.Output(loss, OutLoss, graphs.Float, 1)
	l.b.Output(dims, OutDimLosses, graphs.Float, spec.Dims)
	l.b.Output(units, OutUnitLoss, graphs.Float, "units")
	if margins != "" {
		l.b.Output(margins, OutMargins, graphs.Float, "pairs")
	}
	return nil
}

// AddSeqLogp turns a model with a logits output into one whose only output is seq_logp
// (rows): the summed log-probability of the masked targets. Used for reference log-probs
// and evaluation.
func AddSeqLogp(model *onnxpb.ModelProto) error {
	g := model.GetGraph()
	found := false
	for _, o := range g.GetOutput() {
		found = found || o.GetName() == "logits"
	}
	if !found {
		return fmt.Errorf("trainer: the graph has no logits output")
	}
	g.Output = nil
	l := lossBuilder{b: graphs.WrapGraph(g)}
	prev := l.b.Scope("logp")
	defer l.b.Scope(prev)
	seq, _ := l.seqLogp("logits")
	l.b.Output(seq, OutSeqLogp, graphs.Float, "rows")
	return nil
}
