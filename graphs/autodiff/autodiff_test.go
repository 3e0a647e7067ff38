package autodiff

import (
	"strings"
	"testing"

	"github.com/panacea-go/toolkit/graphs"
	"github.com/panacea-go/toolkit/graphs/onnxpb"
	"github.com/panacea-go/toolkit/graphs/passes"
)

// linearModel is x (batch, 4) ─▶ MatMul(·, w) ─▶ Tanh ─▶ ReduceSum ─▶ loss (1), with w a
// frozen initializer and b an input added to x first.
func linearModel() *onnxpb.ModelProto {
	b := graphs.NewBuilder("linear")
	x := b.Input("x", graphs.Float, "batch", 4)
	bias := b.Input("bias", graphs.Float, 4)
	b.Input("unused", graphs.Float, 4)
	w := b.Initializer(graphs.FloatTensor("w", []int64{4, 3}, make([]float32, 12)))
	h := b.Op("Tanh", b.Op("MatMul", b.Op("Add", x, bias), w))
	s := b.Node("ReduceSum", []string{h}, graphs.AttrInt("keepdims", 0))
	b.Output(b.Op("Reshape", s, b.ConstInt64(1)), "loss", graphs.Float, 1)
	return b.Model("t")
}

// countOps counts the op types of the nodes after the first n.
func countOps(g *onnxpb.GraphProto, n int) map[string]int {
	c := map[string]int{}
	for _, node := range g.GetNode()[n:] {
		c[node.GetOpType()]++
	}
	return c
}

// TestOnlyNeededCotangents checks that a frozen weight gets no gradient computation: the
// backward of MatMul(x, W) with respect to x alone is one Gemm (dx = g·Wᵀ), and with
// respect to W alone one Gemm (dW = xᵀ·g), never both.
func TestOnlyNeededCotangents(t *testing.T) {
	cases := []struct {
		wrt       []string
		gemms     int
		unreached []string
	}{
		{[]string{"bias"}, 1, nil},
		{[]string{"w"}, 1, nil},
		{[]string{"bias", "w"}, 2, nil},
		{[]string{"bias", "unused"}, 1, []string{"unused"}},
	}
	for _, tc := range cases {
		t.Run(strings.Join(tc.wrt, ","), func(t *testing.T) {
			m := linearModel()
			before := len(m.GetGraph().GetNode())
			res, err := Differentiate(m, Config{Loss: "loss", Wrt: tc.wrt})
			if err != nil {
				t.Fatal(err)
			}
			ops := countOps(m.GetGraph(), before)
			if ops["Gemm"] != tc.gemms || ops["MatMul"] != 0 {
				t.Errorf("backward has %d Gemm and %d MatMul nodes, want %d and 0: %v",
					ops["Gemm"], ops["MatMul"], tc.gemms, ops)
			}
			if strings.Join(res.Unreached, ",") != strings.Join(tc.unreached, ",") {
				t.Errorf("unreached %v, want %v", res.Unreached, tc.unreached)
			}
			for _, p := range tc.wrt {
				if res.Grads[p] != GradName(p) {
					t.Errorf("gradient of %s is %q, want %q", p, res.Grads[p], GradName(p))
				}
			}
		})
	}
}

func TestDifferentiateErrors(t *testing.T) {
	cases := []struct {
		name   string
		model  func() *onnxpb.ModelProto
		cfg    Config
		errHas []string
	}{
		{"no rule", func() *onnxpb.ModelProto {
			b := graphs.NewBuilder("t")
			x := b.Input("x", graphs.Float, 2, 2)
			y := b.Node("Einsum", []string{x, x}, graphs.AttrString("equation", "ij,jk->ik"))
			b.Output(b.Node("ReduceSum", []string{y}), "loss", graphs.Float, 1, 1)
			return b.Model("t")
		}, Config{Loss: "loss", Wrt: []string{"x"}}, []string{"Einsum", `"Einsum"`, "no gradient rule"}},
		{"unknown value", linearModel, Config{Loss: "loss", Wrt: []string{"nothing"}},
			[]string{"nothing", "neither a graph input nor an initializer"}},
		{"integer value", func() *onnxpb.ModelProto {
			m := linearModel()
			graphs.WrapGraph(m.GetGraph()).Input("ids", graphs.Int64, 2)
			return m
		}, Config{Loss: "loss", Wrt: []string{"ids"}}, []string{"ids", "not a floating-point"}},
		{"no loss", linearModel, Config{Loss: "nothing", Wrt: []string{"bias"}}, []string{"loss"}},
		{"old opset", func() *onnxpb.ModelProto {
			m := linearModel()
			m.OpsetImport[0].Version = 11
			return m
		}, Config{Loss: "loss", Wrt: []string{"bias"}}, []string{"opset 11"}},
		{"twice", func() *onnxpb.ModelProto {
			m := linearModel()
			if _, err := Differentiate(m, Config{Loss: "loss", Wrt: []string{"bias"}}); err != nil {
				panic(err)
			}
			return m
		}, Config{Loss: "loss", Wrt: []string{"bias"}}, []string{"bias.grad"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Differentiate(tc.model(), tc.cfg)
			if err == nil {
				t.Fatal("no error")
			}
			for _, want := range tc.errHas {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not mention %q", err, want)
				}
			}
		})
	}
}

