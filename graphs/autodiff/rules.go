package autodiff

import (
	"fmt"
	"maps"
	"slices"
)

// TODO: no rules yet for Einsum, ScatterND and ScatterElements as forward ops, Pad in reflect
// or edge mode, training-mode Dropout, and ONNX Runtime's fused com.microsoft ops (fused
// attention and rotary have no backward: export graphs to differentiate with plain ops).

// rules maps an op type (prefixed with "domain:" outside the default domain) to its VJP.
// Each rule's doc comment states its formula and links the operator's specification.
var rules = map[string]Rule{
	// elementwise.go
	"Add":        addRule,
	"Sub":        subRule,
	"Mul":        mulRule,
	"Div":        divRule,
	"Pow":        powRule,
	"Neg":        negRule,
	"Identity":   identityRule,
	"Sqrt":       sqrtRule,
	"Reciprocal": reciprocalRule,
	"Exp":        expRule,
	"Log":        logRule,
	"Tanh":       tanhRule,
	"Sigmoid":    sigmoidRule,
	"Erf":        erfRule,
	"Cos":        cosRule,
	"Sin":        sinRule,
	"Abs":        absRule,
	"Relu":       reluRule,
	"LeakyRelu":  leakyReluRule,
	"Softplus":   softplusRule,
	"Cast":       castRule,
	"Where":      whereRule,
	"Max":        maxMinRule,
	"Min":        maxMinRule,
	"Clip":       clipRule,
	"Sum":        sumRule,
	"Mean":       meanRule,
	"Dropout":    dropoutRule,
	"Floor":      zeroRule,
	"Ceil":       zeroRule,
	"Round":      zeroRule,
	"Sign":       zeroRule,

	// matmul.go
	"MatMul": matMulRule,
	"Gemm":   gemmRule,

	// reduce.go
	"ReduceSum":       reduceRule,
	"ReduceMean":      reduceRule,
	"ReduceMax":       reduceRule,
	"ReduceMin":       reduceRule,
	"ReduceSumSquare": reduceRule,
	"ReduceL2":        reduceRule,
	"ReduceLogSumExp": reduceRule,
	"Softmax":         softmaxRule,
	"LogSoftmax":      logSoftmaxRule,
	"CumSum":          cumSumRule,

	// shape.go
	"Reshape":        reshapeRule,
	"Flatten":        reshapeRule,
	"Squeeze":        reshapeRule,
	"Unsqueeze":      reshapeRule,
	"Transpose":      transposeRule,
	"Concat":         concatRule,
	"Split":          splitRule,
	"Slice":          sliceRule,
	"Gather":         gatherRule,
	"GatherElements": gatherElementsRule,
	"Expand":         expandRule,
	"Tile":           tileRule,
	"Trilu":          triluRule,
	"Pad":            padRule,

	// nn.go
	"LayerNormalization":           layerNormRule,
	"RMSNormalization":             rmsNormRule,
	"SimplifiedLayerNormalization": rmsNormRule,
	"Gelu":                         geluRule,
}

// Ops lists the op types that have a gradient rule, sorted.
func Ops() []string { return slices.Sorted(maps.Keys(rules)) }

// Register adds the rule of an op type that has none ("domain:Op" outside the default
// domain), for operators of new architectures. It is not safe to call concurrently with
// [Differentiate]; call it from an init function.
func Register(op string, r Rule) error {
	if _, ok := rules[op]; ok {
		return fmt.Errorf("autodiff: op %s already has a gradient rule", op)
	}
	if r == nil {
		return fmt.Errorf("autodiff: nil rule for op %s", op)
	}
	rules[op] = r
	return nil
}
