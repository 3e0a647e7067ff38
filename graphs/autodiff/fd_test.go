package autodiff

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	onnx "github.com/yalue/onnxruntime_go"

	"github.com/panacea-go/toolkit/graphs"
	"github.com/panacea-go/toolkit/graphs/onnxpb"
	"github.com/panacea-go/toolkit/internal/testutil"
	"github.com/panacea-go/toolkit/ort"
)

// tin describes one input of a gradient-check case.
type tin struct {
	shape    []int64
	ints     []int64   // an int64 tensor (constant unless fed)
	bools    []bool    // a bool constant
	frozen   bool      // a float constant that is not differentiated
	fed      bool      // ints fed as a graph input (not a constant) to force run-time paths
	positive bool      // float values in [0.5, 1.5] instead of [-1, 1]
	absent   bool      // an omitted optional input ("")
	value    []float64 // fixed float values (default: random)
}

// gradCase is one finite-difference check: build adds nodes reading the named inputs and
// returns the float outputs that the loss weighs.
type gradCase struct {
	name  string
	in    []tin
	build func(b *graphs.Builder, in []string) []string
	opset int64
	elem  int32   // element type of the float inputs (default float64)
	step  float64 // finite-difference step (default 1e-5, 1e-2 in float32)
	tol   float64 // allowed |analytic − numeric| / (1 + |numeric|) (default 1e-7, 2e-3 in float32)
	// recompute selects every forward node for recomputation (Config.Recompute).
	recompute bool
	// dynamic declares every graph input with symbolic dimensions of its own, so that no
	// shape is known statically and the rules take their run-time paths.
	dynamic bool
}

// single returns a build function applying one op to all inputs.
func single(op string, outputs int, attrs ...graphs.Attr) func(*graphs.Builder, []string) []string {
	return func(b *graphs.Builder, in []string) []string {
		return b.NodeN(op, in, outputs, attrs...)
	}
}

// fdResult is the outcome of a check: the largest absolute and scaled errors.
type fdResult struct {
	maxAbs, maxScaled float64
	checked           int
}

// feedSet holds the values fed to a case's graph inputs: fixed tensors (integer inputs) and
// float slices that the finite differences perturb in place.
type feedSet struct {
	elem   int32
	order  []string
	fixed  map[string]onnx.Value
	values map[string][]float64
	shapes map[string][]int64
}

// caseModel builds the case's forward graph and the feeds for its graph inputs.
func caseModel(t *testing.T, gc gradCase, rng *rand.Rand) (*onnxpb.ModelProto, []string, *feedSet) {
	t.Helper()
	b := graphs.NewBuilder(gc.name)
	names := make([]string, len(gc.in))
	var wrt []string
	fs := &feedSet{elem: gc.elem, fixed: map[string]onnx.Value{},
		values: map[string][]float64{}, shapes: map[string][]int64{}}
	for i, x := range gc.in {
		name := fmt.Sprintf("x%d", i)
		switch {
		case x.absent:
			name = ""
		case x.ints != nil && x.fed:
			b.Input(name, graphs.Int64, symbols(name, len(x.shape))...)
			v, err := onnx.NewTensor(onnx.NewShape(x.shape...), x.ints)
			if err != nil {
				t.Fatal(err)
			}
			fs.fixed[name] = v
			fs.order = append(fs.order, name)
		case x.ints != nil:
			b.Initializer(graphs.Int64Tensor(name, x.shape, x.ints))
		case x.bools != nil:
			raw := make([]byte, len(x.bools))
			for j, v := range x.bools {
				if v {
					raw[j] = 1
				}
			}
			b.Initializer(graphs.RawTensor(name, graphs.Bool, x.shape, raw))
		default:
			v := make([]float64, graphs.NumElements(x.shape))
			for j := range v {
				switch {
				case x.value != nil:
					v[j] = x.value[j]
				case x.positive:
					v[j] = 0.5 + rng.Float64()
				default:
					v[j] = 2*rng.Float64() - 1
				}
			}
			if x.frozen {
				b.Initializer(floatTensor(name, fs.elem, x.shape, v))
				break
			}
			if gc.dynamic {
				b.Input(name, fs.elem, symbols(name, len(x.shape))...)
			} else {
				b.Input(name, fs.elem, dims(x.shape)...)
			}
			fs.values[name] = v
			fs.shapes[name] = x.shape
			wrt = append(wrt, name)
			fs.order = append(fs.order, name)
		}
		names[i] = name
	}
	outs := gc.build(b, names)
	for j, o := range outs {
		b.Output(o, fmt.Sprintf("y%d", j), fs.elem)
	}
	m := b.Model("gradcheck")
	if gc.opset != 0 {
		m.OpsetImport[0].Version = gc.opset
	}
	return m, wrt, fs
}

