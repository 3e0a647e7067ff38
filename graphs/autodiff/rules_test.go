package autodiff

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/panacea-go/toolkit/graphs"
)

func f(shape ...int64) tin      { return tin{shape: shape} }
func pos(shape ...int64) tin    { return tin{shape: shape, positive: true} }
func frozen(shape ...int64) tin { return tin{shape: shape, frozen: true} }
func ints(v ...int64) tin       { return tin{shape: []int64{int64(len(v))}, ints: v} }
func fedInts(v ...int64) tin    { return tin{shape: []int64{int64(len(v))}, ints: v, fed: true} }
func intsShaped(shape []int64, v ...int64) tin {
	return tin{shape: shape, ints: v}
}

var (
	absent = tin{absent: true}
	a      = graphs.AttrInt
	as     = graphs.AttrInts
	af     = graphs.AttrFloat
	astr   = graphs.AttrString
)

// f32 is the element type of cases whose forward op has no float64 kernel in ONNX Runtime's
// CPU build (Erf, LeakyRelu, Softplus, Mean, Gelu): they are checked in float32 with a
// larger step and a looser tolerance.
const f32 = graphs.Float

// unary lists the one-input elementwise ops checked on one shape.
var unary = []struct {
	op       string
	positive bool
	elem     int32
}{
	{"Neg", false, 0}, {"Identity", false, 0}, {"Sqrt", true, 0}, {"Reciprocal", true, 0},
	{"Exp", false, 0}, {"Log", true, 0}, {"Tanh", false, 0}, {"Sigmoid", false, 0},
	{"Erf", false, f32}, {"Cos", false, 0}, {"Sin", false, 0}, {"Abs", false, 0},
	{"Relu", false, 0}, {"LeakyRelu", false, f32}, {"Softplus", false, f32}, {"Floor", false, 0},
}

