package lora

import (
	"fmt"
	"log/slog"
	"math/rand/v2"
	"regexp"
	"strings"

	"github.com/panacea-go/toolkit/graphs"
	"github.com/panacea-go/toolkit/graphs/onnxpb"
	"github.com/panacea-go/toolkit/graphs/passes"
)

// DefaultLambda is the name of the preference-vector graph input.
const DefaultLambda = "lambda"

// DefaultInitStd is the standard deviation of U's and V's initial values.
const DefaultInitStd = 0.02

// Config says which layers to adapt and how.
type Config struct {
	// Targets are regular expressions matched against the weight initializer's name and the
	// node's name; a layer is adapted when any matches. See [DefaultTargets].
	Targets []string
	// Rank is k, the number of learned singular values (≥ 1).
	Rank int
	// Dims is m, the number of preference dimensions (≥ 1).
	Dims int
	// Alpha is α; the branch is scaled by α/k.
	Alpha float64
	// Seed seeds the initial values of U and V.
	Seed uint64
	// AsInputs makes U, V, σ and s graph inputs (training); otherwise they are initializers
	// holding the initial values (deployment).
	AsInputs bool
	// InitStd is the standard deviation of U and V at initialisation (0: [DefaultInitStd]).
	InitStd float64
	// Lambda names the preference-vector input (empty: [DefaultLambda]).
	Lambda string
	// BatchDim is the symbolic name of λ's first dimension (empty: "batch").
	BatchDim string
}

// Param is one adapter parameter: its graph name and shape.
type Param struct {
	Name  string
	Shape []int64
}

// Layer describes one adapted linear layer.
type Layer struct {
	// Node is the name of the adapted MatMul or Gemm node.
	Node string
	// Weight is the name of the frozen weight initializer.
	Weight string
	// DIn and DOut are the layer's input and output widths.
	DIn, DOut int64
	// U (d_out, k+m), V (d_in, k+m), Sigma (k) and S (1) are the adapter's parameters.
	U, V, Sigma, S Param
	// Shared is true when the layer reuses the adapter of an earlier node with the same
	// weight (tied weights): its parameters are counted once.
	Shared bool
}

// Params returns the layer's parameters in the order U, V, σ, s.
func (l Layer) Params() []Param { return []Param{l.U, l.V, l.Sigma, l.S} }

// Report says what [Apply] did.
type Report struct {
	// Layers lists the adapted layers in graph order.
	Layers []Layer
	// Params is the adapter's parameter count.
	Params int64
	// Lambda is the name of the preference-vector input, of shape (batch, m).
	Lambda string
	// Elem is the element type of the adapter parameters and of λ.
	Elem int32
	// Init holds the initial value of every adapter parameter, by name (row-major).
	Init map[string][]float32
}

// ParamNames lists every adapter parameter once, in layer order and U, V, σ, s within a layer.
func (r *Report) ParamNames() []string {
	var names []string
	for _, l := range r.Layers {
		if l.Shared {
			continue
		}
		for _, p := range l.Params() {
			names = append(names, p.Name)
		}
	}
	return names
}

// Suffixes of the adapter parameter names, appended to the weight's name.
const (
	SuffixU     = ".lora_U"
	SuffixV     = ".lora_V"
	SuffixSigma = ".lora_sigma"
	SuffixS     = ".lora_s"
)

func (cfg *Config) check() ([]*regexp.Regexp, error) {
	if cfg.Rank < 1 || cfg.Dims < 1 {
		return nil, fmt.Errorf("lora: rank %d and preference dimensions %d must both be ≥ 1",
			cfg.Rank, cfg.Dims)
	}
	if len(cfg.Targets) == 0 {
		return nil, fmt.Errorf("lora: no target patterns (see lora.DefaultTargets)")
	}
	if cfg.InitStd == 0 {
		cfg.InitStd = DefaultInitStd
	}
	if cfg.Lambda == "" {
		cfg.Lambda = DefaultLambda
	}
	if cfg.BatchDim == "" {
		cfg.BatchDim = "batch"
	}
	res := make([]*regexp.Regexp, len(cfg.Targets))
	for i, t := range cfg.Targets {
		re, err := regexp.Compile(t)
		if err != nil {
			return nil, fmt.Errorf("lora: target %q: %w", t, err)
		}
		res[i] = re
	}
	return res, nil
}

// candidate is a MatMul or Gemm node whose weight is a 2-D initializer.
type candidate struct {
	node      *onnxpb.NodeProto
	weight    *onnxpb.TensorProto
	din, dout int64
}

