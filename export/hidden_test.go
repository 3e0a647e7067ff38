package export

import (
	"fmt"
	"math"
	"path/filepath"
	"testing"

	onnx "github.com/yalue/onnxruntime_go"

	"github.com/panacea-go/toolkit/export/safetensors"
	"github.com/panacea-go/toolkit/graphs"
	"github.com/panacea-go/toolkit/internal/testutil"
	"github.com/panacea-go/toolkit/ort"
)

// TestHiddenStatesOutput exports fixtures of both families (tied and untied heads, with
// and without past) with Options.Hidden and checks that hidden_states is the value the head
// multiplies: logits = hidden_states · headᵀ at every position, where head is lm_head.weight
// or, tied, the token embedding (vocab, hidden) read from the checkpoint. It also checks the
// manifest and the graph agree on the outputs, and that logits match the reference.
func TestHiddenStatesOutput(t *testing.T) {
	testutil.InitORT(t)
	cases := []struct {
		fixture, head string
		past          bool
	}{
		{"gpt2", "transformer.wte.weight", false},
		{"llama_gqa_tied", "model.embed_tokens.weight", true},
		{"mistral_sliding", "lm_head.weight", false},
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("%s/past=%v", c.fixture, c.past), func(t *testing.T) {
			src := fixtureDir(t, c.fixture)
			dst := t.TempDir()
			m, err := Export(src, dst, Options{Hidden: true, WithPast: c.past})
			if err != nil {
				t.Fatal(err)
			}
			back, err := ReadManifest(dst)
			if err != nil {
				t.Fatal(err)
			}
			outs := back.OutputNames()
			if !back.Hidden || outs[len(outs)-1] != HiddenStates {
				t.Fatalf("manifest hidden=%v outputs %v: want hidden_states last", back.Hidden, outs)
			}
			model, err := graphs.Load(filepath.Join(dst, ModelFile))
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, o := range model.GetGraph().GetOutput() {
				got = append(got, o.GetName())
			}
			if fmt.Sprint(got) != fmt.Sprint(outs) {
				t.Fatalf("graph outputs %v, manifest %v", got, outs)
			}

			ref := readReference(t, src)
			logits, hidden := runHidden(t, dst, m, ref)
			st, err := safetensors.OpenDir(src)
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			head, err := st.Float32(c.head) // (vocab, hidden)
			if err != nil {
				t.Fatal(err)
			}
			V, H := m.VocabSize, m.HiddenSize
			worst, refWorst := 0.0, 0.0
			for p := range len(hidden) / H {
				for v := range V {
					var dot float64
					for h := range H {
						dot += float64(hidden[p*H+h]) * float64(head[v*H+h])
					}
					worst = math.Max(worst, math.Abs(dot-float64(logits[p*V+v])))
				}
			}
			for i, want := range ref.Logits {
				b, s := i/(len(ref.Logits)/len(ref.InputIDs)), (i/V)%len(ref.InputIDs[0])
				if ref.CompareMask[b][s] == 1 {
					refWorst = math.Max(refWorst, math.Abs(want-float64(logits[i])))
				}
			}
			t.Logf("max |hidden·headᵀ − logits| = %.2e, max |logits − reference| = %.2e",
				worst, refWorst)
			if worst > 1e-4 || refWorst > 1e-3 {
				t.Fatalf("hidden·headᵀ differs from logits by %g, logits from the reference by %g",
					worst, refWorst)
			}
		})
	}
}

// runHidden runs an export with hidden_states on the reference inputs (empty past when the
// model has one) and returns logits (batch, seq, vocab) and hidden_states (batch, seq,
// hidden), row-major.
func runHidden(t *testing.T, dir string, m *Manifest, ref *reference) ([]float32, []float32) {
	t.Helper()
	s, err := ort.NewSession(filepath.Join(dir, ModelFile), nil, m.InputNames(),
		[]string{Logits, HiddenStates}, ort.Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	B, T := int64(len(ref.InputIDs)), int64(len(ref.InputIDs[0]))
	var ids, mask []int64
	for b := range ref.InputIDs {
		ids = append(ids, ref.InputIDs[b]...)
		mask = append(mask, ref.AttentionMask[b]...)
	}
	idsT, err1 := onnx.NewTensor(onnx.NewShape(B, T), ids)
	maskT, err2 := onnx.NewTensor(onnx.NewShape(B, T), mask)
	if err1 != nil || err2 != nil {
		t.Fatal(err1, err2)
	}
	in := []onnx.Value{idsT, maskT}
	defer func() { ort.DestroyAll(in...) }()
	for range len(m.InputNames()) - 2 { // an empty past per past input
		e, err := onnx.NewTensor(onnx.NewShape(B, int64(m.NumKVHeads), 0, int64(m.HeadDim)),
			[]float32{})
		if err != nil {
			t.Fatal(err)
		}
		in = append(in, e)
	}
	out := []onnx.Value{nil, nil}
	if err := s.Run(in, out); err != nil {
		t.Fatal(err)
	}
	defer ort.DestroyAll(out...)
	if shape := out[1].GetShape(); len(shape) != 3 || shape[2] != int64(m.HiddenSize) {
		t.Fatalf("hidden_states shape %v, want (%d, %d, %d)", shape, B, T, m.HiddenSize)
	}
	logits := append([]float32(nil), out[0].(*onnx.Tensor[float32]).GetData()...)
	hidden := append([]float32(nil), out[1].(*onnx.Tensor[float32]).GetData()...)
	return logits, hidden
}
