package passes

import (
	"fmt"
	"slices"

	"github.com/panacea-go/toolkit/graphs"
	"github.com/panacea-go/toolkit/graphs/onnxpb"
)

// sameShapeOps keep the shape of their first input.
var sameShapeOps = map[string]bool{
	"Identity": true, "Cast": true, "CastLike": true, "Neg": true, "Abs": true, "Sqrt": true,
	"Reciprocal": true, "Exp": true, "Log": true, "Tanh": true, "Sigmoid": true, "Erf": true,
	"Cos": true, "Sin": true, "Relu": true, "LeakyRelu": true, "Softplus": true, "Gelu": true,
	"Softmax": true, "LogSoftmax": true, "CumSum": true, "Trilu": true, "Not": true,
	"Sign": true, "Floor": true, "Ceil": true, "Round": true, "IsNaN": true, "IsInf": true,
	"Clip": true, "Dropout": true, "LayerNormalization": true, "RMSNormalization": true,
	"SimplifiedLayerNormalization": true, "ScatterND": true, "ScatterElements": true,
	"HardSigmoid": true, "Selu": true, "Elu": true, "Mish": true, "Tan": true, "Atan": true,
}

// broadcastOps broadcast all their inputs together.
var broadcastOps = map[string]bool{
	"Add": true, "Sub": true, "Mul": true, "Div": true, "Pow": true, "Max": true, "Min": true,
	"Sum": true, "Mean": true, "Where": true, "Equal": true, "Less": true, "Greater": true,
	"LessOrEqual": true, "GreaterOrEqual": true, "And": true, "Or": true, "Xor": true,
	"Mod": true, "PRelu": true, "BitShift": true,
}

// InferNode records the element types and static shapes of one node's outputs, given what
// is known of its inputs. Unknown ops give outputs of unknown shape.
func (in *Info) InferNode(n *onnxpb.NodeProto) error {
	in.inferElem(n)
	if err := in.inferShape(n); err != nil {
		return fmt.Errorf("passes: infer %s node %q: %w", n.GetOpType(), n.GetName(), err)
	}
	in.inferValue(n)
	return nil
}

func (in *Info) inferElem(n *onnxpb.NodeProto) {
	outs := n.GetOutput()
	set := func(i int, e int32) {
		if i < len(outs) && outs[i] != "" {
			in.SetElem(outs[i], e)
		}
	}
	first := int32(0)
	for _, x := range n.GetInput() {
		if e := in.elem[x]; x != "" && e != 0 {
			first = e
			break
		}
	}
	switch n.GetOpType() {
	case "Cast":
		set(0, int32(AttrInt(n, "to", 0)))
	case "CastLike":
		set(0, in.elem[Input(n, 1)])
	case "Shape", "Size", "NonZero", "ArgMax", "ArgMin":
		set(0, graphs.Int64)
	case "Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual", "Not", "And", "Or",
		"Xor", "IsNaN", "IsInf":
		set(0, graphs.Bool)
	case "ConstantOfShape":
		e := graphs.Float
		if a := Attr(n, "value"); a != nil && a.GetT() != nil {
			e = a.GetT().GetDataType()
		}
		set(0, e)
	case "Constant":
		if t := constantTensor(n); t != nil {
			set(0, t.GetDataType())
		}
	case "Where":
		set(0, in.elem[Input(n, 1)])
	case "TopK":
		set(0, first)
		set(1, graphs.Int64)
	case "Dropout":
		set(0, first)
		set(1, graphs.Bool)
	case "LayerNormalization":
		set(0, first)
		stash := int32(AttrInt(n, "stash_type", int64(graphs.Float)))
		set(1, stash)
		set(2, stash)
	case "EyeLike", "RandomNormalLike", "RandomUniformLike":
		e := int32(AttrInt(n, "dtype", int64(first)))
		set(0, e)
	case "RandomNormal", "RandomUniform":
		set(0, int32(AttrInt(n, "dtype", int64(graphs.Float))))
	default:
		for i := range outs {
			set(i, first)
		}
	}
}

