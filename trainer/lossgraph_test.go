package trainer

import (
	"math"
	"math/rand/v2"
	"testing"

	onnx "github.com/yalue/onnxruntime_go"

	"github.com/panacea-go/toolkit/graphs"
	"github.com/panacea-go/toolkit/internal/testutil"
	"github.com/panacea-go/toolkit/ort"
)

// logitsModel is a graph whose "logits" output is its input x: the loss nodes then see
// logits the test chooses.
func logitsModel() *graphs.Builder {
	b := graphs.NewBuilder("logits")
	x := b.Input("x", graphs.Float, "rows", "seq", "vocab")
	b.Output(x, "logits", graphs.Float, "rows", "seq", "vocab")
	return b
}

// lossInputs are random logits and batch tensors for 2 pairs (4 rows), seq 3, vocab 5, m 2.
type lossInputs struct {
	logits  []float32
	targets []int64
	mask    []float32
	ref     []float32
	dimW    []float32
	agg     []float32
	ideal   []float32
}

const lR, lT, lV, lM = 4, 3, 5, 2

func newLossInputs(r *rand.Rand) lossInputs {
	in := lossInputs{agg: []float32{0.3, 0.7}, ideal: []float32{0.1, -0.2}}
	for range lR * lT * lV {
		in.logits = append(in.logits, float32(r.NormFloat64()*2))
	}
	for i := range lR * lT {
		in.targets = append(in.targets, int64(r.IntN(lV)))
		in.mask = append(in.mask, float32(i%lT)) // position 0 masked out, 1 and 2 weighted
	}
	for range lR {
		in.ref = append(in.ref, float32(-r.Float64()*5))
	}
	// Pair 0 is dimension 0, pair 1 dimension 1.
	in.dimW = []float32{1, 0, 0, 1}
	return in
}

// goSeqLogp is the reference Σ_t mask·log softmax(logits)[target].
func (in lossInputs) goSeqLogp() []float64 {
	out := make([]float64, lR)
	for r := range lR {
		for t := range lT {
			row := in.logits[(r*lT+t)*lV : (r*lT+t+1)*lV]
			var z float64
			for _, v := range row {
				z += math.Exp(float64(v))
			}
			lp := float64(row[in.targets[r*lT+t]]) - math.Log(z)
			out[r] += lp * float64(in.mask[r*lT+t])
		}
	}
	return out
}

func runLoss(t *testing.T, spec LossSpec, in lossInputs) (loss float32, dims, units []float32) {
	t.Helper()
	b := logitsModel()
	m := b.Model("test")
	if err := AddLoss(m, spec); err != nil {
		t.Fatal(err)
	}
	data, err := graphs.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	inputs := []string{"x", InTargets, InLossMask, InDimWeight, InAggWeight}
	if spec.Objective == "dpo" {
		inputs = append(inputs, InRefLogp)
	}
	if spec.Tche {
		inputs = append(inputs, InIdeal)
	}
	s, err := ort.NewSession("", data, inputs, []string{OutLoss, OutDimLosses, OutUnitLoss},
		ort.Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	units64 := int64(lR)
	if spec.Objective == "dpo" {
		units64 = lR / 2
	}
	dimW := in.dimW
	if spec.Objective == "sft" { // rows 0,1 → dim 0; rows 2,3 → dim 1; weights 1/count
		dimW = []float32{0.5, 0, 0.5, 0, 0, 0.5, 0, 0.5}
	}
	x, _ := onnx.NewTensor(onnx.NewShape(lR, lT, lV), in.logits)
	tg, _ := onnx.NewTensor(onnx.NewShape(lR, lT), in.targets)
	mk, _ := onnx.NewTensor(onnx.NewShape(lR, lT), in.mask)
	dw, _ := onnx.NewTensor(onnx.NewShape(units64, lM), dimW)
	ag, _ := onnx.NewTensor(onnx.NewShape(lM), in.agg)
	vals := []onnx.Value{x, tg, mk, dw, ag}
	if spec.Objective == "dpo" {
		ref, _ := onnx.NewTensor(onnx.NewShape(lR), in.ref)
		vals = append(vals, ref)
	}
	if spec.Tche {
		z, _ := onnx.NewTensor(onnx.NewShape(lM), in.ideal)
		vals = append(vals, z)
	}
	defer ort.DestroyAll(vals...)
	lossT, _ := onnx.NewEmptyTensor[float32](onnx.NewShape(1))
	dimsT, _ := onnx.NewEmptyTensor[float32](onnx.NewShape(lM))
	unitsT, _ := onnx.NewEmptyTensor[float32](onnx.NewShape(units64))
	defer ort.DestroyAll(lossT, dimsT, unitsT)
	if err := s.Run(vals, []onnx.Value{lossT, dimsT, unitsT}); err != nil {
		t.Fatal(err)
	}
	return lossT.GetData()[0], dimsT.GetData(), unitsT.GetData()
}

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-4*math.Max(1, math.Abs(b)) }

func TestDPOLossGraph(t *testing.T) {
	testutil.InitORT(t)
	in := newLossInputs(rand.New(rand.NewPCG(1, 2)))
	seq := in.goSeqLogp()
	const beta, eps = 0.5, 0.1
	logSig := func(x float64) float64 { return -math.Log1p(math.Exp(-x)) }
	var want [2]float64
	for p := range 2 {
		h := beta * ((seq[p] - float64(in.ref[p])) - (seq[p+2] - float64(in.ref[p+2])))
		want[p] = -(1-eps)*logSig(h) - eps*logSig(-h)
	}
	for _, tche := range []bool{false, true} {
		loss, dims, units := runLoss(t, LossSpec{Objective: "dpo", Dims: lM, Beta: beta,
			Smoothing: eps, Tche: tche}, in)
		for p := range 2 {
			if !near(float64(units[p]), want[p]) || !near(float64(dims[p]), want[p]) {
				t.Fatalf("pair %d: unit %v dim %v, want %v", p, units[p], dims[p], want[p])
			}
		}
		agg := 0.3*want[0] + 0.7*want[1]
		if tche {
			agg = math.Max(0.3*(want[0]-0.1), 0.7*(want[1]+0.2))
		}
		if !near(float64(loss), agg) {
			t.Fatalf("tche=%v: loss %v, want %v", tche, loss, agg)
		}
	}
}

func TestSFTLossGraph(t *testing.T) {
	testutil.InitORT(t)
	in := newLossInputs(rand.New(rand.NewPCG(3, 4)))
	seq := in.goSeqLogp()
	loss, dims, _ := runLoss(t, LossSpec{Objective: "sft", Dims: lM}, in)
	want := []float64{-(seq[0] + seq[1]) / 2, -(seq[2] + seq[3]) / 2}
	for i := range want {
		if !near(float64(dims[i]), want[i]) {
			t.Fatalf("dim %d loss %v, want %v", i, dims[i], want[i])
		}
	}
	if !near(float64(loss), 0.3*want[0]+0.7*want[1]) {
		t.Fatalf("loss %v", loss)
	}
}