func ruleCases() []gradCase {
	var cases []gradCase
	for _, u := range unary {
		in := f(2, 3, 4)
		in.positive = u.positive
		cases = append(cases, gradCase{name: u.op, in: []tin{in}, build: single(u.op, 1),
			elem: u.elem})
	}
	add := func(c ...gradCase) { cases = append(cases, c...) }
	add(
		// Binary elementwise with broadcasting.
		gradCase{name: "Add/broadcast", in: []tin{f(2, 3, 4), f(3, 1)}, build: single("Add", 1)},
		gradCase{name: "Add/rank", in: []tin{f(4), f(2, 3, 4)}, build: single("Add", 1)},
		gradCase{name: "Sub/broadcast", in: []tin{f(2, 3), f(2, 1)}, build: single("Sub", 1)},
		gradCase{name: "Mul/broadcast", in: []tin{f(2, 1, 4), f(3, 1)}, build: single("Mul", 1)},
		gradCase{name: "Mul/frozen", in: []tin{f(2, 3), frozen(3)}, build: single("Mul", 1)},
		gradCase{name: "Mul/self", in: []tin{f(2, 3)}, build: func(b *graphs.Builder, in []string) []string {
			return []string{b.Op("Mul", in[0], in[0])}
		}},
		// Fused patterns (see fused.go), alone and with the inner value also an output.
		gradCase{name: "Mul/rmsnorm", in: []tin{f(2, 3, 4), frozenScalar(1e-3)},
			build: func(b *graphs.Builder, in []string) []string {
				return []string{rmsPattern(b, in[0], in[1], "", "")}
			}},
		gradCase{name: "Mul/rmsnorm-pow-div", in: []tin{f(2, 3, 4), frozenScalar(1e-3),
			frozenScalar(2), frozenScalar(1)},
			build: func(b *graphs.Builder, in []string) []string {
				return []string{rmsPattern(b, in[0], in[1], in[2], in[3])}
			}},
		gradCase{name: "Mul/rmsnorm-shared", in: []tin{f(2, 3, 4), frozenScalar(1e-3)},
			build: func(b *graphs.Builder, in []string) []string {
				y := rmsPattern(b, in[0], in[1], "", "")
				return []string{y, b.G.Node[len(b.G.Node)-1].GetInput()[1]}
			}},
		gradCase{name: "Mul/silu", in: []tin{f(2, 3)}, build: func(b *graphs.Builder, in []string) []string {
			return []string{b.Op("Mul", in[0], b.Op("Sigmoid", in[0]))}
		}},
		gradCase{name: "Mul/silu-shared", in: []tin{f(2, 3)}, build: func(b *graphs.Builder, in []string) []string {
			s := b.Op("Sigmoid", in[0])
			return []string{b.Op("Mul", s, in[0]), s}
		}},
		gradCase{name: "Div/broadcast", in: []tin{f(2, 3), pos(3)}, build: single("Div", 1)},
		gradCase{name: "Pow/square", in: []tin{f(2, 3), frozenScalar(2)}, build: single("Pow", 1)},
		gradCase{name: "Pow/half", in: []tin{pos(2, 3), frozenScalar(0.5)}, build: single("Pow", 1)},
		gradCase{name: "Pow/both", in: []tin{pos(2, 3), f(3)}, build: single("Pow", 1)},
		gradCase{name: "Where", in: []tin{{shape: []int64{2, 3}, bools: []bool{true, false, true,
			false, false, true}}, f(2, 3), f(3)}, build: single("Where", 1)},
		gradCase{name: "Max/broadcast", in: []tin{f(2, 3), f(3)}, build: single("Max", 1)},
		gradCase{name: "Min/three", in: []tin{f(2, 3), f(3), f(2, 1)}, build: single("Min", 1)},
		gradCase{name: "Clip/constant", in: []tin{f(3, 4), frozenScalar(-0.3), frozenScalar(0.4)},
			build: single("Clip", 1)},
		gradCase{name: "Clip/bounds", in: []tin{f(3, 4), scalar(), scalar()},
			build: single("Clip", 1)},
		gradCase{name: "Clip/max-only", in: []tin{f(3, 4), absent, frozenScalar(0.2)},
			build: single("Clip", 1)},
		gradCase{name: "Sum/three", in: []tin{f(2, 3), f(3), f(2, 1)}, build: single("Sum", 1)},
		gradCase{name: "Mean/two", in: []tin{f(2, 3), f(3)}, build: single("Mean", 1), elem: f32},
		gradCase{name: "Cast/roundtrip", in: []tin{f(2, 3)}, step: 1e-2, tol: 1e-5,
			build: func(b *graphs.Builder, in []string) []string {
				x := b.Node("Cast", in, a("to", int64(graphs.Float)))
				x = b.Op("Mul", x, b.ScalarFloat(1.5, graphs.Float))
				return []string{b.Node("Cast", []string{x}, a("to", int64(graphs.Double)))}
			}},
		gradCase{name: "Dropout/inference", in: []tin{f(2, 3)}, build: single("Dropout", 1)},
		gradCase{name: "Gelu/none", in: []tin{f(2, 3, 4)}, build: single("Gelu", 1), elem: f32},
		gradCase{name: "Gelu/tanh", in: []tin{f(2, 3, 4)}, elem: f32,
			build: single("Gelu", 1, astr("approximate", "tanh"))},

		// Matrix products.
		gradCase{name: "MatMul/weight", in: []tin{f(2, 3, 4), f(4, 5)}, build: single("MatMul", 1)},
		gradCase{name: "MatMul/2d", in: []tin{f(3, 4), f(4, 5)}, build: single("MatMul", 1)},
		gradCase{name: "MatMul/batched", in: []tin{f(2, 1, 3, 4), f(3, 4, 2)},
			build: single("MatMul", 1)},
		gradCase{name: "MatMul/vector-a", in: []tin{f(4), f(2, 4, 5)}, build: single("MatMul", 1)},
		gradCase{name: "MatMul/vector-b", in: []tin{f(2, 3, 4), f(4)}, build: single("MatMul", 1)},
		gradCase{name: "MatMul/frozen-weight", in: []tin{f(2, 3, 4), frozen(4, 5)},
			build: single("MatMul", 1)},
	)
	for _, ta := range []int64{0, 1} {
		for _, tb := range []int64{0, 1} {
			sa, sb := []int64{3, 4}, []int64{4, 5}
			if ta == 1 {
				sa = []int64{4, 3}
			}
			if tb == 1 {
				sb = []int64{5, 4}
			}
			add(gradCase{name: fmt.Sprintf("Gemm/transA=%d,transB=%d", ta, tb),
				in: []tin{f(sa...), f(sb...), f(5)},
				build: single("Gemm", 1, a("transA", ta), a("transB", tb), af("alpha", 0.7),
					af("beta", 1.3))})
		}
	}
	add(
		gradCase{name: "Gemm/no-bias", in: []tin{f(3, 4), f(5, 4)},
			build: single("Gemm", 1, a("transB", 1))},
		gradCase{name: "Gemm/scalar-bias", in: []tin{f(3, 4), f(4, 5), scalar()},
			build: single("Gemm", 1)},

		// Reductions and softmax.
		gradCase{name: "ReduceSum/last", in: []tin{f(2, 3, 4), ints(-1)},
			build: single("ReduceSum", 1, a("keepdims", 0))},
		gradCase{name: "ReduceSum/keep", in: []tin{f(2, 3, 4), ints(0, 2)}, build: single("ReduceSum", 1)},
		gradCase{name: "ReduceSum/all", in: []tin{f(2, 3, 4)},
			build: single("ReduceSum", 1, a("keepdims", 0))},
		gradCase{name: "ReduceSum/fed-axes", in: []tin{f(2, 3, 4), fedInts(1)},
			build: single("ReduceSum", 1, a("keepdims", 0))},
		gradCase{name: "ReduceMean/opset21", in: []tin{f(2, 3, 4), ints(-2)},
			build: single("ReduceMean", 1, a("keepdims", 0))},
		gradCase{name: "ReduceMean/opset17", in: []tin{f(2, 3, 4)}, opset: 17,
			build: single("ReduceMean", 1, as("axes", 1, -1))},
		gradCase{name: "ReduceMax/axis", in: []tin{f(2, 3, 4), ints(1)},
			build: single("ReduceMax", 1, a("keepdims", 0))},
		gradCase{name: "ReduceMax/all", in: []tin{f(3, 4)}, build: single("ReduceMax", 1)},
		gradCase{name: "ReduceMin/axis", in: []tin{f(2, 3, 4), ints(-1)}, build: single("ReduceMin", 1)},
		gradCase{name: "ReduceSumSquare", in: []tin{f(2, 3, 4), ints(1)},
			build: single("ReduceSumSquare", 1)},
		gradCase{name: "ReduceL2", in: []tin{f(2, 3, 4), ints(2)},
			build: single("ReduceL2", 1, a("keepdims", 0))},
		gradCase{name: "ReduceLogSumExp", in: []tin{f(2, 3, 4), ints(-1)},
			build: single("ReduceLogSumExp", 1, a("keepdims", 0))},
		gradCase{name: "Softmax/last", in: []tin{f(2, 3, 4)}, build: single("Softmax", 1)},
		gradCase{name: "Softmax/axis1", in: []tin{f(2, 3, 4)}, build: single("Softmax", 1, a("axis", 1))},
		// Attention-shaped: probabilities times values (the dO·O shortcut), alone, with the
		// probabilities also an output, and with the values broadcast over a head axis.
		gradCase{name: "Softmax/times-values", in: []tin{f(2, 3, 4), f(2, 4, 5)},
			build: func(b *graphs.Builder, in []string) []string {
				return []string{b.Op("MatMul", b.Node("Softmax", in[:1], a("axis", -1)), in[1])}
			}},
		gradCase{name: "Softmax/times-values-shared", in: []tin{f(2, 3, 4), f(2, 4, 5)},
			build: func(b *graphs.Builder, in []string) []string {
				p := b.Node("Softmax", in[:1], a("axis", 2))
				return []string{b.Op("MatMul", p, in[1]), p}
			}},
		gradCase{name: "Softmax/times-values-broadcast", in: []tin{f(2, 3, 3, 4), f(2, 1, 4, 5)},
			build: func(b *graphs.Builder, in []string) []string {
				return []string{b.Op("MatMul", b.Node("Softmax", in[:1], a("axis", -1)), in[1])}
			}},
		gradCase{name: "LogSoftmax/last", in: []tin{f(2, 3, 5)}, build: single("LogSoftmax", 1)},
		gradCase{name: "LogSoftmax/axis0", in: []tin{f(3, 4)}, build: single("LogSoftmax", 1, a("axis", 0))},
		gradCase{name: "LogSoftmax/gathered", in: []tin{f(2, 3, 5),
			intsShaped([]int64{2, 3, 1}, 0, 4, 4, 1, 2, 3)},
			build: func(b *graphs.Builder, in []string) []string {
				lp := b.Node("LogSoftmax", in[:1], a("axis", -1))
				return []string{b.Node("GatherElements", []string{lp, in[1]}, a("axis", 2))}
			}},
		gradCase{name: "LogSoftmax/gathered-other-axis", in: []tin{f(2, 3),
			intsShaped([]int64{1, 3}, 1, 0, 1)},
			build: func(b *graphs.Builder, in []string) []string {
				lp := b.Node("LogSoftmax", in[:1], a("axis", -1))
				return []string{b.Node("GatherElements", []string{lp, in[1]}, a("axis", 0))}
			}},
		gradCase{name: "LogSoftmax/gathered-and-used", in: []tin{f(2, 4),
			intsShaped([]int64{2, 1}, 3, 0)},
			build: func(b *graphs.Builder, in []string) []string {
				lp := b.Node("LogSoftmax", in[:1], a("axis", 1))
				return []string{b.Node("GatherElements", []string{lp, in[1]}, a("axis", -1)), lp}
			}},
		// The LM head under a token loss: the picked entries reach x from the weight's
		// columns (scatterWeightInputGrad); with the weight differentiated too, and frozen.
		gradCase{name: "MatMul/head-picked", in: []tin{f(2, 3, 4), f(4, 6),
			intsShaped([]int64{2, 3, 1}, 0, 5, 5, 1, 2, 3)}, build: headPick},
		gradCase{name: "MatMul/head-picked-frozen", in: []tin{f(2, 3, 4), frozen(4, 6),
			intsShaped([]int64{2, 3, 1}, 4, 5, 0, 1, 2, 2)}, build: headPick},
		gradCase{name: "CumSum", in: []tin{f(2, 5), ints(1)}, build: single("CumSum", 1)},
		gradCase{name: "CumSum/reverse-exclusive", in: []tin{f(2, 5), intsShaped(nil, -1)},
			build: single("CumSum", 1, a("reverse", 1), a("exclusive", 1))},

		// Shape and indexing ops.
		gradCase{name: "Reshape", in: []tin{f(2, 3, 4), ints(0, -1)}, build: single("Reshape", 1)},
		gradCase{name: "Reshape/fed", in: []tin{f(2, 3, 4), fedInts(4, 6)}, build: single("Reshape", 1)},
		gradCase{name: "Flatten", in: []tin{f(2, 3, 4)}, build: single("Flatten", 1, a("axis", 2))},
		gradCase{name: "Squeeze", in: []tin{f(2, 1, 3), ints(-2)}, build: single("Squeeze", 1)},
		gradCase{name: "Unsqueeze", in: []tin{f(2, 3), ints(-1, 0)}, build: single("Unsqueeze", 1)},
		gradCase{name: "Transpose/perm", in: []tin{f(2, 3, 4)},
			build: single("Transpose", 1, as("perm", 2, 0, 1))},
		gradCase{name: "Transpose/reverse", in: []tin{f(2, 3, 4)}, build: single("Transpose", 1)},
		gradCase{name: "Concat/last", in: []tin{f(2, 3), f(2, 1), frozen(2, 2), f(2, 2)},
			build: single("Concat", 1, a("axis", -1))},
		gradCase{name: "Split/sizes", in: []tin{f(2, 6), ints(1, 2, 3)},
			build: single("Split", 3, a("axis", -1))},
		gradCase{name: "Split/partly-used", in: []tin{f(6, 2)},
			build: func(b *graphs.Builder, in []string) []string {
				outs := b.NodeN("Split", in, 3, a("axis", 0), a("num_outputs", 3))
				return []string{outs[0], outs[2]}
			}},
		gradCase{name: "Slice/negative", in: []tin{f(2, 3, 5), ints(1), ints(-1), ints(-1)},
			build: single("Slice", 1)},
		gradCase{name: "Slice/multi", in: []tin{f(4, 3, 5), ints(1, -100), ints(3, 2), ints(0, 2)},
			build: single("Slice", 1)},
		gradCase{name: "Slice/to-end", in: []tin{f(2, 6), ints(2), ints(math.MaxInt64), ints(1)},
			build: single("Slice", 1)},
		gradCase{name: "Slice/fed", in: []tin{f(3, 6), fedInts(-4), fedInts(5), fedInts(-1)},
			build: single("Slice", 1)},
		gradCase{name: "Slice/step2", in: []tin{f(3, 7), ints(1), ints(7), ints(1), ints(2)},
			build: single("Slice", 1)},
		gradCase{name: "Slice/reverse", in: []tin{f(3, 5), ints(-1), ints(math.MinInt64), ints(1),
			ints(-1)}, build: single("Slice", 1)},
		gradCase{name: "Gather/rows", in: []tin{f(5, 3), intsShaped([]int64{2, 3}, 0, 4, -1, 2, 0, 0)},
			build: single("Gather", 1)},
		gradCase{name: "Gather/axis1", in: []tin{f(2, 4, 3), intsShaped([]int64{2, 2}, 3, 1, 1, -4)},
			build: single("Gather", 1, a("axis", 1))},
		gradCase{name: "Gather/scalar-last", in: []tin{f(2, 4), intsShaped(nil, 2)},
			build: single("Gather", 1, a("axis", -1))},
		gradCase{name: "GatherElements", in: []tin{f(2, 5), intsShaped([]int64{2, 3}, 0, 4, 4, 1, 1, 2)},
			build: single("GatherElements", 1, a("axis", -1))},
		gradCase{name: "GatherElements/axis0", in: []tin{f(3, 2), intsShaped([]int64{2, 2}, 2, 0, 2, 1)},
			build: single("GatherElements", 1)},
		gradCase{name: "Expand", in: []tin{f(3, 1), ints(2, 3, 4)}, build: single("Expand", 1)},
		gradCase{name: "Expand/fed", in: []tin{f(3, 1), fedInts(2, 1, 4)}, build: single("Expand", 1)},
		gradCase{name: "Tile", in: []tin{f(2, 3), ints(2, 3)}, build: single("Tile", 1)},
		gradCase{name: "Trilu/upper", in: []tin{f(3, 4), intsShaped(nil, 1)}, build: single("Trilu", 1)},
		gradCase{name: "Trilu/lower", in: []tin{f(2, 3, 3)}, build: single("Trilu", 1, a("upper", 0))},
		gradCase{name: "Pad", in: []tin{f(2, 3), ints(0, 1, 1, 2)}, build: single("Pad", 1)},

		// Normalisations.
		gradCase{name: "LayerNormalization/last", in: []tin{f(2, 3, 4), f(4), f(4)},
			build: single("LayerNormalization", 1, af("epsilon", 1e-3))},
		gradCase{name: "LayerNormalization/axis1", in: []tin{f(2, 3, 4), f(3, 4), f(4)},
			build: single("LayerNormalization", 1, a("axis", 1))},
		gradCase{name: "LayerNormalization/f32-reuse", in: []tin{f(2, 3, 4), f(4), f(4)}, elem: f32,
			build: single("LayerNormalization", 1)},
		gradCase{name: "RMSNormalization", in: []tin{f(2, 3, 4), f(4)}, opset: 23,
			build: single("RMSNormalization", 1, af("epsilon", 1e-3))},
		gradCase{name: "SimplifiedLayerNormalization", in: []tin{f(2, 3, 4), f(4)},
			build: single("SimplifiedLayerNormalization", 1, af("epsilon", 1e-3))},
	)
	// A small network, plain and with every forward node recomputed in the backward pass.
	for _, rec := range []bool{false, true} {
		add(gradCase{name: fmt.Sprintf("Network/recompute=%v", rec), recompute: rec,
			in: []tin{f(2, 3, 4), f(4, 5), f(5), f(5)},
			build: func(b *graphs.Builder, in []string) []string {
				h := b.Op("Tanh", b.Op("MatMul", in[0], in[1]))
				h = b.Node("LayerNormalization", []string{h, in[2], in[3]})
				s := b.Node("Softmax", []string{b.Op("Mul", h, h)}, a("axis", 1))
				return []string{b.Op("Add", s, h)}
			}})
	}
	return cases
}

