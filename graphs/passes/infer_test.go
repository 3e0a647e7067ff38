package passes

import (
	"testing"

	"github.com/panacea-go/toolkit/graphs"
	"github.com/panacea-go/toolkit/graphs/onnxpb"
)

// TestInferShapes builds small graphs with symbolic inputs and checks the static shape and
// element type inferred for their last value.
func TestInferShapes(t *testing.T) {
	x := func(b *graphs.Builder) string { return b.Input("x", graphs.Float, "batch", "seq", 576) }
	cases := []struct {
		name  string
		build func(b *graphs.Builder) string
		want  string
		elem  int32
	}{
		{"reshape infers -1 from symbols", func(b *graphs.Builder) string {
			return b.Op("Reshape", x(b), b.ConstInt64(0, 0, 9, -1))
		}, "(batch, seq, 9, 64)", graphs.Float},
		{"reshape from a computed shape", func(b *graphs.Builder) string {
			v := x(b)
			s := b.Op("Shape", v)
			bs := b.Op("Gather", s, b.ConstInt64(0, 1))
			return b.Op("Reshape", v, b.Node("Concat", []string{bs, b.ConstInt64(-1, 64)},
				graphs.AttrInt("axis", 0)))
		}, "(batch, seq, 9, 64)", graphs.Float},
		{"transpose", func(b *graphs.Builder) string {
			r := b.Op("Reshape", x(b), b.ConstInt64(0, 0, 9, 64))
			return b.Node("Transpose", []string{r}, graphs.AttrInts("perm", 0, 2, 1, 3))
		}, "(batch, 9, seq, 64)", graphs.Float},
		{"matmul broadcasts batch", func(b *graphs.Builder) string {
			w := b.Input("w", graphs.Float, 576, 100)
			return b.Op("MatMul", x(b), w)
		}, "(batch, seq, 100)", graphs.Float},
		{"broadcast with ones", func(b *graphs.Builder) string {
			y := b.Input("y", graphs.Float, "seq", 1)
			return b.Op("Add", x(b), y)
		}, "(batch, seq, 576)", graphs.Float},
		{"broadcast of different names is unknown", func(b *graphs.Builder) string {
			y := b.Input("y", graphs.Float, "other", 576)
			return b.Op("Mul", x(b), y)
		}, "(batch, ?, 576)", graphs.Float},
		{"slice of a fixed axis", func(b *graphs.Builder) string {
			return b.Op("Slice", x(b), b.ConstInt64(-64), b.ConstInt64(1<<62), b.ConstInt64(-1))
		}, "(batch, seq, 64)", graphs.Float},
		{"split", func(b *graphs.Builder) string {
			return b.NodeN("Split", []string{x(b), b.ConstInt64(500, 76)}, 2,
				graphs.AttrInt("axis", -1))[1]
		}, "(batch, seq, 76)", graphs.Float},
		{"concat", func(b *graphs.Builder) string {
			v := x(b)
			return b.Node("Concat", []string{v, v}, graphs.AttrInt("axis", -1))
		}, "(batch, seq, 1152)", graphs.Float},
		{"gather rows", func(b *graphs.Builder) string {
			ids := b.Input("ids", graphs.Int64, "batch", "seq")
			emb := b.Initializer(graphs.FloatTensor("emb", []int64{10, 4}, make([]float32, 40)))
			return b.Op("Gather", emb, ids)
		}, "(batch, seq, 4)", graphs.Float},
		{"reduce without keepdims", func(b *graphs.Builder) string {
			return b.Node("ReduceSum", []string{x(b), b.ConstInt64(-1)}, graphs.AttrInt("keepdims", 0))
		}, "(batch, seq)", graphs.Float},
		{"reduce with attribute axes", func(b *graphs.Builder) string {
			return b.Node("ReduceMean", []string{x(b)}, graphs.AttrInts("axes", 1))
		}, "(batch, 1, 576)", graphs.Float},
		{"unsqueeze and squeeze", func(b *graphs.Builder) string {
			u := b.Op("Unsqueeze", x(b), b.ConstInt64(0, -1))
			return b.Op("Squeeze", u, b.ConstInt64(0))
		}, "(batch, seq, 576, 1)", graphs.Float},
		{"expand to a computed shape", func(b *graphs.Builder) string {
			c := b.Input("c", graphs.Float, 1, 576)
			return b.Op("Expand", c, b.Op("Shape", x(b)))
		}, "(batch, seq, 576)", graphs.Float},
		{"shape is int64", func(b *graphs.Builder) string { return b.Op("Shape", x(b)) },
			"(3)", graphs.Int64},
		{"comparison is bool", func(b *graphs.Builder) string {
			return b.Op("Less", x(b), b.ScalarFloat(0, graphs.Float))
		}, "(batch, seq, 576)", graphs.Bool},
		{"cast", func(b *graphs.Builder) string {
			return b.Node("Cast", []string{x(b)}, graphs.AttrInt("to", int64(graphs.Double)))
		}, "(batch, seq, 576)", graphs.Double},
		{"gemm", func(b *graphs.Builder) string {
			a := b.Input("a", graphs.Float, "n", 8)
			w := b.Input("w", graphs.Float, 16, 8)
			return b.Node("Gemm", []string{a, w}, graphs.AttrInt("transB", 1))
		}, "(n, 16)", graphs.Float},
		{"unknown op", func(b *graphs.Builder) string {
			return b.Node("Einsum", []string{x(b)}, graphs.AttrString("equation", "ijk->kji"))
		}, "(?)", graphs.Float},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := graphs.NewBuilder("t")
			out := tc.build(b)
			info, err := Infer(b.Model("t"))
			if err != nil {
				t.Fatal(err)
			}
			if got := info.Shape(out).String(); got != tc.want {
				t.Errorf("shape %s, want %s", got, tc.want)
			}
			if got := info.Elem(out); got != tc.elem {
				t.Errorf("element type %d, want %d", got, tc.elem)
			}
		})
	}
}

