package trainer

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/panacea-go/toolkit/export"
	"github.com/panacea-go/toolkit/graphs"
	"github.com/panacea-go/toolkit/graphs/lora"
	"github.com/panacea-go/toolkit/graphs/onnxpb"
	"github.com/panacea-go/toolkit/graphs/passes"
)

// Names of the reward graphs' parameters and outputs.
const (
	// RewardHead is the score head's weight, (hidden, 1).
	RewardHead = "reward.score.weight"
	// RewardOffset is the deployed model's bias: minus the mean training score (1).
	RewardOffset = "reward.score.offset"
	// OutScore is the deployed reward model's output, float (batch): one score per row.
	OutScore = "score"
	// OutRowScores is the step graph's per-row score before the offset, float (rows).
	OutRowScores = "row_scores"
	// OutPooled is the hidden state at each row's last attended token, float (rows, H):
	// the output of a head-only run's feature graph and the input of its step graph.
	OutPooled = "pooled"
)

// hiddenValue returns the value holding the final-norm hidden state (batch, seq, hidden):
// the hidden_states output of an export made with export.Options.Hidden, or else the first
// input of the MatMul that makes logits (every export of this toolkit ends in
// MatMul(hidden, head), seen through the Identity that names the output).
func hiddenValue(g *onnxpb.GraphProto) (string, error) {
	for _, o := range g.GetOutput() {
		if o.GetName() == export.HiddenStates {
			return o.GetName(), nil
		}
	}
	producer := map[string]*onnxpb.NodeProto{}
	for _, n := range g.GetNode() {
		for _, o := range n.GetOutput() {
			producer[o] = n
		}
	}
	v := export.Logits
	for range 4 {
		n, ok := producer[v]
		if !ok {
			break
		}
		switch n.GetOpType() {
		case "Identity":
			v = n.GetInput()[0]
			continue
		case "MatMul":
			return n.GetInput()[0], nil
		}
		break
	}
	return "", fmt.Errorf("trainer: the model has no %s output and its logits are not "+
		"MatMul(hidden, head): re-export it with export.Options.Hidden", export.HiddenStates)
}

// addScore appends the reward head to a graph whose hidden state is hidden (batch, seq, H):
//
//	pooled_b = see addPooled                          (batch, H)
//	score_b  = pooled_b · w                           (batch), w = RewardHead (H, 1)
//
// w is a graph input when head is nil (training), else an initializer holding head.
func addScore(b *graphs.Builder, hidden string, size int, head []float32) string {
	return addHead(b, addPooled(b, hidden, size), size, head)
}

// addHead appends score_b = pooled_b · w (batch) to a graph holding pooled (batch, H); w is
// a graph input when head is nil, else an initializer holding head.
func addHead(b *graphs.Builder, pooled string, size int, head []float32) string {
	prev := b.Scope("reward")
	defer b.Scope(prev)
	if head == nil {
		b.Input(RewardHead, graphs.Float, size, 1)
	} else {
		b.Initializer(graphs.FloatTensor(RewardHead, []int64{int64(size), 1}, head))
	}
	return b.Op("Squeeze", b.Op("MatMul", pooled, RewardHead), b.ConstInt64(1)) // (batch)
}

// addPooled appends the hidden state at each row's last attended token:
//
//	last_b   = max_t t·mask_bt                        the last attended position (either
//	                                                  padding side)
//	pooled_b = hidden[b, last_b, :]                   (batch, H), a GatherElements on axis 1
//
// https://onnx.ai/onnx/operators/onnx__GatherElements.html,
// https://onnx.ai/onnx/operators/onnx__ReduceMax.html
func addPooled(b *graphs.Builder, hidden string, size int) string {
	prev := b.Scope("reward")
	defer b.Scope(prev)
	mask := export.AttentionMask                                             // (batch, seq)
	seq := b.Node("Gather", []string{b.Op("Shape", mask), b.ScalarInt64(1)}) // ()
	pos := b.Op("Range", b.ScalarInt64(0), seq, b.ScalarInt64(1))            // (seq)
	last := b.Node("ReduceMax", []string{b.Op("Mul", mask, pos), b.ConstInt64(1)},
		graphs.AttrInt("keepdims", 1)) // (batch, 1)
	rows := b.Op("Slice", b.Op("Shape", mask), b.ConstInt64(0), b.ConstInt64(1))
	idx := b.Op("Expand", b.Op("Unsqueeze", last, b.ConstInt64(2)),
		b.Node("Concat", []string{rows, b.ConstInt64(1, int64(size))}, graphs.AttrInt("axis", 0)))
	pooled := b.Node("GatherElements", []string{hidden, idx}, graphs.AttrInt("axis", 1))
	return b.Op("Squeeze", pooled, b.ConstInt64(1)) // (batch, H)
}

