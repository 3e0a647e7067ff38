package gradcheck

import (
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"

	onnx "github.com/yalue/onnxruntime_go"
	"google.golang.org/protobuf/proto"

	"github.com/panacea-go/toolkit/graphs"
	"github.com/panacea-go/toolkit/graphs/autodiff"
	"github.com/panacea-go/toolkit/graphs/lora"
	"github.com/panacea-go/toolkit/graphs/onnxpb"
	"github.com/panacea-go/toolkit/graphs/passes"
	"github.com/panacea-go/toolkit/ort"
)

// Names of the values the check adds to the graph.
const (
	targetsInput = "gradcheck_targets" // int64 (batch, seq): the next-token ids
	maskInput    = "gradcheck_mask"    // float64 (batch, seq): 1 where a token counts
	lossOutput   = "gradcheck_loss"    // float64 (1)
)

// Run checks the adapter gradients of the model in the export folder dir (see the package
// documentation). ONNX Runtime must be loaded (ort.Init). The model is held in memory in
// float64, so this suits small models.
func Run(dir string, opts Options) (*Report, error) {
	opts.defaults()
	path := filepath.Join(dir, opts.ModelFile)
	m, err := graphs.Load(path)
	if err != nil {
		return nil, fmt.Errorf("gradcheck: %w", err)
	}
	family, _ := graphs.Metadata(m, "model_type")
	if err := passes.ToDouble(m, dir); err != nil {
		return nil, fmt.Errorf("gradcheck: %w", err)
	}

	// Step 1: the adapter, fed as inputs.
	targets := opts.Targets
	if len(targets) == 0 {
		if targets, err = lora.DefaultTargets(family); err != nil {
			slog.Warn("gradcheck: using every family's targets", "err", err)
			targets, _ = lora.DefaultTargets("")
		}
	}
	rep, err := lora.Apply(m, lora.Config{Targets: targets, Rank: opts.Rank, Dims: opts.Dims,
		Alpha: opts.Alpha, Seed: opts.Seed, AsInputs: true})
	if err != nil {
		return nil, fmt.Errorf("gradcheck: %w", err)
	}

	// Step 2: the loss on top of the logits, and the feeds.
	logits, err := findLogits(m)
	if err != nil {
		return nil, err
	}
	vocab := opts.Vocab
	if vocab == 0 {
		info, err := passes.Infer(m)
		if err != nil {
			return nil, fmt.Errorf("gradcheck: %w", err)
		}
		s := info.Shape(logits)
		if s.Rank() != 3 || !s.Dims[2].Fixed {
			return nil, fmt.Errorf("gradcheck: the vocabulary size is not in the shape of %q "+
				"%v: set Options.Vocab", logits, s)
		}
		vocab = int(s.Dims[2].Size)
	}
	addLoss(m, logits)
	rng := rand.New(rand.NewPCG(opts.Seed, 0x9c))
	fd, err := newFeeds(m, rep, opts, vocab, rng)
	if err != nil {
		return nil, err
	}
	defer fd.destroy()

	// Step 3: the forward graph (for differences) and the backward graph.
	forward := proto.Clone(m).(*onnxpb.ModelProto)
	names := rep.ParamNames()
	res, err := autodiff.Differentiate(m, autodiff.Config{Loss: lossOutput, Wrt: names})
	if err != nil {
		return nil, fmt.Errorf("gradcheck: %w", err)
	}
	grads, loss, err := fd.gradients(m, names, res, opts.Threads)
	if err != nil {
		return nil, err
	}
	fwd, err := fd.session(forward, []string{lossOutput}, opts.Threads)
	if err != nil {
		return nil, err
	}
	defer fwd.Close()

	// Step 4: central differences on sampled entries, grouped by parameter kind.
	report := &Report{Model: path, Family: family, Layers: len(rep.Layers), Params: rep.Params,
		Loss: loss, Tolerance: opts.Tolerance}
	for _, kind := range []string{lora.SuffixU, lora.SuffixV, lora.SuffixSigma, lora.SuffixS} {
		g, err := fd.checkGroup(fwd, kind, names, grads, opts, rng)
		if err != nil {
			return nil, err
		}
		report.Groups = append(report.Groups, g)
	}
	return report, nil
}

// findLogits returns the graph output named "logits", else the only float output of rank 3.
func findLogits(m *onnxpb.ModelProto) (string, error) {
	var cands []string
	for _, o := range m.GetGraph().GetOutput() {
		if o.GetName() == "logits" {
			return o.GetName(), nil
		}
		tt := o.GetType().GetTensorType()
		if passes.IsFloatType(tt.GetElemType()) && len(tt.GetShape().GetDim()) == 3 {
			cands = append(cands, o.GetName())
		}
	}
	if len(cands) != 1 {
		return "", fmt.Errorf("gradcheck: no output named logits and %d rank-3 float outputs", len(cands))
	}
	return cands[0], nil
}