func floatTensor(name string, elem int32, shape []int64, v []float64) *onnxpb.TensorProto {
	if elem == graphs.Double {
		return graphs.DoubleTensor(name, shape, v)
	}
	f := make([]float32, len(v))
	for i, x := range v {
		f[i] = float32(x)
	}
	return graphs.FloatTensor(name, shape, f)
}

func symbols(name string, rank int) []graphs.Dim {
	d := make([]graphs.Dim, rank)
	for i := range d {
		d[i] = fmt.Sprintf("%s_%d", name, i)
	}
	return d
}

func dims(shape []int64) []graphs.Dim {
	d := make([]graphs.Dim, len(shape))
	for i, s := range shape {
		d[i] = s
	}
	return d
}

// runCase checks every element of every differentiated input of a case against central
// finite differences of the loss Σⱼ Σ yⱼ ⊙ Rⱼ (Rⱼ random, so that every output element
// weighs differently).
func runCase(t *testing.T, gc gradCase) fdResult {
	t.Helper()
	testutil.InitORT(t)
	if gc.elem == 0 {
		gc.elem = graphs.Double
	}
	h, tol := gc.step, gc.tol
	if h == 0 {
		h = map[bool]float64{true: 1e-5, false: 1e-2}[gc.elem == graphs.Double]
	}
	if tol == 0 {
		tol = map[bool]float64{true: 1e-7, false: 2e-3}[gc.elem == graphs.Double]
	}
	rng := rand.New(rand.NewPCG(7, uint64(len(gc.name))))
	m, wrt, fs := caseModel(t, gc, rng)
	defer func() {
		for _, v := range fs.fixed {
			v.Destroy()
		}
	}()

	// Forward once to learn the output shapes (as Shape ++ [1], never rank 0), then weigh
	// the outputs into a loss.
	outNames := make([]string, len(m.GetGraph().GetOutput()))
	probe := cloneModel(t, m)
	pb := graphs.WrapGraph(probe.GetGraph())
	probe.GetGraph().Output = nil
	for i, o := range m.GetGraph().GetOutput() {
		outNames[i] = o.GetName()
		s := pb.Node("Concat", []string{pb.Op("Shape", o.GetName()), pb.ConstInt64(1)},
			graphs.AttrInt("axis", 0))
		pb.Output(s, fmt.Sprintf("shape%d", i), graphs.Int64)
	}
	shapes := make([][]int64, len(outNames))
	run(t, probe, fs, len(outNames), nil, func(outs []onnx.Value) {
		for i, o := range outs {
			d := o.(*onnx.Tensor[int64]).GetData()
			shapes[i] = append([]int64(nil), d[:len(d)-1]...)
		}
	})
	b := graphs.WrapGraph(m.GetGraph())
	var terms []string
	for i, o := range outNames {
		r := make([]float64, graphs.NumElements(shapes[i]))
		for j := range r {
			r[j] = 2*rng.Float64() - 1
		}
		w := b.Initializer(floatTensor(b.Unique("weight"), fs.elem, shapes[i], r))
		terms = append(terms, b.Node("ReduceSum", []string{b.Op("Mul", o, w)},
			graphs.AttrInt("keepdims", 0)))
	}
	total := terms[0]
	if len(terms) > 1 {
		total = b.Op("Sum", terms...)
	}
	loss := b.Op("Reshape", total, b.ConstInt64(1))
	m.GetGraph().Output = nil
	b.Output(loss, "loss", fs.elem, 1)

	forward := cloneModel(t, m)
	cfg := Config{Loss: "loss", Wrt: wrt}
	if gc.recompute {
		forwardNodes := map[*onnxpb.NodeProto]bool{}
		for _, n := range m.GetGraph().GetNode() {
			forwardNodes[n] = true
		}
		cfg.Recompute = func(n *onnxpb.NodeProto) bool { return forwardNodes[n] }
	}
	res, err := Differentiate(m, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if gc.recompute && res.Recomputed == 0 {
		t.Errorf("no node was recomputed")
	}
	for i, p := range wrt {
		if got := m.GetGraph().GetOutput()[i+1].GetName(); got != res.Grads[p] {
			t.Fatalf("output %d is %q, want the gradient of %s (%q)", i+1, got, p, res.Grads[p])
		}
	}
	pre := [][]int64{{1}}
	for _, p := range wrt {
		pre = append(pre, fs.shapes[p])
	}
	analytic := map[string][]float64{}
	run(t, m, fs, len(pre), pre, func(outs []onnx.Value) {
		for i, p := range wrt {
			analytic[p] = floats(outs[i+1])
		}
	})

	// Central differences on the forward-only graph.
	sess := session(t, forward, fs.order, 1)
	defer sess.Close()
	lossAt := func() float64 {
		var l float64
		runSession(t, sess, fs, [][]int64{{1}}, func(outs []onnx.Value) { l = floats(outs[0])[0] })
		return l
	}
	var r fdResult
	for _, p := range wrt {
		v := fs.values[p]
		for j := range v {
			orig := v[j]
			v[j] = orig + h
			lp := lossAt()
			v[j] = orig - h
			lm := lossAt()
			v[j] = orig
			num := (lp - lm) / (2 * h)
			abs := math.Abs(analytic[p][j] - num)
			r.maxAbs = max(r.maxAbs, abs)
			r.maxScaled = max(r.maxScaled, abs/(1+math.Abs(num)))
			r.checked++
			if abs/(1+math.Abs(num)) > tol {
				t.Errorf("%s: d loss/d %s[%d]: analytic %.10g, numeric %.10g", gc.name, p, j,
					analytic[p][j], num)
			}
		}
	}
	return r
}

func floats(v onnx.Value) []float64 {
	switch t := v.(type) {
	case *onnx.Tensor[float64]:
		return append([]float64(nil), t.GetData()...)
	case *onnx.Tensor[float32]:
		out := make([]float64, len(t.GetData()))
		for i, x := range t.GetData() {
			out[i] = float64(x)
		}
		return out
	}
	return nil
}

func cloneModel(t *testing.T, m *onnxpb.ModelProto) *onnxpb.ModelProto {
	t.Helper()
	data, err := graphs.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	c, err := graphs.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// session opens a model whose first outputs are read (all of them when n < 0).
func session(t *testing.T, m *onnxpb.ModelProto, inputs []string, n int) *ort.Session {
	t.Helper()
	data, err := graphs.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	var outputs []string
	for i, o := range m.GetGraph().GetOutput() {
		if n < 0 || i < n {
			outputs = append(outputs, o.GetName())
		}
	}
	s, err := ort.NewSession("", data, inputs, outputs, ort.Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// run opens a session on the first n outputs, runs it once and hands the outputs to use;
// pre gives the shapes of float outputs to allocate up front (rank-0 outputs need it).
func run(t *testing.T, m *onnxpb.ModelProto, fs *feedSet, n int, pre [][]int64,
	use func([]onnx.Value)) {
	t.Helper()
	s := session(t, m, fs.order, n)
	defer s.Close()
	runSession(t, s, fs, pre, use)
}

func newFloatTensor(elem int32, shape []int64, v []float64) (onnx.Value, error) {
	if elem == graphs.Double {
		return onnx.NewTensor(onnx.NewShape(shape...), v)
	}
	f := make([]float32, len(v))
	for i, x := range v {
		f[i] = float32(x)
	}
	return onnx.NewTensor(onnx.NewShape(shape...), f)
}

func runSession(t *testing.T, s *ort.Session, fs *feedSet, pre [][]int64, use func([]onnx.Value)) {
	t.Helper()
	ins := make([]onnx.Value, len(fs.order))
	var made []onnx.Value
	for i, name := range fs.order {
		if v, ok := fs.fixed[name]; ok {
			ins[i] = v
			continue
		}
		v, err := newFloatTensor(fs.elem, fs.shapes[name], fs.values[name])
		if err != nil {
			t.Fatal(err)
		}
		ins[i] = v
		made = append(made, v)
	}
	defer ort.DestroyAll(made...)
	outs := make([]onnx.Value, len(s.Outputs))
	for i, shape := range pre {
		v, err := newFloatTensor(fs.elem, shape, make([]float64, graphs.NumElements(shape)))
		if err != nil {
			t.Fatal(err)
		}
		outs[i] = v
	}
	if err := s.Run(ins, outs); err != nil {
		t.Fatal(err)
	}
	defer ort.DestroyAll(outs...)
	use(outs)
}
