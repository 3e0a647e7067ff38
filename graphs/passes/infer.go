package passes

import (
	"fmt"

	"github.com/panacea-go/toolkit/graphs"
	"github.com/panacea-go/toolkit/graphs/onnxpb"
)

// maxShapeValue is the largest integer tensor whose contents are tracked as a shape value.
const maxShapeValue = 64

// Info is what is known statically about the values of a graph: element types, shapes,
// constants, and the contents of shape-like integer tensors.
type Info struct {
	// Opset is the model's ai.onnx opset version.
	Opset int64

	elem   map[string]int32
	shapes map[string]Shape
	values map[string][]Dim
	consts map[string]*onnxpb.TensorProto
}

// NewInfo returns an empty Info for a model of the given ai.onnx opset.
func NewInfo(opset int64) *Info {
	return &Info{Opset: opset, elem: map[string]int32{}, shapes: map[string]Shape{},
		values: map[string][]Dim{}, consts: map[string]*onnxpb.TensorProto{}}
}

// ModelOpset returns the ai.onnx opset a model imports (the default domain).
func ModelOpset(m *onnxpb.ModelProto) int64 {
	for _, o := range m.GetOpsetImport() {
		if o.GetDomain() == "" || o.GetDomain() == "ai.onnx" {
			return o.GetVersion()
		}
	}
	return 0
}

// Infer computes element types and static shapes for every value of a model's graph, from
// its inputs, initializers and value infos, node by node in graph order (which ONNX requires
// to be topological; see [SortNodes]). Values it cannot type keep element type 0.
func Infer(m *onnxpb.ModelProto) (*Info, error) {
	if m.GetGraph() == nil {
		return nil, fmt.Errorf("passes: infer: model has no graph")
	}
	in := NewInfo(ModelOpset(m))
	g := m.GetGraph()
	for _, t := range g.GetInitializer() {
		in.AddConst(t.GetName(), t)
	}
	for _, lists := range [][]*onnxpb.ValueInfoProto{g.GetInput(), g.GetValueInfo(), g.GetOutput()} {
		for _, v := range lists {
			in.AddValueInfo(v)
		}
	}
	for _, n := range g.GetNode() {
		if err := in.InferNode(n); err != nil {
			return nil, err
		}
	}
	return in, nil
}

// AddConst records a constant tensor (an initializer or a Constant node's value) under name.
func (in *Info) AddConst(name string, t *onnxpb.TensorProto) {
	in.consts[name] = t
	in.elem[name] = t.GetDataType()
	in.shapes[name] = FixedShape(t.GetDims()...)
	if isIntType(t.GetDataType()) && graphs.NumElements(t.GetDims()) <= maxShapeValue &&
		!graphs.IsExternal(t) {
		if v, err := graphs.TensorInt64s(t); err == nil {
			dims := make([]Dim, len(v))
			for i, x := range v {
				dims[i] = FixedDim(x)
			}
			in.values[name] = dims
		}
	}
}

// AddValueInfo records a declared type and shape; what is already known from inference is
// kept where the declaration says less.
func (in *Info) AddValueInfo(v *onnxpb.ValueInfoProto) {
	tt := v.GetType().GetTensorType()
	if tt == nil {
		return
	}
	name := v.GetName()
	if tt.GetElemType() != 0 && in.elem[name] == 0 {
		in.elem[name] = tt.GetElemType()
	}
	if tt.GetShape() == nil {
		return
	}
	s := RankOnly(len(tt.GetShape().GetDim()))
	for i, d := range tt.GetShape().GetDim() {
		switch {
		case d.GetDimParam() != "":
			s.Dims[i] = SymDim(d.GetDimParam())
		case d.GetValue() != nil:
			if dv, ok := d.GetValue().(*onnxpb.TensorShapeProto_Dimension_DimValue); ok {
				s.Dims[i] = FixedDim(dv.DimValue)
			}
		}
	}
	in.SetShape(name, s)
}

// Elem returns a value's element type, or 0 when unknown.
func (in *Info) Elem(name string) int32 { return in.elem[name] }

// SetElem records a value's element type.
func (in *Info) SetElem(name string, elem int32) {
	if elem != 0 {
		in.elem[name] = elem
	}
}