// addLoss replaces the graph's outputs by the token-level cross-entropy of the logits:
//
//	logits (B, S, V) ─▶ LogSoftmax ─▶ GatherElements(targets) ─▶ (B, S, 1)
//	loss = −Σ mask ⊙ log p(target) / Σ mask        (shape [1])
func addLoss(m *onnxpb.ModelProto, logits string) {
	g := m.GetGraph()
	b := graphs.WrapGraph(g)
	b.Scope("gradcheck")
	b.Input(targetsInput, graphs.Int64, "batch", "seq")
	b.Input(maskInput, graphs.Double, "batch", "seq")
	logp := b.Node("LogSoftmax", []string{logits}, graphs.AttrInt("axis", -1))
	picked := b.Node("GatherElements", []string{logp, b.Op("Unsqueeze", targetsInput,
		b.ConstInt64(-1))}, graphs.AttrInt("axis", -1))
	mask := b.Op("Unsqueeze", maskInput, b.ConstInt64(-1))
	total := b.Node("ReduceSum", []string{b.Op("Mul", picked, mask)}, graphs.AttrInt("keepdims", 0))
	count := b.Node("ReduceSum", []string{maskInput}, graphs.AttrInt("keepdims", 0))
	loss := b.Op("Reshape", b.Op("Neg", b.Op("Div", total, count)), b.ConstInt64(1))
	g.Output = nil
	b.Output(loss, lossOutput, graphs.Double, 1)
	passes.Prune(g)
}

// groupOf returns the parameter names of one kind (suffix).
func groupOf(names []string, suffix string) []string {
	var out []string
	for _, n := range names {
		if strings.HasSuffix(n, suffix) {
			out = append(out, n)
		}
	}
	return out
}

// checkGroup compares analytic and numeric derivatives on sampled entries of every tensor of
// one kind.
func (fd *feeds) checkGroup(fwd *ort.Session, suffix string, names []string,
	grads map[string][]float64, opts Options, rng *rand.Rand) (Group, error) {
	g := Group{Name: strings.TrimPrefix(suffix, ".lora_")}
	tensors := groupOf(names, suffix)
	g.Tensors = len(tensors)
	sumSq, count := 0.0, 0
	for _, p := range tensors {
		for _, v := range grads[p] {
			sumSq += v * v
			count++
		}
	}
	floor := 1e-3 * math.Sqrt(sumSq/float64(max(count, 1)))
	for _, p := range tensors {
		v := fd.params[p]
		idx := rng.Perm(len(v))
		idx = idx[:min(len(idx), opts.Samples)]
		slices.Sort(idx)
		for _, i := range idx {
			num, err := fd.derivative(fwd, v, i, opts.Step)
			if err != nil {
				return g, err
			}
			ana := grads[p][i]
			abs := math.Abs(ana - num)
			rel := abs / math.Max(math.Max(math.Abs(ana), math.Abs(num)), floor)
			if math.IsNaN(abs) {
				rel, abs = math.NaN(), math.NaN()
			}
			g.Checked++
			g.MaxAbs = nanMax(g.MaxAbs, abs)
			if rel > g.MaxRel || math.IsNaN(rel) {
				g.Worst = fmt.Sprintf("%s[%d]", p, i)
			}
			g.MaxRel = nanMax(g.MaxRel, rel)
		}
	}
	return g, nil
}

// derivative returns the numeric derivative of the loss along v[i]: central differences at
// steps h and h/2 combined by Richardson extrapolation, (4·D(h/2) − D(h))/3, whose error is
// O(h⁴) instead of O(h²) (a model with sharp softmaxes has large third derivatives).
func (fd *feeds) derivative(fwd *ort.Session, v []float64, i int, h float64) (float64, error) {
	orig := v[i]
	defer func() { v[i] = orig }()
	central := func(h float64) (float64, error) {
		v[i] = orig + h
		lp, err := fd.loss(fwd)
		if err != nil {
			return 0, err
		}
		v[i] = orig - h
		lm, err := fd.loss(fwd)
		return (lp - lm) / (2 * h), err
	}
	d1, err := central(h)
	if err != nil {
		return 0, err
	}
	d2, err := central(h / 2)
	return (4*d2 - d1) / 3, err
}

// nanMax is max that keeps a NaN, so that a broken gradient is never reported as fine.
func nanMax(a, b float64) float64 {
	if math.IsNaN(a) || math.IsNaN(b) {
		return math.NaN()
	}
	return math.Max(a, b)
}

// tensorOf wraps a float64 slice (no copy) for ONNX Runtime.
func tensorOf(shape []int64, v []float64) (onnx.Value, error) {
	return onnx.NewTensor(onnx.NewShape(shape...), v)
}