// findCandidates lists the linear layers of a graph: MatMul(x, W′) and Gemm(x, W′, …) where
// W′ is a 2-D initializer W, possibly through Cast, Identity and 2-D Transpose nodes (f16
// weights cast to f32, tied embeddings used transposed). Gemm with transA is left alone.
func findCandidates(g *onnxpb.GraphProto) []candidate {
	inits := map[string]*onnxpb.TensorProto{}
	for _, t := range g.GetInitializer() {
		inits[t.GetName()] = t
	}
	producer := map[string]*onnxpb.NodeProto{}
	for _, n := range g.GetNode() {
		for _, o := range n.GetOutput() {
			producer[o] = n
		}
	}
	var out []candidate
	for _, n := range g.GetNode() {
		op := n.GetOpType()
		if (op != "MatMul" && op != "Gemm") || n.GetDomain() != "" || len(n.GetInput()) < 2 {
			continue
		}
		if op == "Gemm" && passes.AttrInt(n, "transA", 0) != 0 {
			// TODO: Gemm(xᵀ, W) would need the branch on Transpose(x); no exporter we know
			// writes linear layers that way.
			slog.Debug("lora: skipping Gemm with transA", "node", n.GetName())
			continue
		}
		w, transposed := traceWeight(n.GetInput()[1], inits, producer)
		if w == nil || len(w.GetDims()) != 2 {
			continue
		}
		if op == "Gemm" && passes.AttrInt(n, "transB", 0) != 0 {
			transposed = !transposed
		}
		din, dout := w.GetDims()[0], w.GetDims()[1]
		if transposed {
			din, dout = dout, din
		}
		out = append(out, candidate{node: n, weight: w, din: din, dout: dout})
	}
	return out
}

// traceWeight follows a value back through Cast, Identity and Transpose to an initializer and
// reports whether an odd number of transposes lies on the way.
func traceWeight(v string, inits map[string]*onnxpb.TensorProto,
	producer map[string]*onnxpb.NodeProto) (*onnxpb.TensorProto, bool) {
	transposed := false
	for range 8 {
		if t, ok := inits[v]; ok {
			return t, transposed
		}
		p, ok := producer[v]
		if !ok || len(p.GetInput()) == 0 {
			return nil, false
		}
		switch p.GetOpType() {
		case "Cast", "Identity":
		case "Transpose":
			if perm, ok := passes.AttrInts(p, "perm"); ok && !(len(perm) == 2 && perm[0] == 1) {
				return nil, false
			}
			transposed = !transposed
		default:
			return nil, false
		}
		v = p.GetInput()[0]
	}
	return nil, false
}

func matches(res []*regexp.Regexp, c candidate) bool {
	for _, re := range res {
		if re.MatchString(c.weight.GetName()) || re.MatchString(c.node.GetName()) {
			return true
		}
	}
	return false
}

// Apply inserts an SVD-LoRA branch beside every MatMul or Gemm whose weight is a 2-D
// initializer matched by cfg.Targets, adds the λ input (batch, m), and returns what it
// adapted. It fails when the targets match no layer. Each layer is rewritten so:
//
//	x ─▶ MatMul(x, W) ─▶ y ─▶ …
//
//	becomes
//
//	x ─┬─▶ MatMul(x, W) ─────────────────────────────────────▶ y/base ─▶ Add ─▶ y ─▶ …
//	   └─▶ MatMul(x, V) ─▶ h ─▶ Mul(h, d) ─▶ MatMul(·, Transpose(U)) ──────┘
//	       (…, k+m)                           (…, d_out)
//
//	d = (α/k) · Concat(Expand(σ, [batch, k]), s·λ)  viewed as (batch, 1, k+m)
//
// W may reach the node through Cast (float16 weights), Identity or a 2-D Transpose; Gemm
// (transB or not, with or without bias) gets the branch added to its output.
func Apply(m *onnxpb.ModelProto, cfg Config) (*Report, error) {
	res, err := cfg.check()
	if err != nil {
		return nil, err
	}
	g := m.GetGraph()
	if g == nil {
		return nil, fmt.Errorf("lora: model has no graph")
	}
	for _, v := range g.GetInput() {
		if v.GetName() == cfg.Lambda {
			return nil, fmt.Errorf("lora: graph already has an input %q (adapter applied twice?)",
				cfg.Lambda)
		}
	}
	if err := passes.SortNodes(g); err != nil {
		return nil, fmt.Errorf("lora: %w", err)
	}
	info, err := passes.Infer(m)
	if err != nil {
		return nil, fmt.Errorf("lora: %w", err)
	}

	all := findCandidates(g)
	var chosen []candidate
	for _, c := range all {
		if matches(res, c) {
			chosen = append(chosen, c)
		}
	}
	if len(chosen) == 0 {
		var names []string
		for i, c := range all {
			if i == 8 {
				names = append(names, "…")
				break
			}
			names = append(names, c.weight.GetName())
		}
		return nil, fmt.Errorf("lora: targets %q match none of the %d linear layers (weights: %s)",
			cfg.Targets, len(all), strings.Join(names, ", "))
	}

	elem := info.Elem(chosen[0].node.GetOutput()[0])
	if !passes.IsFloatType(elem) {
		elem = graphs.Float
	}
	ins := &inserter{cfg: cfg, info: info, b: graphs.WrapGraph(g), elem: elem,
		rng:      rand.New(rand.NewPCG(cfg.Seed, 0x5eed)),
		report:   &Report{Lambda: cfg.Lambda, Elem: elem, Init: map[string][]float32{}},
		byWeight: map[string]Layer{}}
	ins.b.Input(cfg.Lambda, elem, cfg.BatchDim, cfg.Dims)
	for _, c := range chosen {
		if err := ins.insert(c); err != nil {
			return nil, err
		}
	}
	if err := passes.SortNodes(g); err != nil {
		return nil, fmt.Errorf("lora: %w", err)
	}
	slog.Info("lora: adapter inserted", "layers", len(ins.report.Layers),
		"params", ins.report.Params, "rank", cfg.Rank, "dims", cfg.Dims)
	return ins.report, nil
}
