package graphs

import (
	"fmt"
	"strconv"

	"github.com/panacea-go/toolkit/graphs/onnxpb"
)

// Opset is the ai.onnx opset version of the models the toolkit writes. ONNX Runtime 1.31
// accepts up to 26; 21 has everything the exporter and the autodiff pass emit.
const Opset = 21

// IRVersion is the ONNX IR version written with [Opset].
const IRVersion = 10

// Builder appends nodes, initializers, inputs and outputs to a graph and hands out unique
// value names. The zero value is not usable; call [NewBuilder] or [WrapGraph].
type Builder struct {
	G      *onnxpb.GraphProto
	prefix string
	used   map[string]bool
	next   int
}

// NewBuilder starts an empty graph.
func NewBuilder(name string) *Builder {
	return WrapGraph(&onnxpb.GraphProto{Name: name})
}

// WrapGraph returns a builder that appends to an existing graph; names already in the graph
// are never handed out again.
func WrapGraph(g *onnxpb.GraphProto) *Builder {
	b := &Builder{G: g, used: map[string]bool{}}
	for _, v := range g.GetInput() {
		b.used[v.GetName()] = true
	}
	for _, t := range g.GetInitializer() {
		b.used[t.GetName()] = true
	}
	for _, n := range g.GetNode() {
		b.used[n.GetName()] = true
		for _, o := range n.GetOutput() {
			b.used[o] = true
		}
	}
	return b
}

// Scope sets the prefix of the names that Node and Unique hand out (e.g. "layers.3/attn")
// and returns the previous one so that a caller can restore it.
func (b *Builder) Scope(prefix string) (previous string) {
	previous, b.prefix = b.prefix, prefix
	return previous
}

// Unique returns a name not yet used in the graph, built from the scope and base.
func (b *Builder) Unique(base string) string {
	name := base
	if b.prefix != "" {
		name = b.prefix + "/" + base
	}
	for b.used[name] {
		b.next++
		name = fmt.Sprintf("%s/%s_%d", b.prefix, base, b.next)
		if b.prefix == "" {
			name = fmt.Sprintf("%s_%d", base, b.next)
		}
	}
	b.used[name] = true
	return name
}

// Reserve marks a name as used (for names chosen by the caller).
func (b *Builder) Reserve(name string) { b.used[name] = true }

// Dim is one dimension of a value info: an int (fixed size) or a string (symbolic).
type Dim = any

// ValueInfo makes a tensor value info; dims are ints (fixed) or strings (symbolic).
func ValueInfo(name string, elem int32, dims ...Dim) *onnxpb.ValueInfoProto {
	shape := &onnxpb.TensorShapeProto{}
	for _, d := range dims {
		dim := &onnxpb.TensorShapeProto_Dimension{}
		switch v := d.(type) {
		case int:
			dim.Value = &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: int64(v)}
		case int64:
			dim.Value = &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: v}
		case string:
			dim.Value = &onnxpb.TensorShapeProto_Dimension_DimParam{DimParam: v}
		default:
			panic(fmt.Sprintf("graphs: dimension %v of %q is neither int nor string", d, name))
		}
		shape.Dim = append(shape.Dim, dim)
	}
	return &onnxpb.ValueInfoProto{Name: name, Type: &onnxpb.TypeProto{
		Value: &onnxpb.TypeProto_TensorType{TensorType: &onnxpb.TypeProto_Tensor{
			ElemType: elem, Shape: shape}}}}
}

// Input adds a graph input and returns its name.
func (b *Builder) Input(name string, elem int32, dims ...Dim) string {
	b.Reserve(name)
	b.G.Input = append(b.G.Input, ValueInfo(name, elem, dims...))
	return name
}

// Output declares value as a graph output named name, inserting an Identity node when the
// names differ.
func (b *Builder) Output(value, name string, elem int32, dims ...Dim) string {
	if value != name {
		b.G.Node = append(b.G.Node, &onnxpb.NodeProto{OpType: "Identity",
			Name: b.Unique(name + "_identity"), Input: []string{value}, Output: []string{name}})
		b.Reserve(name)
	}
	b.G.Output = append(b.G.Output, ValueInfo(name, elem, dims...))
	return name
}

