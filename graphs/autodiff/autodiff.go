package autodiff

import (
	"fmt"
	"log/slog"
	"slices"

	"github.com/panacea-go/toolkit/graphs"
	"github.com/panacea-go/toolkit/graphs/onnxpb"
	"github.com/panacea-go/toolkit/graphs/passes"
)

// MinOpset is the oldest ai.onnx opset the pass accepts; models between MinOpset and
// emitOpset are raised to emitOpset (no operator changed meaning in between).
const MinOpset = 13

// emitOpset is the opset the backward nodes need at least (ScatterND and ScatterElements
// with reduction "add" arrived in 16).
const emitOpset = 16

// Config says what to differentiate.
type Config struct {
	// Loss names the value to differentiate: a scalar or a tensor of one element (the
	// gradient of a larger tensor is that of the sum of its elements). It becomes a graph
	// output if it is not one already.
	Loss string
	// Wrt lists the values to differentiate with respect to: graph inputs or initializers
	// of a floating-point type.
	Wrt []string
	// Recompute, when set, selects forward nodes whose outputs the backward pass rebuilds
	// from their inputs instead of reading the forward values, so that ONNX Runtime frees
	// those values after the forward pass (gradient checkpointing). Select whole layers
	// (e.g. every node named "model.layers.N…"): the inputs of a selected region are kept,
	// and the copies are made to wait for the region's cotangent, so that they run only
	// when the backward pass reaches the region.
	Recompute func(n *onnxpb.NodeProto) bool
}

// Result describes the backward pass that [Differentiate] added.
type Result struct {
	// Grads maps each differentiated value to its gradient output's name.
	Grads map[string]string
	// Unreached lists the differentiated values that the loss does not depend on; their
	// gradient outputs are zeros.
	Unreached []string
	// Nodes is the number of nodes added to the graph.
	Nodes int
	// Recomputed is the number of forward nodes cloned into the backward pass.
	Recomputed int
}

// GradName is the name of the graph output holding the gradient of the value named param.
func GradName(param string) string { return param + ".grad" }

// Differentiate appends the backward pass of cfg.Loss with respect to cfg.Wrt to the
// model's graph and exposes each gradient as an output named [GradName](value).
//
// Only nodes on a path from a differentiated value to the loss get a VJP, and within a node
// only the inputs on such a path get a cotangent; integer and boolean values are never
// differentiated. Cotangents that reach a value along several paths are summed. Forward
// values that rules need are read from the forward pass (not recomputed) unless
// cfg.Recompute selects their nodes. Afterwards, nodes and initializers that no graph output
// needs are removed (see passes.Prune).
func Differentiate(m *onnxpb.ModelProto, cfg Config) (*Result, error) {
	g := m.GetGraph()
	if g == nil {
		return nil, fmt.Errorf("autodiff: model has no graph")
	}
	if err := raiseOpset(m); err != nil {
		return nil, err
	}
	if err := passes.SortNodes(g); err != nil {
		return nil, fmt.Errorf("autodiff: %w", err)
	}
	info, err := passes.Infer(m)
	if err != nil {
		return nil, fmt.Errorf("autodiff: %w", err)
	}
	if err := checkConfig(g, info, cfg); err != nil {
		return nil, err
	}
	before := len(g.GetNode())
	forward := slices.Clone(g.GetNode())
	active := activeValues(forward, info, cfg.Wrt)
	useful := usefulNodes(forward, active, cfg.Loss)

	b := graphs.WrapGraph(g)
	c := &Ctx{b: b, info: info, consts: map[constKey]string{}, shapes: map[string]string{},
		recompute: cfg.Recompute, clones: map[string]string{}, scatters: map[string]scatter{},
		links: map[string]chainLink{}, products: map[string]product{}}
	c.indexForward(forward)

	// Seed: dLoss/dLoss = 1 (every element, for a loss of one element).
	grads := map[string][]string{cfg.Loss: {c.onesLike(cfg.Loss)}}

	// Walk the forward nodes backwards, turning output cotangents into input cotangents.
	for i := len(forward) - 1; i >= 0; i-- {
		n := forward[i]
		if !useful[i] {
			continue
		}
		dy := make([]string, len(n.GetOutput()))
		reached := false
		for j, o := range n.GetOutput() {
			if o != "" && len(grads[o]) > 0 {
				dy[j] = c.accumulate(o, grads[o])
				reached = true
			}
		}
		if !reached {
			continue
		}
		dx, err := c.apply(n, dy, active)
		if err != nil {
			return nil, err
		}
		for j, x := range n.GetInput() {
			if j < len(dx) && dx[j] != "" && active[x] {
				grads[x] = append(grads[x], dx[j])
			}
		}
	}

	// Expose one gradient output per differentiated value.
	res := &Result{Grads: map[string]string{}}
	c.b.Scope("grad")
	for _, p := range cfg.Wrt {
		var v string
		if len(grads[p]) == 0 {
			res.Unreached = append(res.Unreached, p)
			slog.Warn("autodiff: loss does not depend on value; its gradient is zero",
				"value", p, "loss", cfg.Loss)
			v = c.zerosLike(p)
		} else {
			v = c.accumulate(p, grads[p])
		}
		name := GradName(p)
		c.b.Output(v, name, info.Elem(p))
		g.Output[len(g.Output)-1] = valueInfo(name, info.Elem(p), info.Shape(p))
		res.Grads[p] = name
	}
	if c.rewired {
		if err := passes.SortNodes(g); err != nil {
			return nil, fmt.Errorf("autodiff: %w", err)
		}
	}
	// Rules may leave nodes unused (a scatter folded into a later rule): drop them, and any
	// forward node that no output needs.
	passes.Prune(g)
	res.Nodes = len(g.GetNode()) - before
	res.Recomputed = c.recomputed
	slog.Debug("autodiff: backward pass added", "loss", cfg.Loss, "params", len(cfg.Wrt),
		"nodes", res.Nodes, "recomputed", res.Recomputed)
	return res, nil
}

