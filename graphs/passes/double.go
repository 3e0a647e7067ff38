package passes

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/panacea-go/toolkit/graphs"
	"github.com/panacea-go/toolkit/graphs/onnxpb"
)

// ToDouble rewrites a model to compute in float64, for finite-difference checks that need
// more precision than float32 gives. Every floating-point tensor becomes float64: the
// initializers (read from dir when external, then stored inline), the element types of
// graph inputs, outputs and value infos, the targets of Cast, and the values of Constant
// and ConstantOfShape:
//
//	W (f16, external) ─▶ Cast(to=f32) ─▶ MatMul(x: f32, ·)
//	becomes
//	W (f64, inline)   ─▶ Cast(to=f64) ─▶ MatMul(x: f64, ·)
//
// Ops that ONNX Runtime runs in float32 only (Erf, Gelu, LeakyRelu, Softplus, Mean, Elu,
// HardSigmoid) are rewritten into equivalent float64 ops. The model grows to twice its
// float32 size in memory; it is meant for small models.
func ToDouble(m *onnxpb.ModelProto, dir string) error {
	if m.GetGraph() == nil {
		return fmt.Errorf("passes: to double: model has no graph")
	}
	if err := graphToDouble(m.GetGraph(), dir); err != nil {
		return err
	}
	return decomposeForDouble(m.GetGraph())
}

func graphToDouble(g *onnxpb.GraphProto, dir string) error {
	for i, t := range g.GetInitializer() {
		d, err := tensorToDouble(t, dir)
		if err != nil {
			return fmt.Errorf("passes: to double: %w", err)
		}
		g.Initializer[i] = d
	}
	for _, list := range [][]*onnxpb.ValueInfoProto{g.GetInput(), g.GetOutput(), g.GetValueInfo()} {
		for _, v := range list {
			if tt := v.GetType().GetTensorType(); tt != nil && IsFloatType(tt.GetElemType()) {
				tt.ElemType = graphs.Double
			}
		}
	}
	for _, n := range g.GetNode() {
		if err := nodeToDouble(n, dir); err != nil {
			return fmt.Errorf("passes: to double: %s node %q: %w", n.GetOpType(), n.GetName(), err)
		}
	}
	return nil
}

func nodeToDouble(n *onnxpb.NodeProto, dir string) error {
	for i, a := range n.GetAttribute() {
		switch {
		case (a.GetName() == "to" && n.GetOpType() == "Cast") || a.GetName() == "dtype":
			if IsFloatType(int32(a.GetI())) {
				a.I = int64(graphs.Double)
			}
		case a.GetName() == "value_float":
			n.Attribute[i] = graphs.AttrTensor("value",
				graphs.DoubleTensor("", nil, []float64{float64(a.GetF())}))
		case a.GetName() == "value_floats":
			v := make([]float64, len(a.GetFloats()))
			for j, f := range a.GetFloats() {
				v[j] = float64(f)
			}
			n.Attribute[i] = graphs.AttrTensor("value",
				graphs.DoubleTensor("", []int64{int64(len(v))}, v))
		case a.GetT() != nil:
			d, err := tensorToDouble(a.GetT(), dir)
			if err != nil {
				return err
			}
			a.T = d
		}
		for _, sub := range a.GetGraphs() {
			if err := graphToDouble(sub, dir); err != nil {
				return err
			}
		}
		if a.GetG() != nil {
			if err := graphToDouble(a.GetG(), dir); err != nil {
				return err
			}
		}
	}
	return nil
}

// tensorToDouble returns t unchanged when it is not a float tensor, else a float64 copy.
func tensorToDouble(t *onnxpb.TensorProto, dir string) (*onnxpb.TensorProto, error) {
	if !IsFloatType(t.GetDataType()) {
		return t, nil
	}
	var v []float64
	if t.GetDataType() == graphs.Double && !graphs.IsExternal(t) && len(t.GetDoubleData()) == 0 {
		return t, nil
	}
	if t.GetDataType() == graphs.Double {
		raw, err := graphs.ReadTensorData(t, dir)
		if err != nil {
			return nil, err
		}
		if len(t.GetDoubleData()) > 0 {
			v = t.GetDoubleData()
		} else {
			v = make([]float64, len(raw)/8)
			for i := range v {
				v[i] = math.Float64frombits(binary.LittleEndian.Uint64(raw[8*i:]))
			}
		}
	} else {
		f, err := graphs.TensorFloats(t, dir)
		if err != nil {
			return nil, err
		}
		v = make([]float64, len(f))
		for i, x := range f {
			v[i] = float64(x)
		}
	}
	return graphs.DoubleTensor(t.GetName(), t.GetDims(), v), nil
}