// addBradleyTerry appends the loss of pairs whose rows hold the P chosen responses, then
// the P rejected ones (the layout of datasets.PreferenceBatch):
//
//	margin_p = score_p − score_{P+p}
//	loss     = −(1/P) Σ_p log σ(margin_p)                  (1)
func addBradleyTerry(b *graphs.Builder, score string) (loss, margins string) {
	prev := b.Scope("bradley_terry")
	defer b.Scope(prev)
	halves := b.NodeN("Split", []string{score}, 2, graphs.AttrInt("axis", 0),
		graphs.AttrInt("num_outputs", 2))
	margins = b.Op("Sub", halves[0], halves[1]) // (pairs)
	units := b.Op("Neg", lossBuilder{b: b}.logSigmoid(margins))
	loss = b.Node("ReduceMean", []string{units, b.ConstInt64(0)}, graphs.AttrInt("keepdims", 1))
	return loss, margins
}

// rewardBase loads the base model of cfg, with the SVD-LoRA adapter when cfg.RewardLoRA
// (m = 1; its λ input is fed ones, so the adapter is a rank k+1 branch whose last singular
// value is s), drops its outputs and returns a builder on its graph with the value holding
// the final hidden state (see hiddenValue). asInputs makes the adapter's parameters graph
// inputs (training).
func rewardBase(cfg *Config, man *export.Manifest, asInputs bool) (*rewardModel, error) {
	rm := &rewardModel{}
	var err error
	if cfg.RewardLoRA {
		rm.model, rm.rep, err = loadPolicy(cfg, man, asInputs)
	} else {
		rm.model, err = graphs.Load(filepath.Join(cfg.Model, ModelFile))
	}
	if err != nil {
		return nil, err
	}
	if rm.b, rm.hidden, err = trunk(rm.model.GetGraph()); err != nil {
		return nil, err
	}
	return rm, nil
}

// trunk prepares a model's graph for a new head: it finds the final hidden state (see
// hiddenValue), drops the graph's outputs (the caller adds its own) and returns a builder
// on the graph.
func trunk(g *onnxpb.GraphProto) (*graphs.Builder, string, error) {
	hidden, err := hiddenValue(g)
	if err != nil {
		return nil, "", err
	}
	g.Output = nil
	return graphs.WrapGraph(g), hidden, nil
}

// rewardModel is a base model on its way to a reward graph.
type rewardModel struct {
	model  *onnxpb.ModelProto
	rep    *lora.Report // nil without LoRA
	b      *graphs.Builder
	hidden string // (batch, seq, H)
}

// rewardStepGraph builds the training graph: base (+ adapter) → score → Bradley–Terry loss,
// with outputs loss (1), row_scores (rows), margins (pairs); the LM head is pruned by the
// backward pass. It returns the graph and the adapter report (nil without LoRA).
func rewardStepGraph(cfg *Config, man *export.Manifest) (*onnxpb.ModelProto, *lora.Report, error) {
	rm, err := rewardBase(cfg, man, true)
	if err != nil {
		return nil, nil, err
	}
	b := rm.b
	score := addScore(b, rm.hidden, man.HiddenSize, nil)
	loss, margins := addBradleyTerry(b, score)
	b.Output(loss, OutLoss, graphs.Float, 1)
	b.Output(score, OutRowScores, graphs.Float, "rows")
	b.Output(margins, OutMargins, graphs.Float, "pairs")
	return rm.model, rm.rep, nil
}

// pooledGraph builds the frozen base's feature graph of a head-only run: input_ids and
// attention_mask (rows, seq) in, pooled (rows, H) out (see addPooled).
func pooledGraph(cfg *Config, man *export.Manifest) (*onnxpb.ModelProto, error) {
	rm, err := rewardBase(cfg, man, false)
	if err != nil {
		return nil, err
	}
	rm.b.Output(addPooled(rm.b, rm.hidden, man.HiddenSize), OutPooled, graphs.Float, "rows",
		man.HiddenSize)
	passes.Prune(rm.b.G)
	return rm.model, nil
}

