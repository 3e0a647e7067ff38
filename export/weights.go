package export

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"github.com/panacea-go/toolkit/export/safetensors"
	"github.com/panacea-go/toolkit/graphs"
	"github.com/panacea-go/toolkit/graphs/onnxpb"
)

// layout says how a checkpoint tensor is stored in the graph.
type layout uint8

const (
	asIs       layout = iota // same shape and element order as in the checkpoint
	transposed               // 2-D (out, in) in the checkpoint, stored (in, out)
)

// tensorSpec is one row of a family's table from Hugging Face tensor names to graph
// values. The graph code asks for a value by the row's name; the table says its shape and
// how it is stored.
type tensorSpec struct {
	name   string // HF tensor name, after the table's prefix ("model.layers.3.")
	shape  string // shape in the checkpoint, as config quantities: "hidden_size, vocab_size"
	layout layout
	when   string // a family flag that must be set for the tensor to exist; "" = always
}

// weightJob is one initializer whose bytes are streamed after the graph is built.
type weightJob struct {
	tensor *onnxpb.TensorProto // the graph initializer; data filled in by writeWeights
	source string              // name in the checkpoint
	info   safetensors.TensorInfo
	layout layout
}

// weightPlan declares weight initializers while the graph is built, checking each tensor
// against the checkpoint, and remembers them so that their bytes can be streamed later.
type weightPlan struct {
	b      *graphs.Builder
	src    safetensors.Source
	elem   int32                    // graphs.Float or graphs.Float16
	rename func(name string) string // graph (canonical HF) name → checkpoint name
	jobs   []weightJob
	values map[string]string // graph name → float32 value name (for tied reuse)
	used   map[string]bool   // checkpoint names consumed
}

func newWeightPlan(b *graphs.Builder, src safetensors.Source, elem int32) *weightPlan {
	return &weightPlan{b: b, src: src, elem: elem, rename: func(s string) string { return s },
		values: map[string]string{}, used: map[string]bool{}}
}

// load declares every tensor of table that applies (flags select the optional rows) under
// the name prefix+row.name and returns the float32 value of each by row name. dims
// resolves the shape quantities.
func (p *weightPlan) load(prefix string, table []tensorSpec, dims map[string]int64,
	flags map[string]bool) (map[string]string, error) {
	out := map[string]string{}
	for _, row := range table {
		if row.when != "" && !flags[row.when] {
			continue
		}
		name := prefix + row.name
		syms := strings.Split(row.shape, ", ")
		shape := make([]int64, len(syms))
		for i, sym := range syms {
			d, ok := dims[sym]
			if !ok {
				return nil, fmt.Errorf("export: internal: tensor %q: no dimension %q", name, sym)
			}
			shape[i] = d
		}
		v, err := p.weight(name, shape, syms, row.layout)
		if err != nil {
			return nil, err
		}
		out[row.name] = v
	}
	return out, nil
}

// weight declares the initializer name (checkpoint shape want, described by the config
// quantities syms, stored per l) and returns the name of its float32 value: the
// initializer itself, or the output of its Cast when weights are stored as float16.
func (p *weightPlan) weight(name string, want []int64, syms []string, l layout) (string, error) {
	if v, ok := p.values[name]; ok {
		return v, nil
	}
	source := p.rename(name)
	info, err := p.src.Info(source)
	if err != nil {
		if errors.Is(err, safetensors.ErrNotFound) {
			return "", fmt.Errorf("export: tensor %q not found in the checkpoint: %w",
				source, ErrMissingTensor)
		}
		return "", fmt.Errorf("export: tensor %q: %w", source, err)
	}
	if !slices.Equal(info.Shape, want) {
		return "", fmt.Errorf("export: tensor %q has shape %v in the checkpoint, want %v = (%s): %w",
			source, info.Shape, want, strings.Join(syms, ", "), ErrTensorShape)
	}
	if !info.DType.IsFloat() {
		return "", fmt.Errorf("export: tensor %q has dtype %s, want F32, F16 or BF16: %w",
			source, info.DType, ErrTensorShape)
	}
	dims := slices.Clone(want)
	if l == transposed {
		if len(dims) != 2 {
			return "", fmt.Errorf("export: internal: transposed tensor %q is not 2-D", name)
		}
		dims[0], dims[1] = dims[1], dims[0]
	}
	t := &onnxpb.TensorProto{Name: name, DataType: p.elem, Dims: dims}
	p.b.Initializer(t)
	p.jobs = append(p.jobs, weightJob{tensor: t, source: source, info: info, layout: l})
	p.used[source] = true

	value := name
	if p.elem != graphs.Float {
		// The Cast (https://onnx.ai/onnx/operators/onnx__Cast.html) sits right after the
		// initializer so that graph passes can follow it: node "<name>.cast", output
		// "<name>.f32".
		value = name + ".f32"
		node := name + ".cast"
		p.b.Reserve(value)
		p.b.Reserve(node)
		p.b.G.Node = append(p.b.G.Node, &onnxpb.NodeProto{OpType: "Cast", Name: node,
			Input: []string{name}, Output: []string{value},
			Attribute: []*onnxpb.AttributeProto{graphs.AttrInt("to", int64(graphs.Float))},
			DocString: "float32 view of the stored weight " + name})
	}
	p.values[name] = value
	return value, nil
}

// ignoredTensors are checkpoint tensors that are buffers, not weights; they are skipped
// without a warning.
var ignoredTensors = []string{".rotary_emb.inv_freq", ".attn.bias", ".attn.masked_bias"}

// reportUnused logs the checkpoint tensors that the graph does not use.
func (p *weightPlan) reportUnused() {
	var unused []string
	for _, name := range p.src.Names() {
		if p.used[name] || slices.ContainsFunc(ignoredTensors, func(s string) bool {
			return strings.HasSuffix(name, s)
		}) {
			continue
		}
		unused = append(unused, name)
	}
	if len(unused) > 0 {
		slog.Warn("export: checkpoint tensors not used by the graph", "count", len(unused),
			"first", unused[0])
	}
}

// totalBytes is the size of all weights as stored in the graph.
func (p *weightPlan) totalBytes() int64 {
	var n int64
	for _, j := range p.jobs {
		n += graphs.NumElements(j.tensor.Dims) * int64(graphs.ElemSize(p.elem))
	}
	return n
}