// Initializer adds a constant tensor; its name must be unused.
func (b *Builder) Initializer(t *onnxpb.TensorProto) string {
	b.Reserve(t.GetName())
	b.G.Initializer = append(b.G.Initializer, t)
	return t.GetName()
}

// Attr is a node attribute; make them with the Attr* helpers.
type Attr = *onnxpb.AttributeProto

// AttrInt is an integer attribute.
func AttrInt(name string, v int64) Attr {
	return &onnxpb.AttributeProto{Name: name, Type: onnxpb.AttributeProto_INT, I: v}
}

// AttrInts is an integer-list attribute.
func AttrInts(name string, v ...int64) Attr {
	return &onnxpb.AttributeProto{Name: name, Type: onnxpb.AttributeProto_INTS, Ints: v}
}

// AttrFloat is a float attribute.
func AttrFloat(name string, v float32) Attr {
	return &onnxpb.AttributeProto{Name: name, Type: onnxpb.AttributeProto_FLOAT, F: v}
}

// AttrString is a string attribute.
func AttrString(name, v string) Attr {
	return &onnxpb.AttributeProto{Name: name, Type: onnxpb.AttributeProto_STRING, S: []byte(v)}
}

// AttrTensor is a tensor attribute (as Constant's value).
func AttrTensor(name string, t *onnxpb.TensorProto) Attr {
	return &onnxpb.AttributeProto{Name: name, Type: onnxpb.AttributeProto_TENSOR, T: t}
}

// Node appends a node with one output and returns the output's name.
func (b *Builder) Node(op string, inputs []string, attrs ...Attr) string {
	return b.NodeN(op, inputs, 1, attrs...)[0]
}

// NodeN appends a node with n outputs and returns their names.
func (b *Builder) NodeN(op string, inputs []string, n int, attrs ...Attr) []string {
	name := b.Unique(op)
	outs := make([]string, n)
	for i := range outs {
		outs[i] = b.Unique(op + "_out" + strconv.Itoa(i))
	}
	b.G.Node = append(b.G.Node, &onnxpb.NodeProto{OpType: op, Name: name, Input: inputs,
		Output: outs, Attribute: attrs})
	return outs
}

// Op appends a node with one output and no attributes: b.Op("MatMul", x, w).
func (b *Builder) Op(op string, inputs ...string) string { return b.Node(op, inputs) }

// ConstInt64 adds an int64 initializer of shape (len(v)) and returns its name.
func (b *Builder) ConstInt64(v ...int64) string {
	return b.Initializer(Int64Tensor(b.Unique("const_i64"), []int64{int64(len(v))}, v))
}

// ScalarInt64 adds a rank-0 int64 initializer.
func (b *Builder) ScalarInt64(v int64) string {
	return b.Initializer(Int64Tensor(b.Unique("scalar_i64"), nil, []int64{v}))
}

// ScalarFloat adds a rank-0 float initializer of element type elem (Float or Double).
func (b *Builder) ScalarFloat(v float64, elem int32) string {
	name := b.Unique("scalar_f")
	if elem == Double {
		return b.Initializer(DoubleTensor(name, nil, []float64{v}))
	}
	return b.Initializer(FloatTensor(name, nil, []float32{float32(v)}))
}

// Model wraps the graph in a model with the toolkit's opset and IR version. Extra opset
// imports (such as com.microsoft) may be appended by the caller.
func (b *Builder) Model(producer string) *onnxpb.ModelProto {
	return &onnxpb.ModelProto{
		IrVersion:    IRVersion,
		ProducerName: producer,
		OpsetImport:  []*onnxpb.OperatorSetIdProto{{Domain: "", Version: Opset}},
		Graph:        b.G,
	}
}

// SetMetadata sets (or replaces) a metadata_props entry of a model.
func SetMetadata(m *onnxpb.ModelProto, key, value string) {
	for _, kv := range m.MetadataProps {
		if kv.Key == key {
			kv.Value = value
			return
		}
	}
	m.MetadataProps = append(m.MetadataProps, &onnxpb.StringStringEntryProto{Key: key, Value: value})
}

// Metadata returns a model's metadata_props entry.
func Metadata(m *onnxpb.ModelProto, key string) (string, bool) {
	for _, kv := range m.GetMetadataProps() {
		if kv.GetKey() == key {
			return kv.GetValue(), true
		}
	}
	return "", false
}
