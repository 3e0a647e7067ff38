package autodiff

import (
	"maps"
	"slices"
)

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