// constantTensor returns the value of a Constant node as a tensor.
func constantTensor(n *onnxpb.NodeProto) *onnxpb.TensorProto {
	for _, a := range n.GetAttribute() {
		switch a.GetName() {
		case "value":
			return a.GetT()
		case "value_float":
			return graphs.FloatTensor("", nil, []float32{a.GetF()})
		case "value_floats":
			return graphs.FloatTensor("", []int64{int64(len(a.GetFloats()))}, a.GetFloats())
		case "value_int":
			return graphs.Int64Tensor("", nil, []int64{a.GetI()})
		case "value_ints":
			return graphs.Int64Tensor("", []int64{int64(len(a.GetInts()))}, a.GetInts())
		}
	}
	return nil
}

// ConstantValue returns the tensor a Constant node produces, or nil for other attributes
// (sparse values, strings).
func ConstantValue(n *onnxpb.NodeProto) *onnxpb.TensorProto { return constantTensor(n) }

func (in *Info) inferShape(n *onnxpb.NodeProto) error {
	outs := n.GetOutput()
	if len(outs) == 0 {
		return nil
	}
	x := in.shapes[Input(n, 0)]
	set := func(i int, s Shape) {
		if i < len(outs) && outs[i] != "" {
			in.SetShape(outs[i], s)
		}
	}
	op := n.GetOpType()
	switch {
	case op == "Constant":
		if t := constantTensor(n); t != nil {
			in.AddConst(outs[0], t)
		}
		return nil
	case sameShapeOps[op]:
		set(0, x)
		if op == "LayerNormalization" && x.RankKnown {
			axis, err := normAxis(AttrInt(n, "axis", -1), len(x.Dims))
			if err != nil {
				return err
			}
			stat := DimsShape(x.Dims...)
			for i := axis; i < len(stat.Dims); i++ {
				stat.Dims[i] = FixedDim(1)
			}
			set(1, stat)
			set(2, stat)
		}
		if op == "Dropout" {
			set(1, x)
		}
		return nil
	case broadcastOps[op]:
		shapes := make([]Shape, 0, len(n.GetInput()))
		for _, name := range n.GetInput() {
			shapes = append(shapes, in.shapes[name])
		}
		set(0, Broadcast(shapes...))
		return nil
	}
	switch op {
	case "MatMul":
		set(0, matMulShape(x, in.shapes[Input(n, 1)]))
	case "Gemm":
		set(0, gemmShape(n, x, in.shapes[Input(n, 1)]))
	case "Reshape":
		set(0, in.reshapeShape(n, x))
	case "Transpose":
		set(0, transposeShape(n, x))
	case "Concat":
		return in.concatShape(n, set)
	case "Split":
		return in.splitShape(n, x, set)
	case "Slice":
		return in.sliceShape(n, x, set)
	case "Gather":
		return in.gatherShape(n, x, set)
	case "GatherElements":
		set(0, in.shapes[Input(n, 1)])
	case "Expand":
		if v, ok := in.values[Input(n, 1)]; ok {
			set(0, Broadcast(x, DimsShape(v...)))
		} else if s := in.shapes[Input(n, 1)]; s.Rank() == 1 && s.Dims[0].Fixed && x.RankKnown {
			set(0, RankOnly(max(int(s.Dims[0].Size), len(x.Dims))))
		}
	case "Squeeze", "Unsqueeze":
		return in.squeezeShape(n, x, set)
	case "ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceSumSquare",
		"ReduceL1", "ReduceL2", "ReduceLogSumExp", "ReduceLogSum", "ArgMax", "ArgMin":
		return in.reduceShape(n, x, set)
	case "Shape":
		if x.RankKnown {
			start, end := shapeRange(n, len(x.Dims))
			set(0, FixedShape(int64(end-start)))
		} else {
			set(0, RankOnly(1))
		}
	case "Size":
		set(0, FixedShape())
	case "ConstantOfShape":
		if v, ok := in.values[Input(n, 0)]; ok {
			set(0, DimsShape(v...))
		} else if s := in.shapes[Input(n, 0)]; s.Rank() == 1 && s.Dims[0].Fixed {
			set(0, RankOnly(int(s.Dims[0].Size)))
		}
	case "Range", "NonZero":
		if op == "Range" {
			set(0, in.rangeShape(n))
		} else if x.RankKnown {
			set(0, DimsShape(FixedDim(int64(len(x.Dims))), Dim{}))
		}
	case "Flatten":
		set(0, RankOnly(2))
	case "Tile", "Pad", "TopK":
		if x.RankKnown {
			set(0, RankOnly(len(x.Dims)))
			set(1, RankOnly(len(x.Dims)))
		}
	}
	return nil
}

