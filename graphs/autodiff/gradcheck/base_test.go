package gradcheck

import (
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"testing"

	onnx "github.com/yalue/onnxruntime_go"
	"google.golang.org/protobuf/proto"

	"github.com/panacea-go/toolkit/export"
	"github.com/panacea-go/toolkit/graphs"
	"github.com/panacea-go/toolkit/graphs/lora"
	"github.com/panacea-go/toolkit/graphs/onnxpb"
	"github.com/panacea-go/toolkit/internal/testutil"
	"github.com/panacea-go/toolkit/ort"
)

// logitsOf runs a model (float32) on fixed token ids and returns its logits.
func logitsOf(t *testing.T, m *onnxpb.ModelProto, dir string, lambda bool) []float32 {
	t.Helper()
	data, err := graphs.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	names := []string{"input_ids", "attention_mask"}
	if lambda {
		names = append(names, lora.DefaultLambda)
	}
	s, err := ort.NewSession("", data, names, []string{"logits"},
		ort.Options{Threads: 1, ExternalDataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	rng := rand.New(rand.NewPCG(5, 6))
	ids := make([]int64, 2*6)
	for i := range ids {
		ids[i] = rng.Int64N(30)
	}
	mask := []int64{1, 1, 1, 1, 1, 1, 0, 0, 1, 1, 1, 1}
	var ins []onnx.Value
	for _, v := range [][]int64{ids, mask} {
		x, err := onnx.NewTensor(onnx.NewShape(2, 6), v)
		if err != nil {
			t.Fatal(err)
		}
		ins = append(ins, x)
	}
	if lambda {
		x, err := onnx.NewTensor(onnx.NewShape(2, 2), []float32{0.3, 0.7, 1, 0})
		if err != nil {
			t.Fatal(err)
		}
		ins = append(ins, x)
	}
	defer ort.DestroyAll(ins...)
	outs := []onnx.Value{nil}
	if err := s.Run(ins, outs); err != nil {
		t.Fatal(err)
	}
	defer ort.DestroyAll(outs...)
	return slices.Clone(outs[0].(*onnx.Tensor[float32]).GetData())
}

// TestAdapterStartsAtBase checks that a freshly inserted adapter (σ = s = 0, stored as
// initializers for deployment) leaves the logits of whole models unchanged.
func TestAdapterStartsAtBase(t *testing.T) {
	testutil.InitORT(t)
	root := testutil.RepoRoot(t)
	for _, name := range []string{"llama_gqa_tied", "gpt2", "torch_lm"} {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join("testdata", "torch_lm")
			if name != "torch_lm" {
				dir = exportCase(t, filepath.Join(root, "testdata/export", name), export.Options{})
			}
			m, err := graphs.Load(filepath.Join(dir, "model.onnx"))
			if err != nil {
				t.Fatal(err)
			}
			base := proto.Clone(m).(*onnxpb.ModelProto)
			targets, _ := lora.DefaultTargets("")
			rep, err := lora.Apply(m, lora.Config{Targets: targets, Rank: 8, Dims: 2, Alpha: 512})
			if err != nil {
				t.Fatal(err)
			}
			if rep.Params == 0 || len(rep.Layers) == 0 {
				t.Fatalf("nothing adapted: %+v", rep)
			}
			want := logitsOf(t, base, dir, false)
			got := logitsOf(t, m, dir, true)
			worst := 0.0
			for i := range want {
				worst = math.Max(worst, math.Abs(float64(got[i]-want[i])))
			}
			t.Logf("%d layers, %d adapter parameters, max |Δlogit| = %g", len(rep.Layers),
				rep.Params, worst)
			if worst > 1e-5 {
				t.Errorf("adapted logits differ from the base model's by up to %g", worst)
			}
		})
	}
}