func TestBroadcast(t *testing.T) {
	cases := []struct {
		a, b Shape
		want string
	}{
		{DimsShape(SymDim("b"), FixedDim(1)), FixedShape(4), "(b, 4)"},
		{FixedShape(3, 1), FixedShape(2, 1, 4), "(2, 3, 4)"},
		{DimsShape(SymDim("b")), DimsShape(Dim{}), "(?)"},
		{DimsShape(SymDim("b")), DimsShape(SymDim("b")), "(b)"},
		{FixedShape(1), DimsShape(Dim{}), "(?)"},
		{UnknownShape(), FixedShape(2), "(?)"},
	}
	for _, tc := range cases {
		if got := Broadcast(tc.a, tc.b).String(); got != tc.want {
			t.Errorf("Broadcast(%v, %v) = %s, want %s", tc.a, tc.b, got, tc.want)
		}
	}
}

func TestSortAndPrune(t *testing.T) {
	b := graphs.NewBuilder("t")
	x := b.Input("x", graphs.Float, 2)
	w := b.Initializer(graphs.FloatTensor("w", []int64{2}, []float32{1, 2}))
	unusedW := b.Initializer(graphs.FloatTensor("unused", []int64{2}, []float32{1, 2}))
	y := b.Op("Mul", x, w)
	b.Op("Add", x, unusedW) // dead
	z := b.Op("Neg", y)
	b.Output(z, "z", graphs.Float, 2)
	g := b.G
	slices := g.Node
	// Reverse the node order: SortNodes must restore a topological one.
	for i, j := 0, len(slices)-1; i < j; i, j = i+1, j-1 {
		slices[i], slices[j] = slices[j], slices[i]
	}
	if err := SortNodes(g); err != nil {
		t.Fatal(err)
	}
	pos := map[string]int{}
	for i, n := range g.GetNode() {
		for _, o := range n.GetOutput() {
			pos[o] = i
		}
	}
	if pos[y] > pos[z] {
		t.Errorf("Mul after Neg after sorting: %v", g.GetNode())
	}
	if removed := Prune(g); removed != 1 {
		t.Errorf("Prune removed %d nodes, want 1", removed)
	}
	for _, in := range g.GetInitializer() {
		if in.GetName() == unusedW {
			t.Errorf("initializer %q read only by a pruned node survived", unusedW)
		}
	}
	g.Node = append(g.Node, &onnxpb.NodeProto{OpType: "Neg", Name: "orphan",
		Input: []string{"nowhere"}, Output: []string{"o"}})
	if err := SortNodes(g); err == nil {
		t.Errorf("SortNodes accepted a node reading a value nothing provides")
	}
}