// scalar is a one-element float input: the Go binding cannot feed rank-0 tensors.
func scalar() tin { return tin{shape: []int64{1}} }

func frozenScalar(v float64) tin { return tin{shape: []int64{}, frozen: true, value: []float64{v}} }

// TestRules checks every gradient rule against central finite differences in float64.
func TestRules(t *testing.T) {
	covered := map[string]bool{}
	var report []string
	for _, gc := range ruleCases() {
		op, _, _ := strings.Cut(gc.name, "/")
		covered[op] = true
		for _, dynamic := range []bool{false, true} {
			gc.dynamic = dynamic
			name := gc.name
			if dynamic {
				name += "/dynamic"
			}
			t.Run(name, func(t *testing.T) {
				r := runCase(t, gc)
				if r.checked == 0 {
					t.Fatalf("no derivative was checked")
				}
				report = append(report, fmt.Sprintf("%-44s %4d  %.2e", name, r.checked, r.maxAbs))
			})
		}
	}
	for _, op := range Ops() {
		if !covered[op] && !slices.Contains([]string{"Ceil", "Round", "Sign"}, op) {
			t.Errorf("op %s has a rule but no gradient check", op)
		}
	}
	t.Logf("case, derivatives checked, max |analytic − numeric|:\n%s", strings.Join(report, "\n"))
}

