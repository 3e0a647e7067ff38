package lora

import (
	"math/rand/v2"
	"strings"

	"github.com/panacea-go/toolkit/graphs"
	"github.com/panacea-go/toolkit/graphs/onnxpb"
	"github.com/panacea-go/toolkit/graphs/passes"
)

// inserter adds the branches one layer at a time, sharing the values that depend on λ only.
type inserter struct {
	cfg      Config
	info     *passes.Info
	b        *graphs.Builder
	elem     int32
	rng      *rand.Rand
	report   *Report
	byWeight map[string]Layer

	batchK string // [batch, k], built once
	batch  string // [batch], built once
}

// insert rewrites one linear layer as drawn at [Apply]. For x of a rank other than 3 (e.g. a
// Gemm on (batch·seq, d_in)), h is viewed as (batch, −1, k+m) for the product with d, which
// assumes batch-major rows.
// TODO: a layer written W·x (weight first) is not matched; no exporter we know does that.
func (in *inserter) insert(c candidate) error {
	b := in.b
	n := c.node
	y := n.GetOutput()[0]
	layer, shared := in.byWeight[c.weight.GetName()]
	if !shared {
		layer = in.newLayer(c)
		in.byWeight[c.weight.GetName()] = layer
	} else {
		layer.Node, layer.Shared = n.GetName(), true
	}
	in.report.Layers = append(in.report.Layers, layer)

	prev := b.Scope(n.GetName() + "/lora")
	defer b.Scope(prev)
	base := b.Unique(y + "/base")
	n.Output[0] = base
	in.info.SetElem(base, in.info.Elem(y))

	x := n.GetInput()[0]
	r := int64(in.cfg.Rank + in.cfg.Dims)
	h := b.Op("MatMul", x, layer.V.Name) // (…, k+m)
	d := in.diag(layer)                  // (batch, k+m)
	var hd string
	if in.info.Shape(x).Rank() == 3 {
		hd = b.Op("Mul", h, b.Op("Unsqueeze", d, b.ConstInt64(1))) // (batch, seq, k+m)
	} else {
		view := b.Node("Concat", []string{in.batchShape(), b.ConstInt64(-1, r)},
			graphs.AttrInt("axis", 0))
		hv := b.Op("Reshape", h, view)
		hd = b.Op("Reshape", b.Op("Mul", hv, b.Op("Unsqueeze", d, b.ConstInt64(1))),
			b.Op("Shape", h))
	}
	branch := b.Op("MatMul", hd, b.Node("Transpose", []string{layer.U.Name})) // (…, d_out)
	b.G.Node = append(b.G.Node, &onnxpb.NodeProto{OpType: "Add", Name: b.Unique("add"),
		Input: []string{base, branch}, Output: []string{y}})
	return nil
}

// diag returns (α/k)·[σ, s·λ] of shape (batch, k+m) for a layer.
func (in *inserter) diag(l Layer) string {
	b := in.b
	k := int64(in.cfg.Rank)
	if in.batchK == "" {
		in.batchK = b.Node("Concat", []string{in.batchShape(), b.ConstInt64(k)},
			graphs.AttrInt("axis", 0))
	}
	sigma := b.Op("Expand", l.Sigma.Name, in.batchK)     // (batch, k)
	scaledLambda := b.Op("Mul", in.cfg.Lambda, l.S.Name) // (batch, m)
	d := b.Node("Concat", []string{sigma, scaledLambda}, graphs.AttrInt("axis", -1))
	scale := b.Initializer(tensor(b.Unique("scale"), in.elem, nil,
		[]float32{float32(in.cfg.Alpha / float64(k))}))
	return b.Op("Mul", d, scale)
}

// batchShape returns [batch] read from λ's shape, built once.
func (in *inserter) batchShape() string {
	if in.batch == "" {
		prev := in.b.Scope("lora")
		in.batch = in.b.Op("Slice", in.b.Op("Shape", in.cfg.Lambda), in.b.ConstInt64(0),
			in.b.ConstInt64(1))
		in.b.Scope(prev)
	}
	return in.batch
}

// newLayer creates the adapter parameters of one layer (inputs or initializers) with their
// initial values.
func (in *inserter) newLayer(c candidate) Layer {
	w := c.weight.GetName()
	base := paramBase(w, c.node.GetName())
	k, m := int64(in.cfg.Rank), int64(in.cfg.Dims)
	l := Layer{Node: c.node.GetName(), Weight: w, DIn: c.din, DOut: c.dout,
		U:     Param{base + SuffixU, []int64{c.dout, k + m}},
		V:     Param{base + SuffixV, []int64{c.din, k + m}},
		Sigma: Param{base + SuffixSigma, []int64{k}},
		S:     Param{base + SuffixS, []int64{1}},
	}
	for _, p := range l.Params() {
		v := make([]float32, graphs.NumElements(p.Shape))
		if p.Name == l.U.Name || p.Name == l.V.Name {
			for i := range v {
				v[i] = float32(in.rng.NormFloat64() * in.cfg.InitStd)
			}
		}
		in.report.Init[p.Name] = v
		in.report.Params += int64(len(v))
		if in.cfg.AsInputs {
			dims := make([]graphs.Dim, len(p.Shape))
			for i, d := range p.Shape {
				dims[i] = d
			}
			in.b.Input(p.Name, in.elem, dims...)
		} else {
			in.b.Initializer(tensor(p.Name, in.elem, p.Shape, v))
		}
		in.info.SetElem(p.Name, in.elem)
		in.info.SetShape(p.Name, passes.FixedShape(p.Shape...))
	}
	return l
}

// paramBase is the prefix of a layer's adapter parameter names: the weight's name, or, when
// the exporter generated it (torch.onnx's "onnx::MatMul_123"), the node's module path
// ("/blocks.0/attn/q_proj/MatMul" → "blocks.0.attn.q_proj").
func paramBase(weight, node string) string {
	if !strings.HasPrefix(weight, "onnx::") || node == "" {
		return weight
	}
	path := strings.Trim(strings.ReplaceAll(node, "/", "."), ".")
	if i := strings.LastIndex(path, "."); i > 0 {
		path = path[:i] // drop the op name
	}
	return path
}

// tensor stores float32 values as a tensor of element type elem.
func tensor(name string, elem int32, dims []int64, v []float32) *onnxpb.TensorProto {
	switch elem {
	case graphs.Double:
		d := make([]float64, len(v))
		for i, x := range v {
			d[i] = float64(x)
		}
		return graphs.DoubleTensor(name, dims, d)
	case graphs.Float16:
		raw := make([]byte, 2*len(v))
		for i, x := range v {
			h := graphs.FloatToHalf(x)
			raw[2*i], raw[2*i+1] = byte(h), byte(h>>8)
		}
		return graphs.RawTensor(name, elem, dims, raw)
	}
	return graphs.FloatTensor(name, dims, v)
}