// Shape returns a value's static shape (unknown rank when nothing is known).
func (in *Info) Shape(name string) Shape { return in.shapes[name] }

// SetShape records a value's static shape, merging it with what is already known.
func (in *Info) SetShape(name string, s Shape) {
	old, ok := in.shapes[name]
	if !ok || !old.RankKnown {
		in.shapes[name] = s
		return
	}
	if !s.RankKnown || len(s.Dims) != len(old.Dims) {
		return
	}
	merged := DimsShape(old.Dims...)
	for i, d := range s.Dims {
		if !merged.Dims[i].Fixed && d.Known() {
			merged.Dims[i] = d
		}
	}
	in.shapes[name] = merged
}

// IsFloat reports whether a value has a floating-point element type.
func (in *Info) IsFloat(name string) bool { return IsFloatType(in.elem[name]) }

// Const returns the constant tensor named name (an initializer or a Constant's output).
func (in *Info) Const(name string) (*onnxpb.TensorProto, bool) {
	t, ok := in.consts[name]
	return t, ok
}

// Ints returns the contents of a small integer tensor when every entry is a fixed number.
func (in *Info) Ints(name string) ([]int64, bool) {
	v, ok := in.values[name]
	if !ok {
		return nil, false
	}
	out := make([]int64, len(v))
	for i, d := range v {
		if !d.Fixed {
			return nil, false
		}
		out[i] = d.Size
	}
	return out, true
}

// ShapeValue returns the tracked contents of a shape-like integer tensor (entries may be
// symbolic or unknown).
func (in *Info) ShapeValue(name string) ([]Dim, bool) {
	v, ok := in.values[name]
	return v, ok
}

// SetShapeValue records the contents of a shape-like integer tensor.
func (in *Info) SetShapeValue(name string, v []Dim) {
	if len(v) <= maxShapeValue {
		in.values[name] = v
	}
}

// IsFloatType reports whether an ONNX element type is a floating-point type.
func IsFloatType(elem int32) bool {
	switch elem {
	case graphs.Float, graphs.Double, graphs.Float16, graphs.BFloat:
		return true
	}
	return false
}

func isIntType(elem int32) bool {
	switch elem {
	case graphs.Int64, graphs.Int32:
		return true
	}
	return false
}

// Attr returns a node's attribute by name, or nil.
func Attr(n *onnxpb.NodeProto, name string) *onnxpb.AttributeProto {
	for _, a := range n.GetAttribute() {
		if a.GetName() == name {
			return a
		}
	}
	return nil
}

// AttrInt returns an integer attribute or def when absent.
func AttrInt(n *onnxpb.NodeProto, name string, def int64) int64 {
	if a := Attr(n, name); a != nil {
		return a.GetI()
	}
	return def
}

// AttrFloat returns a float attribute or def when absent.
func AttrFloat(n *onnxpb.NodeProto, name string, def float32) float32 {
	if a := Attr(n, name); a != nil {
		return a.GetF()
	}
	return def
}

// AttrInts returns an integer-list attribute and whether it is present.
func AttrInts(n *onnxpb.NodeProto, name string) ([]int64, bool) {
	if a := Attr(n, name); a != nil {
		return a.GetInts(), true
	}
	return nil, false
}

// AttrString returns a string attribute or def when absent.
func AttrString(n *onnxpb.NodeProto, name, def string) string {
	if a := Attr(n, name); a != nil {
		return string(a.GetS())
	}
	return def
}

// Input returns a node's i-th input name, or "" when it is absent or left empty.
func Input(n *onnxpb.NodeProto, i int) string {
	if i < len(n.GetInput()) {
		return n.GetInput()[i]
	}
	return ""
}

// Axes returns a node's axes, read from the attribute "axes" (older opsets) or from the
// constant input at index i (newer ones). present is false when the node gives no axes;
// ok is false when they are given by a tensor whose contents are not known statically.
func (in *Info) Axes(n *onnxpb.NodeProto, i int) (axes []int64, present, ok bool) {
	if v, has := AttrInts(n, "axes"); has {
		return v, true, true
	}
	name := Input(n, i)
	if name == "" {
		return nil, false, true
	}
	v, ok := in.Ints(name)
	return v, true, ok
}
