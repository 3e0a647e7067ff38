package export

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	onnx "github.com/yalue/onnxruntime_go"

	"github.com/panacea-go/toolkit/internal/testutil"
	"github.com/panacea-go/toolkit/ort"
)

// lm is an exported model opened in ONNX Runtime for the tests.
type lm struct {
	m *Manifest
	s *ort.Session
}

// exportAndOpen exports src with opts into a fresh folder and opens it.
func exportAndOpen(t *testing.T, src string, opts Options) *lm {
	t.Helper()
	testutil.InitORT(t)
	dst := t.TempDir()
	m, err := Export(src, dst, opts)
	if err != nil {
		t.Fatalf("export %s: %v", src, err)
	}
	s, err := ort.NewSession(filepath.Join(dst, ModelFile), nil, m.InputNames(),
		m.OutputNames(), ort.Options{Threads: 1})
	if err != nil {
		t.Fatalf("open %s: %v", dst, err)
	}
	t.Cleanup(func() { s.Close() })
	return &lm{m: m, s: s}
}

// kvCache is the present key/values of one step, fed back as the next step's past.
type kvCache []onnx.Value

func (c kvCache) destroy() { ort.DestroyAll(c...) }

// run feeds ids (batch, seq) and mask (batch, past+seq). past may be nil for a model with
// a KV cache (an empty past is fed); the returned cache is nil for a model without one.
// Logits are (batch, seq, vocab), row-major.
func (l *lm) run(t *testing.T, ids, mask [][]int64, past kvCache) ([]float32, kvCache) {
	t.Helper()
	batch, seq, total := len(ids), len(ids[0]), len(mask[0])
	flat := func(rows [][]int64) []int64 {
		var out []int64
		for _, r := range rows {
			out = append(out, r...)
		}
		return out
	}
	idsT, err := onnx.NewTensor(onnx.NewShape(int64(batch), int64(seq)), flat(ids))
	if err != nil {
		t.Fatal(err)
	}
	maskT, err := onnx.NewTensor(onnx.NewShape(int64(batch), int64(total)), flat(mask))
	if err != nil {
		t.Fatal(err)
	}
	defer ort.DestroyAll(idsT, maskT)
	inputs := []onnx.Value{idsT, maskT}
	if l.m.WithPast {
		if past == nil {
			shape := onnx.NewShape(int64(batch), int64(l.m.NumKVHeads), 0, int64(l.m.HeadDim))
			for range 2 * l.m.NumLayers {
				e, err := onnx.NewTensor(shape, []float32{})
				if err != nil {
					t.Fatal(err)
				}
				past = append(past, e)
			}
			defer past.destroy()
		}
		inputs = append(inputs, past...)
	}
	vocab := int64(l.m.VocabSize)
	logits, err := onnx.NewEmptyTensor[float32](onnx.NewShape(int64(batch), int64(seq), vocab))
	if err != nil {
		t.Fatal(err)
	}
	defer logits.Destroy()
	outputs := make([]onnx.Value, 1+len(l.m.PresentOutputs()))
	if !l.m.WithPast {
		outputs = outputs[:1]
	}
	outputs[0] = logits
	if err := l.s.Run(inputs, outputs); err != nil {
		t.Fatal(err)
	}
	out := append([]float32(nil), logits.GetData()...)
	if !l.m.WithPast {
		return out, nil
	}
	return out, kvCache(outputs[1:])
}

// reference is a fixture's reference.json (see testdata/export/gen_reference.py).
type reference struct {
	InputIDs      [][]int64 `json:"input_ids"`
	AttentionMask [][]int64 `json:"attention_mask"`
	CompareMask   [][]int64 `json:"compare_mask"`
	LogitsShape   []int     `json:"logits_shape"`
	Logits        []float64 `json:"logits"`
	WeightsDType  string    `json:"weights_dtype"`
	// WeightDigests maps each checkpoint tensor to [Σ x, Σ x_i·(i mod 7 + 1)].
	WeightDigests json.RawMessage `json:"weight_digests"`
}

func readReference(t *testing.T, dir string) *reference {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "reference.json"))
	if err != nil {
		t.Fatal(err)
	}
	var r reference
	if err := json.Unmarshal(data, &r); err != nil {
		t.Fatalf("%s/reference.json: %v", dir, err)
	}
	return &r
}

// compareLogits checks got against want at every (b, i) with keep[b][i] == 1, with the
// tolerance |Δ| ≤ tol·max(1, |want|), and returns the largest absolute difference.
func compareLogits(t *testing.T, what string, got []float32, want []float64, keep [][]int64,
	vocab int, tol float64) float64 {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d logits, want %d", what, len(got), len(want))
	}
	worst, bad := 0.0, 0
	seq := len(keep[0])
	for b := range keep {
		for i := range seq {
			if keep[b][i] == 0 {
				continue
			}
			for v := range vocab {
				k := (b*seq+i)*vocab + v
				d := math.Abs(float64(got[k]) - want[k])
				worst = math.Max(worst, d)
				if !(d <= tol*math.Max(1, math.Abs(want[k]))) {
					if bad < 3 {
						t.Errorf("%s: logit[%d][%d][%d] = %g, want %g (|Δ| %.3g)", what, b, i, v,
							got[k], want[k], d)
					}
					bad++
				}
			}
		}
	}
	if bad > 0 {
		t.Errorf("%s: %d logits out of tolerance %g; max |Δ| %.3g", what, bad, tol, worst)
	}
	return worst
}

// argmaxLast returns the argmax and max of the last position's logits of row b.
func argmaxLast(logits []float32, b, seq, vocab int) (int, float32) {
	row := logits[(b*seq+seq-1)*vocab : (b*seq+seq)*vocab]
	best := 0
	for i, v := range row {
		if v > row[best] {
			best = i
		}
	}
	return best, row[best]
}

// TestMaskLengthMustMatchWithoutPast: an export without a KV cache refuses an attention
// mask whose length differs from input_ids' (length 1 would otherwise broadcast and drop
// the causal mask), naming why.
func TestMaskLengthMustMatchWithoutPast(t *testing.T) {
	l := exportAndOpen(t, testutil.SharedData(t, "stories260k-hf"), Options{})
	ids := []int64{1, 400, 300, 200}
	for _, maskLen := range []int{1, 3, 5} {
		idsT, err := onnx.NewTensor(onnx.NewShape(1, int64(len(ids))), ids)
		if err != nil {
			t.Fatal(err)
		}
		mask := make([]int64, maskLen)
		for i := range mask {
			mask[i] = 1
		}
		maskT, err := onnx.NewTensor(onnx.NewShape(1, int64(maskLen)), mask)
		if err != nil {
			t.Fatal(err)
		}
		logits, err := onnx.NewEmptyTensor[float32](onnx.NewShape(1, int64(len(ids)),
			int64(l.m.VocabSize)))
		if err != nil {
			t.Fatal(err)
		}
		err = l.s.Run([]onnx.Value{idsT, maskT}, []onnx.Value{logits})
		ort.DestroyAll(idsT, maskT, logits)
		if err == nil || !strings.Contains(err.Error(), "attention_mask_must_match_input_ids") {
			t.Errorf("mask of %d for %d ids: got %v", maskLen, len(ids), err)
		}
	}
}