// rmsPattern builds x/√(mean(x²) + eps) over the last axis as exporters write it: x·x or
// Pow(x, two) when two is set; Reciprocal or Div(one, ·) when one is set, and then with the
// Mul's inputs swapped.
func rmsPattern(b *graphs.Builder, x, eps, two, one string) string {
	sq := b.Op("Mul", x, x)
	if two != "" {
		sq = b.Op("Pow", x, two)
	}
	ms := b.Node("ReduceMean", []string{sq, b.ConstInt64(-1)}, graphs.AttrInt("keepdims", 1))
	root := b.Op("Sqrt", b.Op("Add", ms, eps))
	if one != "" {
		return b.Op("Mul", b.Op("Div", one, root), x)
	}
	return b.Op("Mul", x, b.Op("Reciprocal", root))
}

// TestFusedPatternsSkipInnerNodes checks that an RMS normalisation and a SiLU get their
// fused backward: no backward node is built for the Sqrt, Reciprocal or Sigmoid inside.
func TestFusedPatternsSkipInnerNodes(t *testing.T) {
	b := graphs.NewBuilder("fused")
	x := b.Input("x", graphs.Float, 2, 8)
	eps := b.Initializer(graphs.FloatTensor("eps", nil, []float32{1e-5}))
	h := rmsPattern(b, x, eps, "", "")
	y := b.Op("Mul", h, b.Op("Sigmoid", h))
	loss := b.Node("ReduceSum", []string{y}, graphs.AttrInt("keepdims", 0))
	b.Output(loss, "loss", graphs.Float)
	m := b.Model("test")
	inner := map[string]bool{}
	for _, n := range m.GetGraph().GetNode() {
		if n.GetOpType() == "Sqrt" || n.GetOpType() == "Reciprocal" || n.GetOpType() == "Sigmoid" {
			inner[n.GetName()] = true
		}
	}
	if len(inner) != 3 {
		t.Fatalf("pattern has %d inner nodes", len(inner))
	}
	if _, err := Differentiate(m, Config{Loss: loss, Wrt: []string{"x"}}); err != nil {
		t.Fatal(err)
	}
	for _, n := range m.GetGraph().GetNode() {
		if scope, _, ok := strings.Cut(strings.TrimPrefix(n.GetName(), "grad/"), "/"); ok &&
			strings.HasPrefix(n.GetName(), "grad/") && inner[scope] {
			t.Errorf("backward node %s differentiates an inner node of a fused pattern", n.GetName())
		}
	}
}

// headPick is log_softmax(x·W)[…, idx] along the last axis.
func headPick(b *graphs.Builder, in []string) []string {
	lp := b.Node("LogSoftmax", []string{b.Op("MatMul", in[0], in[1])}, graphs.AttrInt("axis", -1))
	return []string{b.Node("GatherElements", []string{lp, in[2]}, graphs.AttrInt("axis", -1))}
}

// TestHeadPickSkipsScatter checks that the LM head's input gradient under a token loss
// takes the picked entries from the weight: no ScatterElements is left in the graph.
func TestHeadPickSkipsScatter(t *testing.T) {
	b := graphs.NewBuilder("head")
	x := b.Input("x", graphs.Float, 2, 3, 4)
	w := b.Initializer(graphs.FloatTensor("w", []int64{4, 6}, make([]float32, 24)))
	idx := b.Input("idx", graphs.Int64, 2, 3, 1)
	picked := headPick(b, []string{x, w, idx})[0]
	loss := b.Node("ReduceSum", []string{picked}, graphs.AttrInt("keepdims", 0))
	b.Output(loss, "loss", graphs.Float)
	m := b.Model("test")
	if _, err := Differentiate(m, Config{Loss: loss, Wrt: []string{x}}); err != nil {
		t.Fatal(err)
	}
	for _, n := range m.GetGraph().GetNode() {
		if n.GetOpType() == "ScatterElements" {
			t.Errorf("backward keeps %s", n.GetName())
		}
	}
}

// TestSoftmaxTimesValuesSumsOverValues checks that the softmax of attention-shaped graphs
// sums dO·O (over the values' columns), not dP·P (over the keys).
func TestSoftmaxTimesValuesSumsOverValues(t *testing.T) {
	b := graphs.NewBuilder("attn")
	x := b.Input("x", graphs.Float, 2, 8, 8)
	v := b.Input("v", graphs.Float, 2, 8, 4)
	o := b.Op("MatMul", b.Node("Softmax", []string{x}, graphs.AttrInt("axis", -1)), v)
	loss := b.Node("ReduceSum", []string{o}, graphs.AttrInt("keepdims", 0))
	b.Output(loss, "loss", graphs.Float)
	m := b.Model("test")
	if _, err := Differentiate(m, Config{Loss: loss, Wrt: []string{x}}); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, n := range m.GetGraph().GetNode() {
		if n.GetOpType() == "Mul" && strings.Contains(n.GetName(), "Softmax") &&
			slices.Contains(n.GetInput(), o) {
			found = true
		}
	}
	if !found {
		t.Error("the softmax backward does not multiply dO by the product's output")
	}
}