func matMulShape(a, b Shape) Shape {
	if !a.RankKnown || !b.RankKnown || len(a.Dims) == 0 || len(b.Dims) == 0 {
		return UnknownShape()
	}
	ad, bd := a.Dims, b.Dims
	switch {
	case len(ad) == 1 && len(bd) == 1:
		return FixedShape()
	case len(ad) == 1:
		return DimsShape(append(slices.Clone(bd[:len(bd)-2]), bd[len(bd)-1])...)
	case len(bd) == 1:
		return DimsShape(ad[:len(ad)-1]...)
	}
	batch := Broadcast(DimsShape(ad[:len(ad)-2]...), DimsShape(bd[:len(bd)-2]...))
	return DimsShape(append(batch.Dims, ad[len(ad)-2], bd[len(bd)-1])...)
}

func gemmShape(n *onnxpb.NodeProto, a, b Shape) Shape {
	out := RankOnly(2)
	if a.Rank() == 2 {
		out.Dims[0] = a.Dims[AttrInt(n, "transA", 0)]
	}
	if b.Rank() == 2 {
		out.Dims[1] = b.Dims[1-AttrInt(n, "transB", 0)]
	}
	return out
}

func (in *Info) reshapeShape(n *onnxpb.NodeProto, x Shape) Shape {
	target, ok := in.values[Input(n, 1)]
	if !ok {
		if s := in.shapes[Input(n, 1)]; s.Rank() == 1 && s.Dims[0].Fixed {
			return RankOnly(int(s.Dims[0].Size))
		}
		return UnknownShape()
	}
	out := RankOnly(len(target))
	infer := -1
	allowZero := AttrInt(n, "allowzero", 0) != 0
	for i, d := range target {
		switch {
		case d.Fixed && d.Size == 0 && !allowZero:
			if x.RankKnown && i < len(x.Dims) {
				out.Dims[i] = x.Dims[i]
			}
		case d.Fixed && d.Size == -1:
			infer = i
		default:
			out.Dims[i] = d
		}
	}
	if infer >= 0 && x.RankKnown {
		rest := slices.Delete(slices.Clone(out.Dims), infer, infer+1)
		out.Dims[infer] = productOf(x.Dims).divide(productOf(rest))
	}
	return out
}

func transposeShape(n *onnxpb.NodeProto, x Shape) Shape {
	if !x.RankKnown {
		return x
	}
	perm, ok := AttrInts(n, "perm")
	if !ok {
		out := DimsShape(x.Dims...)
		slices.Reverse(out.Dims)
		return out
	}
	if len(perm) != len(x.Dims) {
		return RankOnly(len(perm))
	}
	out := RankOnly(len(perm))
	for i, p := range perm {
		if p >= 0 && int(p) < len(x.Dims) {
			out.Dims[i] = x.Dims[p]
		}
	}
	return out
}

// shapeRange returns the [start, end) range of the Shape op's optional start/end attributes.
func shapeRange(n *onnxpb.NodeProto, rank int) (int, int) {
	norm := func(v int64) int {
		if v < 0 {
			v += int64(rank)
		}
		return int(max(0, min(v, int64(rank))))
	}
	return norm(AttrInt(n, "start", 0)), norm(AttrInt(n, "end", int64(rank)))
}