// raiseOpset checks the model's ai.onnx opset and raises 13–15 to 16.
func raiseOpset(m *onnxpb.ModelProto) error {
	for _, o := range m.GetOpsetImport() {
		if o.GetDomain() != "" && o.GetDomain() != "ai.onnx" {
			continue
		}
		switch v := o.GetVersion(); {
		case v < MinOpset:
			return fmt.Errorf("autodiff: model uses ai.onnx opset %d; the backward pass needs "+
				"%d or later (re-export the model with a newer opset)", v, MinOpset)
		case v < emitOpset:
			o.Version = emitOpset
		}
		return nil
	}
	return fmt.Errorf("autodiff: model imports no ai.onnx opset")
}

func checkConfig(g *onnxpb.GraphProto, info *passes.Info, cfg Config) error {
	if cfg.Loss == "" {
		return fmt.Errorf("autodiff: no loss named")
	}
	if !info.IsFloat(cfg.Loss) {
		return fmt.Errorf("autodiff: loss %q is not a floating-point value of the graph", cfg.Loss)
	}
	if len(cfg.Wrt) == 0 {
		return fmt.Errorf("autodiff: no values to differentiate")
	}
	sources := map[string]bool{}
	for _, v := range g.GetInput() {
		sources[v.GetName()] = true
	}
	for _, t := range g.GetInitializer() {
		sources[t.GetName()] = true
	}
	seen := map[string]bool{}
	for _, p := range cfg.Wrt {
		switch {
		case !sources[p]:
			return fmt.Errorf("autodiff: %q is neither a graph input nor an initializer", p)
		case !info.IsFloat(p):
			return fmt.Errorf("autodiff: %q has element type %d, not a floating-point type",
				p, info.Elem(p))
		case seen[p]:
			return fmt.Errorf("autodiff: %q listed twice", p)
		}
		seen[p] = true
		for _, o := range g.GetOutput() {
			if o.GetName() == GradName(p) {
				return fmt.Errorf("autodiff: graph already has an output %q", GradName(p))
			}
		}
	}
	for _, o := range g.GetOutput() {
		if o.GetName() == cfg.Loss {
			return nil
		}
	}
	g.Output = append(g.Output, valueInfo(cfg.Loss, info.Elem(cfg.Loss), info.Shape(cfg.Loss)))
	return nil
}

// activeValues marks the floating-point values that depend on a differentiated value.
func activeValues(nodes []*onnxpb.NodeProto, info *passes.Info, wrt []string) map[string]bool {
	active := map[string]bool{}
	for _, p := range wrt {
		active[p] = true
	}
	for _, n := range nodes {
		if !slices.ContainsFunc(n.GetInput(), func(x string) bool { return active[x] }) {
			continue
		}
		for _, o := range n.GetOutput() {
			if o != "" && info.IsFloat(o) {
				active[o] = true
			}
		}
	}
	return active
}

// usefulNodes marks the nodes with an active input and an output on a path to the loss.
func usefulNodes(nodes []*onnxpb.NodeProto, active map[string]bool, loss string) []bool {
	needed := map[string]bool{loss: true}
	useful := make([]bool, len(nodes))
	for i := len(nodes) - 1; i >= 0; i-- {
		n := nodes[i]
		if !slices.ContainsFunc(n.GetOutput(), func(o string) bool { return needed[o] && active[o] }) {
			continue
		}
		useful[i] = true
		for _, x := range n.GetInput() {
			if active[x] {
				needed[x] = true
			}
		}
	}
	return useful
}

// valueInfo declares a value with what is known of its shape: no shape at all when the
// rank is unknown, and dimensions without size or name where they are unknown.
func valueInfo(name string, elem int32, s passes.Shape) *onnxpb.ValueInfoProto {
	tt := &onnxpb.TypeProto_Tensor{ElemType: elem}
	if s.RankKnown {
		tt.Shape = &onnxpb.TensorShapeProto{}
		for _, d := range s.Dims {
			dim := &onnxpb.TensorShapeProto_Dimension{}
			switch {
			case d.Fixed:
				dim.Value = &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: d.Size}
			case d.Param != "":
				dim.Value = &onnxpb.TensorShapeProto_Dimension_DimParam{DimParam: d.Param}
			}
			tt.Shape.Dim = append(tt.Shape.Dim, dim)
		}
	}
	return &onnxpb.ValueInfoProto{Name: name,
		Type: &onnxpb.TypeProto{Value: &onnxpb.TypeProto_TensorType{TensorType: tt}}}
}