// headStepGraph builds the training graph of a head-only run on cached features: pooled
// (rows, H) in, then head → score → Bradley–Terry loss, with the outputs of
// rewardStepGraph.
func headStepGraph(size int) *onnxpb.ModelProto {
	b := graphs.NewBuilder("reward_head")
	pooled := b.Input(OutPooled, graphs.Float, "rows", size)
	score := addHead(b, pooled, size, nil)
	loss, margins := addBradleyTerry(b, score)
	b.Output(loss, OutLoss, graphs.Float, 1)
	b.Output(score, OutRowScores, graphs.Float, "rows")
	b.Output(margins, OutMargins, graphs.Float, "pairs")
	return b.Model("panacea-toolkit")
}

// rewardDeployGraph builds the deployable reward model: inputs input_ids and
// attention_mask (batch, seq), output score (batch) = pooled · w + offset, the head and the
// adapter baked in as initializers. Inputs the base needs beyond those two become constants
// computed from the batch size: λ = ones (batch, 1) and empty past key/values
// (batch, kv_heads, 0, head_dim).
func rewardDeployGraph(cfg *Config, man *export.Manifest, params []*Param, head []float32,
	offset float32) (*onnxpb.ModelProto, error) {
	rm, err := rewardBase(cfg, man, false)
	if err != nil {
		return nil, err
	}
	var adapter []*Param
	for _, p := range params {
		if p.Name != RewardHead {
			adapter = append(adapter, p)
		}
	}
	if err := setInitializers(rm.model, adapter); err != nil {
		return nil, err
	}
	b := rm.b
	if err := constantInputs(b); err != nil {
		return nil, err
	}
	score := addScore(b, rm.hidden, man.HiddenSize, head)
	off := b.Initializer(graphs.FloatTensor(RewardOffset, []int64{1}, []float32{offset}))
	b.Output(b.Op("Add", score, off), OutScore, graphs.Float, "batch")
	if err := passes.SortNodes(b.G); err != nil { // the constants went last; Prune needs order
		return nil, fmt.Errorf("trainer: reward model: %w", err)
	}
	passes.Prune(b.G)
	graphs.SetMetadata(rm.model, "reward_model", "score = hidden_states[last attended] · w + offset")
	return rm.model, nil
}

// constantInputs replaces every graph input other than input_ids and attention_mask by a
// ConstantOfShape node of the same name: λ (batch, m) becomes ones, a past input (batch,
// kv_heads, past, head_dim) an empty tensor with past = 0.
// https://onnx.ai/onnx/operators/onnx__ConstantOfShape.html
func constantInputs(b *graphs.Builder) error {
	g := b.G
	var keep []*onnxpb.ValueInfoProto
	var nodes []*onnxpb.NodeProto
	var batch string
	prev := b.Scope("reward_inputs")
	defer b.Scope(prev)
	for _, in := range g.GetInput() {
		name := in.GetName()
		if name == export.InputIDs || name == export.AttentionMask {
			keep = append(keep, in)
			continue
		}
		if batch == "" {
			batch = b.Op("Slice", b.Op("Shape", export.InputIDs), b.ConstInt64(0), b.ConstInt64(1))
		}
		dims := in.GetType().GetTensorType().GetShape().GetDim()
		var rest []int64
		var value float32
		switch {
		case name == LambdaInput && len(dims) == 2:
			rest, value = []int64{dims[1].GetDimValue()}, 1
		case strings.HasPrefix(name, "past_key_values.") && len(dims) == 4:
			rest = []int64{dims[1].GetDimValue(), 0, dims[3].GetDimValue()}
		default:
			return fmt.Errorf("trainer: reward model: no constant for graph input %q", name)
		}
		shape := b.Node("Concat", []string{batch, b.ConstInt64(rest...)}, graphs.AttrInt("axis", 0))
		nodes = append(nodes, &onnxpb.NodeProto{OpType: "ConstantOfShape",
			Name: b.Unique("const_" + name), Input: []string{shape}, Output: []string{name},
			Attribute: []*onnxpb.AttributeProto{graphs.AttrTensor("value",
				graphs.FloatTensor("value", []int64{1}, []float32{value}))}})
	}
	g.Input = keep
	g.Node = append(g.Node, nodes...)
	return nil
}