// TestOpsetRaised checks that a model at opset 13 is raised to 16 (for ScatterND with
// reduction) and that the ops table lists every documented op.
func TestOpsetRaised(t *testing.T) {
	m := linearModel()
	m.OpsetImport[0].Version = 13
	if _, err := Differentiate(m, Config{Loss: "loss", Wrt: []string{"bias"}}); err != nil {
		t.Fatal(err)
	}
	if v := m.OpsetImport[0].Version; v != 16 {
		t.Errorf("opset %d after differentiation, want 16", v)
	}
	want := []string{"MatMul", "Gemm", "Add", "Sub", "Mul", "Div", "Neg", "Pow", "Sqrt",
		"Reciprocal", "Exp", "Log", "Tanh", "Sigmoid", "Erf", "Softmax", "LogSoftmax",
		"ReduceSum", "ReduceMean", "ReduceMax", "Reshape", "Transpose", "Concat", "Split",
		"Slice", "Gather", "GatherElements", "Expand", "Where", "Cast", "Squeeze", "Unsqueeze",
		"LayerNormalization", "RMSNormalization", "Cos", "Sin", "Identity", "Max", "Min",
		"Clip", "Abs"}
	ops := map[string]bool{}
	for _, op := range Ops() {
		ops[op] = true
	}
	for _, op := range want {
		if !ops[op] {
			t.Errorf("no rule for %s", op)
		}
	}
}

// TestSumToStatic checks that broadcasting is undone with constant axes when the shapes are
// known and with run-time axes (NonZero of a shape comparison) when they are not.
func TestSumToStatic(t *testing.T) {
	for _, dynamic := range []bool{false, true} {
		b := graphs.NewBuilder("t")
		var x, y string
		if dynamic {
			x = b.Input("x", graphs.Float, "a", "b")
			y = b.Input("y", graphs.Float, "c")
		} else {
			x = b.Input("x", graphs.Float, "a", 3)
			y = b.Input("y", graphs.Float, 3)
		}
		s := b.Node("ReduceSum", []string{b.Op("Mul", x, y)}, graphs.AttrInt("keepdims", 0))
		b.Output(b.Op("Reshape", s, b.ConstInt64(1)), "loss", graphs.Float, 1)
		m := b.Model("t")
		before := len(m.GetGraph().GetNode())
		if _, err := Differentiate(m, Config{Loss: "loss", Wrt: []string{"y"}}); err != nil {
			t.Fatal(err)
		}
		ops := countOps(m.GetGraph(), before)
		if got := ops["NonZero"] > 0; got != dynamic {
			t.Errorf("dynamic=%v: run-time broadcast axes used: %v (%v)", dynamic, got, ops)
		}
	}
}

// TestTokenLossFusion checks that the backward of LogSoftmax → GatherElements (the token
// loss) builds no zero tensor of the logits' size: one ScatterElements into −e^y·Σu.
func TestTokenLossFusion(t *testing.T) {
	b := graphs.NewBuilder("t")
	logits := b.Input("logits", graphs.Float, "batch", "seq", 50)
	ids := b.Input("ids", graphs.Int64, "batch", "seq", 1)
	lp := b.Node("LogSoftmax", []string{logits}, graphs.AttrInt("axis", -1))
	picked := b.Node("GatherElements", []string{lp, ids}, graphs.AttrInt("axis", -1))
	s := b.Node("ReduceSum", []string{picked}, graphs.AttrInt("keepdims", 0))
	b.Output(b.Op("Reshape", s, b.ConstInt64(1)), "loss", graphs.Float, 1)
	m := b.Model("t")
	before := len(m.GetGraph().GetNode())
	if _, err := Differentiate(m, Config{Loss: "loss", Wrt: []string{"logits"}}); err != nil {
		t.Fatal(err)
	}
	ops := countOps(m.GetGraph(), before)
	if ops["ScatterElements"] != 1 || ops["ConstantOfShape"] != 1 || ops["Sub"] != 0 {
		t.Errorf("backward ops %v, want one ScatterElements, the seed's ConstantOfShape and no Sub", ops)
	}
}

// TestRegister adds a rule for an op without one (Einsum as a plain matrix product here)
// and checks that the table refuses a second rule for the same op.
func TestRegister(t *testing.T) {
	if err := Register("MatMul", matMulRule); err == nil {
		t.Errorf("Register accepted a second MatMul rule")
	}
	const op = "test:Einsum"
	if err := Register(op, func(c *Ctx, n *onnxpb.NodeProto, dy []string) ([]string, error) {
		return []string{c.Op("Mul", dy[0], c.X(1)), ""}, nil
	}); err != nil {
		t.Fatal(err)
	}
	defer delete(rules, op)
	b := graphs.NewBuilder("t")
	x := b.Input("x", graphs.Float, 2)
	y := b.Node("Einsum", []string{x, b.Initializer(graphs.FloatTensor("w", []int64{2},
		[]float32{1, 2}))}, graphs.AttrString("equation", "i,i->i"))
	b.G.Node[len(b.G.Node)-1].Domain = "test"
	b.Output(b.Op("ReduceSum", y), "loss", graphs.Float, 1)
	m := b.Model("t")
	if _, err := Differentiate(m, Config{Loss: "loss", Wrt: []string{"x"}}); err != nil {
		t.Fatal(err)
	}
}

// TestMemoKeepsTensorAttributes checks that identical nodes are shared but nodes that differ
// only in a tensor attribute (zeros and ones of one shape) are not.
func TestMemoKeepsTensorAttributes(t *testing.T) {
	b := graphs.NewBuilder("t")
	x := b.Input("x", graphs.Float, "n")
	c := &Ctx{b: b, info: passes.NewInfo(21), consts: map[constKey]string{},
		shapes: map[string]string{}}
	c.info.SetElem(x, graphs.Float)
	zeros, ones := c.zerosLike(x), c.onesLike(x)
	if zeros == ones {
		t.Fatalf("zerosLike and onesLike share the node %q", zeros)
	}
	if again := c.zerosLike(x); again != zeros {
		t.Errorf("a second zerosLike made %q, want the first %q", again, zeros)
	}
}
