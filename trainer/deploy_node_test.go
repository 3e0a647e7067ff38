package trainer

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	onnx "github.com/yalue/onnxruntime_go"

	"github.com/panacea-go/toolkit/datasets"
	"github.com/panacea-go/toolkit/datasets/tokenizer"
	"github.com/panacea-go/toolkit/export"
	"github.com/panacea-go/toolkit/internal/cache"
	"github.com/panacea-go/toolkit/internal/testutil"
	"github.com/panacea-go/toolkit/ort"
)

// deployTol is the parity tolerance between the two bindings: |Δ| ≤ tol·max(1, |go|).
const deployTol = 1e-4

// deployMinLambdaEffect is the least largest change of a logit between λ = (1, 0) and
// (0.3, 0.7) that the trained adapter must show: 100× deployTol, so that a binding that
// dropped or misread λ would fail the parity check.
const deployMinLambdaEffect = 100 * deployTol

// TestDeployNode trains a small real λ-input model (stories260k, Panacea DPO on the shared
// PKU-SafeRLHF rows), runs its model.onnx in Go and in onnxruntime-node (npm, in node), and
// checks that both give the same logits for the same tokens and λ (DESIGN.md §4, deployment).
func TestDeployNode(t *testing.T) {
	ortNode, node := nodeORT(t)
	testutil.InitORT(t)
	src := testutil.SharedData(t, "stories260k-hf")
	pku := testutil.SharedData(t, filepath.Join("pku-saferlhf", "alpaca7b-test-head190.jsonl"))
	start := time.Now()

	// 1. Export the base model and train it briefly.
	tmp := t.TempDir()
	base := filepath.Join(tmp, "s260k-onnx")
	man, err := export.Export(src, base, export.Options{})
	if err != nil {
		t.Fatalf("export %s: %v", src, err)
	}
	run := filepath.Join(tmp, "run")
	cfg := deployTrainConfig(base, run, pku)
	if err := Train(context.Background(), cfg, ort.Options{Threads: 1}, false, Hooks{}); err != nil {
		t.Fatalf("train: %v", err)
	}
	trained := time.Now()

	// 2. Two rows: a story opening with λ = (1, 0), and its first tokens, right-padded, with
	// λ = (0.3, 0.7). Causal attention makes the short row's logits at its real positions
	// depend on those tokens alone, so there the rows differ only through λ.
	tok, err := tokenizer.LoadDir(run)
	if err != nil {
		t.Fatal(err)
	}
	ids := tok.Encode("Once upon a time, there was a little girl named Lily.", true)
	seq, short := len(ids), len(ids)-4
	if short < 3 {
		t.Fatalf("prompt encodes to %d tokens, want at least 7", seq)
	}
	in := deployInputs{batch: 2, seq: seq, m: len(cfg.Data.Dimensions)}
	for _, n := range []int{seq, short} {
		for i := range seq {
			id, mask := int64(0), int64(0)
			if i < n {
				id, mask = int64(ids[i]), 1
			}
			in.ids = append(in.ids, id)
			in.mask = append(in.mask, mask)
		}
	}
	in.lambda = []float32{1, 0, 0.3, 0.7}

	// 3. Go: the λ batch, and a control batch with λ = (1, 0) on both rows, which measures
	// how much the rows differ from float noise alone.
	model := filepath.Join(run, ModelFile)
	sess, err := ort.NewSession(model, nil, []string{"input_ids", "attention_mask", LambdaInput},
		[]string{"logits"}, ort.Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	vocab := man.VocabSize
	goLogits := in.runGo(t, sess, vocab)
	control := in
	control.lambda = []float32{1, 0, 1, 0}
	controlLogits := control.runGo(t, sess, vocab)

	// 4. Node: the same model file, tokens and λ through onnxruntime-node.
	res := in.runNode(t, node, ortNode, model)
	if res.Version != ort.NPMVersion {
		t.Errorf("onnxruntime-node reports version %q, want %s (the Go side's library)",
			res.Version, ort.NPMVersion)
	}
	if !slices.Contains(res.Inputs, LambdaInput) {
		t.Errorf("node session inputs %v lack %q", res.Inputs, LambdaInput)
	}
	if want := []int{2, seq, vocab}; !slices.Equal(res.Dims, want) {
		t.Fatalf("node logits dims %v, want %v", res.Dims, want)
	}
	if len(res.Logits) != len(goLogits) {
		t.Fatalf("node gave %d logits, Go %d", len(res.Logits), len(goLogits))
	}

	// 5. Parity at every position (padding included: both run the same graph).
	var maxAbs, maxRel float64
	worst := -1
	for i, g := range goLogits {
		n := res.Logits[i]
		if !isFinite(float64(g)) || !isFinite(n) {
			t.Fatalf("logit %d not finite: Go %v, node %v", i, g, n)
		}
		d := math.Abs(n - float64(g))
		if r := d / math.Max(1, math.Abs(float64(g))); r > maxRel {
			maxRel, worst = r, i
		}
		maxAbs = math.Max(maxAbs, d)
	}
	t.Logf("Go vs onnxruntime-node %s: max abs diff %.3g, max rel diff %.3g over %d logits "+
		"(batch 2 × seq %d × vocab %d)", res.Version, maxAbs, maxRel, len(goLogits), seq, vocab)
	if maxRel > deployTol {
		t.Errorf("logit %d: Go %v, node %v: relative diff %.3g > %g", worst, goLogits[worst],
			res.Logits[worst], maxRel, deployTol)
	}

	// 6. λ must matter: at the short row's real positions the two λ rows differ well beyond
	// the control's float noise, in Go and in node alike.
	rowDiff := func(l func(i int) float64) float64 {
		var m float64
		for p := range short {
			for v := range vocab {
				a, b := l(p*vocab+v), l((seq+p)*vocab+v)
				m = math.Max(m, math.Abs(a-b))
			}
		}
		return m
	}
	goEffect := rowDiff(func(i int) float64 { return float64(goLogits[i]) })
	nodeEffect := rowDiff(func(i int) float64 { return res.Logits[i] })
	noise := rowDiff(func(i int) float64 { return float64(controlLogits[i]) })
	t.Logf("λ (1,0) vs (0.3,0.7): max logit change %.3g in Go, %.3g in node; "+
		"same-λ control %.3g", goEffect, nodeEffect, noise)
	if goEffect < deployMinLambdaEffect || goEffect < 100*noise {
		t.Errorf("λ barely moves the logits (max change %.3g, control noise %.3g, want ≥ %g "+
			"and ≥ 100× noise): the adapter did not train enough to test λ parity",
			goEffect, noise, deployMinLambdaEffect)
	}
	if math.Abs(nodeEffect-goEffect) > deployTol*math.Max(1, goEffect) {
		t.Errorf("λ effect in node %.6g differs from Go's %.6g", nodeEffect, goEffect)
	}
	t.Logf("time: export+train %s, compare %s", trained.Sub(start).Round(time.Millisecond),
		time.Since(trained).Round(time.Millisecond))
}

// deployTrainConfig is a short Panacea DPO run on stories260k: two dimensions (helpful from
// better_response_id, harmless from safer_response_id) read from one PKU-SafeRLHF file, as
// in examples/panacea-dpo.yaml but with short sequences and two steps. The λ scale s starts
// at zero, so λ moves the logits only as far as training has moved s: with the default
// learning rate (5e-4) two steps give a largest change of about 0.006, below
// deployMinLambdaEffect; 5e-3 gives about 0.06.
func deployTrainConfig(model, out, pku string) Config {
	cfg := Defaults()
	cfg.Model, cfg.Out = model, out
	cfg.Steps = 2
	cfg.LR = 5e-3
	cfg.EvalGrid = 0
	cfg.Data = datasets.DataConfig{
		Dimensions: []datasets.DimensionConfig{
			{Name: "helpful", Source: pku, Label: "better_response_id"},
			{Name: "harmless", Source: pku, Label: "safer_response_id"},
		},
		Template:     datasets.TemplateConfig{Style: "hh"},
		MaxPromptLen: 32,
		MaxLen:       64,
		BatchSize:    2,
		Epochs:       1,
		EvalFraction: 0.2,
		Seed:         1,
		BaseDir:      filepath.Dir(pku),
	}
	return cfg
}

// deployInputs are the model inputs of one batch, row-major.
type deployInputs struct {
	batch, seq, m int
	ids, mask     []int64   // (batch, seq)
	lambda        []float32 // (batch, m)
}

// runGo runs the batch in sess and returns its logits (batch, seq, vocab).
func (in deployInputs) runGo(t *testing.T, sess *ort.Session, vocab int) []float32 {
	t.Helper()
	b, s := int64(in.batch), int64(in.seq)
	idsT, err := onnx.NewTensor(onnx.NewShape(b, s), in.ids)
	if err != nil {
		t.Fatal(err)
	}
	maskT, err := onnx.NewTensor(onnx.NewShape(b, s), in.mask)
	if err != nil {
		t.Fatal(err)
	}
	lamT, err := onnx.NewTensor(onnx.NewShape(b, int64(in.m)), in.lambda)
	if err != nil {
		t.Fatal(err)
	}
	logits, err := onnx.NewEmptyTensor[float32](onnx.NewShape(b, s, int64(vocab)))
	if err != nil {
		t.Fatal(err)
	}
	defer ort.DestroyAll(idsT, maskT, lamT, logits)
	if err := sess.Run([]onnx.Value{idsT, maskT, lamT}, []onnx.Value{logits}); err != nil {
		t.Fatal(err)
	}
	return slices.Clone(logits.GetData())
}

// nodeResult is what testdata/node_logits.js prints.
type nodeResult struct {
	Version string    `json:"version"`
	Inputs  []string  `json:"inputs"`
	Outputs []string  `json:"outputs"`
	Dims    []int     `json:"dims"`
	Logits  []float64 `json:"logits"`
}

// runNode runs the batch through testdata/node_logits.js with onnxruntime-node from ortNode.
func (in deployInputs) runNode(t *testing.T, node, ortNode, model string) nodeResult {
	t.Helper()
	req, err := json.Marshal(map[string]any{
		"model": model, "batch": in.batch, "seq": in.seq, "m": in.m,
		"input_ids": in.ids, "attention_mask": in.mask, "lambda": in.lambda,
	})
	if err != nil {
		t.Fatal(err)
	}
	reqPath := filepath.Join(t.TempDir(), "inputs.json")
	if err := os.WriteFile(reqPath, req, 0o644); err != nil {
		t.Fatal(err)
	}
	script, err := filepath.Abs(filepath.Join("testdata", "node_logits.js"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, script, ortNode, reqPath)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("node %s: %v\n%s", script, err, stderr.String())
	}
	var res nodeResult
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
		t.Fatalf("node %s: output is not JSON: %v\n%s", script, err, stderr.String())
	}
	return res
}

// nodeORT returns the folder scripts/fetch-ort-node.sh fills and the node executable. When
// either is missing the test skips, or fails on CI (CI=true), which must provide both.
func nodeORT(t *testing.T) (dir, node string) {
	t.Helper()
	missing := t.Skipf
	if os.Getenv("CI") != "" {
		missing = t.Fatalf
	}
	node, err := exec.LookPath("node")
	if err != nil {
		missing("node not found (apt-get install nodejs): %v", err)
	}
	dir = filepath.Join(cache.Dir(), "npm-ort-node")
	native := filepath.Join(dir, "node_modules", "onnxruntime-node", "bin", "napi-v6", "linux", "x64")
	for _, f := range []string{"onnxruntime_binding.node", "libonnxruntime.so.1"} {
		if _, err := os.Stat(filepath.Join(native, f)); err != nil {
			missing("onnxruntime-node not found in %s: run scripts/fetch-ort-node.sh (%v)", dir, err)
		}
	}
	return dir, node
}

func isFinite(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }
