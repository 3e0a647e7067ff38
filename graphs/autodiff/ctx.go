package autodiff

import (
	"encoding/binary"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strings"

	"github.com/panacea-go/toolkit/graphs"
	"github.com/panacea-go/toolkit/graphs/onnxpb"
	"github.com/panacea-go/toolkit/graphs/passes"
)

// Rule builds the VJP of one operator. It receives the forward node and the cotangents of
// its outputs (dy[i] is "" when output i has none, i.e. a zero cotangent) and returns the
// cotangents of the node's inputs, in input order, with "" for inputs that get none (not
// differentiable, not needed, or zero). Rules read forward values through [Ctx.X] and
// [Ctx.Y] and add nodes through the Ctx; a rule computes only the inputs for which
// [Ctx.Needs] is true.
type Rule func(c *Ctx, n *onnxpb.NodeProto, dy []string) ([]string, error)

// Ctx is what a [Rule] works with: the graph being extended, what is known statically about
// its values, and helpers that add common node patterns.
type Ctx struct {
	b     *graphs.Builder
	info  *passes.Info
	node  *onnxpb.NodeProto
	needs []bool

	consts map[constKey]string
	shapes map[string]string // value → the name holding its shape
	memo   map[string]string // op, inputs and attributes → output, for one-output nodes

	// scatters records the cotangents that gatherElementsRule built as a scatter into
	// zeros, so that logSoftmaxRule can fold the zeros away.
	scatters map[string]scatter

	links map[string]chainLink // cotangent → the Gemm that may take a C input
	// products records dA = G·Bᵀ of batched MatMuls Y = A·B (no broadcasting), so that a
	// Softmax producing A can use Y and G (softmaxRule).
	products map[string]product
	rewired  bool // a chain link took a C input: the nodes need sorting

	recompute  func(*onnxpb.NodeProto) bool
	producer   map[string]*onnxpb.NodeProto
	clones     map[string]string // forward value → its recomputed copy
	gates      map[[2]string]string
	trigger    string // a cotangent of the node being differentiated
	recomputed int
}

// scatter is a cotangent ScatterElements(base, idx, updates, axis, reduction=add), with
// base "" for zeros. When base = dense·scale with scale broadcast along axis (size 1
// there), dense and scale are recorded too.
type scatter struct {
	base, idx, updates string
	dense, scale       string
	axis               int64
}

type constKey struct {
	elem int32
	repr string
}

func (c *Ctx) indexForward(nodes []*onnxpb.NodeProto) {
	c.producer = map[string]*onnxpb.NodeProto{}
	for _, n := range nodes {
		for _, o := range n.GetOutput() {
			c.producer[o] = n
		}
	}
}

// apply runs the rule of node n.
func (c *Ctx) apply(n *onnxpb.NodeProto, dy []string, active map[string]bool) ([]string, error) {
	key := n.GetOpType()
	if d := n.GetDomain(); d != "" && d != "ai.onnx" {
		key = d + ":" + key
	}
	rule, ok := rules[key]
	if !ok {
		return nil, fmt.Errorf("autodiff: no gradient rule for op %s (node %q); supported: %s",
			key, n.GetName(), strings.Join(Ops(), ", "))
	}
	c.node = n
	c.needs = make([]bool, len(n.GetInput()))
	for i, x := range n.GetInput() {
		c.needs[i] = x != "" && active[x]
	}
	scope := n.GetName()
	if scope == "" {
		scope = n.GetOpType()
	}
	prev := c.b.Scope("grad/" + scope)
	defer c.b.Scope(prev)
	c.trigger = ""
	for _, g := range dy {
		if g != "" {
			c.trigger = g
			break
		}
	}
	dx, err := rule(c, n, dy)
	if err != nil {
		return nil, fmt.Errorf("autodiff: %s node %q: %w", n.GetOpType(), n.GetName(), err)
	}
	if len(dx) > len(n.GetInput()) {
		return nil, fmt.Errorf("autodiff: %s node %q: rule returned %d cotangents for %d inputs",
			n.GetOpType(), n.GetName(), len(dx), len(n.GetInput()))
	}
	return dx, nil
}

// Needs reports whether the current node's input i needs a cotangent.
func (c *Ctx) Needs(i int) bool { return i < len(c.needs) && c.needs[i] }

// X returns the forward value of the current node's input i (its recomputed copy when the
// producing node is selected for recomputation).
func (c *Ctx) X(i int) string { return c.fwd(passes.Input(c.node, i)) }

// Y returns the forward value of the current node's output i.
func (c *Ctx) Y(i int) string {
	if i >= len(c.node.GetOutput()) {
		return ""
	}
	return c.fwd(c.node.GetOutput()[i])
}

// Info returns what is known statically about the graph's values.
func (c *Ctx) Info() *passes.Info { return c.info }

// Rank returns the static rank of a value, or an error naming it when unknown.
func (c *Ctx) Rank(v string) (int, error) {
	if r := c.info.Shape(v).Rank(); r >= 0 {
		return r, nil
	}
	return 0, fmt.Errorf("rank of %q is not known statically", v)
}

// Node adds a node with one output and returns the output's name.
func (c *Ctx) Node(op string, inputs []string, attrs ...graphs.Attr) string {
	return c.NodeN(op, inputs, 1, attrs...)[0]
}

// NodeN adds a node with n outputs and returns their names. A one-output node identical to
// one added before (same op, inputs and attributes) is not added again: its output is reused.
func (c *Ctx) NodeN(op string, inputs []string, n int, attrs ...graphs.Attr) []string {
	key := ""
	if n == 1 {
		var b strings.Builder
		fmt.Fprintf(&b, "%s\x00%q", op, inputs)
		for _, a := range attrs {
			fmt.Fprintf(&b, "\x00%s=%v%v%q%v%v", a.GetName(), a.GetI(), a.GetInts(), a.GetS(),
				a.GetF(), a.GetFloats())
			if t := a.GetT(); t != nil {
				fmt.Fprintf(&b, "%d%v%x", t.GetDataType(), t.GetDims(), t.GetRawData())
			}
		}
		key = b.String()
		if out, ok := c.memo[key]; ok {
			return []string{out}
		}
	}
	outs := c.b.NodeN(op, inputs, n, attrs...)
	c.infer(c.b.G.Node[len(c.b.G.Node)-1])
	if key != "" {
		if c.memo == nil {
			c.memo = map[string]string{}
		}
		c.memo[key] = outs[0]
	}
	return outs
}

// fresh adds a node with one output that is never shared with an identical request (see
// NodeN), for values that are modified later (chain links), and returns the node too.
func (c *Ctx) fresh(op string, inputs []string, attrs ...graphs.Attr) (string, *onnxpb.NodeProto) {
	out := c.b.Node(op, inputs, attrs...)
	n := c.b.G.Node[len(c.b.G.Node)-1]
	c.infer(n)
	return out, n
}

// Op adds a node with one output and no attributes.
func (c *Ctx) Op(op string, inputs ...string) string { return c.Node(op, inputs) }

func (c *Ctx) infer(n *onnxpb.NodeProto) {
	if err := c.info.InferNode(n); err != nil {
		slog.Debug("autodiff: no static shape for a backward node", "node", n.GetName(), "err", err)
	}
}

// Scalar returns a rank-0 constant v of the element type of like.
func (c *Ctx) Scalar(v float64, like string) string {
	return c.floatConst(v, c.info.Elem(like), nil)
}

func (c *Ctx) floatConst(v float64, elem int32, dims []int64) string {
	key := constKey{elem, fmt.Sprint("f", v, dims)}
	if name, ok := c.consts[key]; ok {
		return name
	}
	name := c.b.Unique("const")
	var t *onnxpb.TensorProto
	n := int(graphs.NumElements(dims))
	switch elem {
	case graphs.Double:
		t = graphs.DoubleTensor(name, dims, repeat(v, n))
	case graphs.Float16, graphs.BFloat:
		raw := make([]byte, 2*n)
		bits := graphs.FloatToHalf(float32(v))
		if elem == graphs.BFloat {
			bits = uint16(math.Float32bits(float32(v)) >> 16)
		}
		for i := range n {
			binary.LittleEndian.PutUint16(raw[2*i:], bits)
		}
		t = graphs.RawTensor(name, elem, dims, raw)
	default:
		f := make([]float32, n)
		for i := range f {
			f[i] = float32(v)
		}
		t = graphs.FloatTensor(name, dims, f)
	}
	c.b.Initializer(t)
	c.info.AddConst(name, t)
	c.consts[key] = name
	return name
}

func repeat(v float64, n int) []float64 {
	out := make([]float64, n)
	for i := range out {
		out[i] = v
	}
	return out
}

// Ints returns a 1-D int64 constant.
func (c *Ctx) Ints(v ...int64) string {
	key := constKey{graphs.Int64, fmt.Sprint("i", v)}
	if name, ok := c.consts[key]; ok {
		return name
	}
	t := graphs.Int64Tensor(c.b.Unique("ints"), []int64{int64(len(v))}, v)
	c.b.Initializer(t)
	c.info.AddConst(t.GetName(), t)
	c.consts[key] = t.GetName()
	return t.GetName()
}

// ShapeOf returns a 1-D int64 value holding the run-time shape of v: a constant when the
// shape is fixed, else a Shape node (one per value).
func (c *Ctx) ShapeOf(v string) string {
	if s, ok := c.shapes[v]; ok {
		return s
	}
	var s string
	if sizes, ok := c.info.Shape(v).Sizes(); ok {
		s = c.Ints(sizes...)
	} else {
		s = c.early("Shape", v)
	}
	c.shapes[v] = s
	return s
}

// early adds op(v) (Shape or Size) right after the forward node that produces v, instead of
// in the backward pass: the small result is then computed during the forward pass, and v
// need not stay alive (nor lose in-place reuse) until the backward pass reads its shape.
func (c *Ctx) early(op, v string) string {
	out := c.Op(op, v)
	p, ok := c.producer[v]
	if !ok || c.clones[v] != "" {
		return out
	}
	nodes := c.b.G.Node
	last := nodes[len(nodes)-1]
	if len(last.GetOutput()) != 1 || last.GetOutput()[0] != out {
		return out // shared with an earlier identical node, already placed
	}
	at := slices.Index(nodes, p)
	if at < 0 {
		return out
	}
	nodes = nodes[:len(nodes)-1]
	c.b.G.Node = slices.Insert(nodes, at+1, last)
	return out
}

// fill returns a tensor of the shape held by shape, filled with v, of element type elem.
func (c *Ctx) fill(shape string, v float64, elem int32) string {
	val := c.floatConstTensor(v, elem)
	return c.Node("ConstantOfShape", []string{shape}, graphs.AttrTensor("value", val))
}

func (c *Ctx) floatConstTensor(v float64, elem int32) *onnxpb.TensorProto {
	switch elem {
	case graphs.Double:
		return graphs.DoubleTensor("", []int64{1}, []float64{v})
	case graphs.Float16:
		raw := make([]byte, 2)
		binary.LittleEndian.PutUint16(raw, graphs.FloatToHalf(float32(v)))
		return graphs.RawTensor("", elem, []int64{1}, raw)
	}
	return graphs.FloatTensor("", []int64{1}, []float32{float32(v)})
}

// zerosLike returns zeros of v's shape and element type.
func (c *Ctx) zerosLike(v string) string { return c.fill(c.ShapeOf(v), 0, c.info.Elem(v)) }

// onesLike returns ones of v's shape and element type.
func (c *Ctx) onesLike(v string) string { return c.fill(c.ShapeOf(v), 1, c.info.Elem(v)) }

// product is the cotangent dA = G·Bᵀ of Y = A·B: a the forward value A, g the cotangent
// of Y, y the forward Y.
type product struct {
	a, g, y string
}

// chainLink is a cotangent made by a Gemm without a C input (the input gradient of a
// MatMul by a weight): gemm is that Gemm node, and shape2d, when set, the shape that turns
// a cotangent of the value into the Gemm's 2-D output (the cotangent is the Gemm's output
// seen through a Reshape). Such a cotangent is read only by the accumulation.
type chainLink struct {
	gemm    *onnxpb.NodeProto
	shape2d string
}

// accumulate sums the cotangent contributions that reached value v. Contributions made by
// a chain link's Gemm are not summed by a Sum: each such Gemm takes the running sum of the
// others as its C input (Y = A·Bᵀ + C), which ONNX Runtime adds inside the matrix product,
// instead of a separate pass over every contribution. Rewired Gemms read values made after
// them, so Differentiate re-sorts the nodes afterwards.
func (c *Ctx) accumulate(v string, parts []string) string {
	if len(parts) == 1 {
		return parts[0]
	}
	prev := c.b.Scope("grad/sum")
	defer c.b.Scope(prev)
	var links, rest []string
	if e := c.info.Elem(v); e == graphs.Float || e == graphs.Double {
		for _, p := range parts {
			if _, ok := c.links[p]; ok {
				links = append(links, p)
				continue
			}
			rest = append(rest, p)
		}
	} else {
		rest = parts
	}
	acc := ""
	switch len(rest) {
	case 0:
	case 1:
		acc = rest[0]
	default:
		acc = c.Op("Sum", rest...)
	}
	for _, p := range links {
		l := c.links[p]
		delete(c.links, p)
		if acc == "" {
			acc = p
			continue
		}
		in := acc
		if l.shape2d != "" {
			in = c.Op("Reshape", acc, l.shape2d)
		}
		l.gemm.Input = append(l.gemm.Input, in)
		c.rewired = true
		acc = p
	}
	return acc
}

// ReduceSum sums x over the given axes; axes is a 1-D int64 value (see [Ctx.Ints]).
func (c *Ctx) ReduceSum(x, axes string, keep bool) string {
	return c.Node("ReduceSum", []string{x, axes}, graphs.AttrInt("keepdims", boolInt(keep)))
}

// ReduceMean averages x over fixed axes, in the form the model's opset wants.
func (c *Ctx) ReduceMean(x string, axes []int64, keep bool) string {
	k := graphs.AttrInt("keepdims", boolInt(keep))
	if c.info.Opset >= 18 {
		return c.Node("ReduceMean", []string{x, c.Ints(axes...)}, k)
	}
	return c.Node("ReduceMean", []string{x}, graphs.AttrInts("axes", axes...), k)
}

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// SumTo sums the cotangent g over the axes on which x was broadcast, so that the result has
// x's shape (NumPy broadcasting undone). Statically known shapes give a plain ReduceSum (or
// nothing); otherwise the axes are found at run time:
//
//	px  = [1]*(rank g − rank x) ++ Shape(x)
//	out = Reshape(ReduceSum(g, NonZero(px ≠ Shape(g)), keepdims, noop on none), Shape(x))
func (c *Ctx) SumTo(g, x string) string {
	gs, xs := c.info.Shape(g), c.info.Shape(x)
	if gs.Same(xs) {
		return g
	}
	if axes, ok := broadcastAxes(gs, xs); ok {
		out := g
		if len(axes) > 0 {
			out = c.ReduceSum(g, c.Ints(axes...), true)
		}
		if len(gs.Dims) != len(xs.Dims) {
			out = c.Op("Reshape", out, c.ShapeOf(x))
		}
		return out
	}
	// TODO: when nothing is broadcast at run time, this ReduceSum (no-op on empty axes) still
	// copies g; better static shapes avoid the path (see passes.Infer).
	sg, sx := c.Op("Shape", g), c.ShapeOf(x)
	lead := c.Op("Sub", c.Op("Shape", sg), c.Op("Shape", sx))
	ones := c.Node("ConstantOfShape", []string{lead},
		graphs.AttrTensor("value", graphs.Int64Tensor("", []int64{1}, []int64{1})))
	px := c.Node("Concat", []string{ones, sx}, graphs.AttrInt("axis", 0))
	diff := c.Op("Not", c.Op("Equal", px, sg))
	axes := c.Op("Reshape", c.Op("NonZero", diff), c.Ints(-1))
	sum := c.Node("ReduceSum", []string{g, axes}, graphs.AttrInt("keepdims", 1),
		graphs.AttrInt("noop_with_empty_axes", 1))
	return c.Op("Reshape", sum, sx)
}

// broadcastAxes returns the axes of g to sum so that it takes x's shape, when the static
// shapes decide it.
func broadcastAxes(gs, xs passes.Shape) ([]int64, bool) {
	if !gs.RankKnown || !xs.RankKnown || len(xs.Dims) > len(gs.Dims) {
		return nil, false
	}
	lead := len(gs.Dims) - len(xs.Dims)
	var axes []int64
	for i := range lead {
		axes = append(axes, int64(i))
	}
	for i, d := range xs.Dims {
		gd := gs.Dims[lead+i]
		switch {
		case d.Same(gd):
		case d.IsOne() && gd.Known():
			if !gd.IsOne() {
				axes = append(axes, int64(lead+i))
			}
		case d.IsOne():
			axes = append(axes, int64(lead+i)) // summing a size-1 axis changes nothing
		default:
			return nil, false
		}
	}
	return axes, true
}

// fwd maps a forward value to the value the backward pass should read: the value itself, or
// its recomputed copy when its producer is selected for recomputation.
func (c *Ctx) fwd(v string) string {
	if c.recompute == nil || v == "" {
		return v
	}
	if r, ok := c.clones[v]; ok {
		return r
	}
	p, ok := c.producer[v]
	if !ok || !c.recompute(p) {
		return v
	}
	c.clone(p)
	return c.clones[v]
}

// clone copies forward node p (and, recursively, the selected nodes it reads from) into the
// backward pass. The region's other float inputs (its checkpoints) are read through a gate
// that depends on the cotangent that triggered the copy, so that ONNX Runtime cannot run the
// copies before the backward pass reaches them (it would then keep their outputs alive just
// as before):
//
//	x ─▶ p ─▶ y ─▶ … (forward)
//	gate(x, dz) ─▶ p′ ─▶ y′ ─▶ VJP rules (backward), dz the cotangent being propagated
func (c *Ctx) clone(p *onnxpb.NodeProto) {
	inputs := make([]string, len(p.GetInput()))
	for i, x := range p.GetInput() {
		inputs[i] = c.fwd(x)
		if inputs[i] == x && x != "" {
			inputs[i] = c.gate(x)
		}
	}
	prev := c.b.Scope("")
	defer c.b.Scope(prev)
	outs := make([]string, len(p.GetOutput()))
	for i, o := range p.GetOutput() {
		if o == "" {
			continue
		}
		outs[i] = c.b.Unique(o + "/recompute")
		c.clones[o] = outs[i]
	}
	n := &onnxpb.NodeProto{OpType: p.GetOpType(), Domain: p.GetDomain(),
		Name: c.b.Unique(p.GetName() + "/recompute"), Input: inputs, Output: outs,
		Attribute: slices.Clone(p.GetAttribute())}
	c.b.G.Node = append(c.b.G.Node, n)
	c.infer(n)
	c.recomputed++
}

// gate returns x, made to depend on the current trigger cotangent without copying it:
//
//	Reshape(x, Concat(Shape(x), Slice(Shape(trigger), 0, 0)))
//
// (the Slice is empty, so the target shape is x's own). Constants and non-float values are
// not gated.
func (c *Ctx) gate(x string) string {
	if _, isConst := c.info.Const(x); isConst || !c.info.IsFloat(x) || c.trigger == "" {
		return x
	}
	key := [2]string{x, c.trigger}
	if g, ok := c.gates[key]; ok {
		return g
	}
	if c.gates == nil {
		c.gates = map[[2]string]string{}
	}
	empty := c.Op("Slice", c.Op("Shape", c.trigger), c.Ints(0), c.Ints(0))
	shape := c.Node("Concat", []string{c.Op("Shape", x), empty}, graphs.AttrInt("axis", 0))
	g := c.Op("Reshape", x, shape)
	c.gates[key] = g
	return g
}
