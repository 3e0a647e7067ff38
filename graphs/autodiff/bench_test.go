package autodiff_test

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	onnx "github.com/yalue/onnxruntime_go"

	"github.com/panacea-go/toolkit/export"
	"github.com/panacea-go/toolkit/graphs"
	"github.com/panacea-go/toolkit/graphs/autodiff"
	"github.com/panacea-go/toolkit/graphs/lora"
	"github.com/panacea-go/toolkit/graphs/onnxpb"
	"github.com/panacea-go/toolkit/internal/randmodel"
	"github.com/panacea-go/toolkit/ort"
)

// Environment variables that turn the test binary into a benchmark child process, so that
// each measured graph gets a process (and a peak RSS) of its own.
const (
	childModeEnv = "AUTODIFF_BENCH_CHILD" // "forward", "train" or "time"
	childDirEnv  = "AUTODIFF_BENCH_DIR"   // the export folder
	childRecEnv  = "AUTODIFF_BENCH_RECOMPUTE"
	// layersEnv shortens the model for quick experiments (default 30 layers).
	layersEnv = "AUTODIFF_BENCH_LAYERS"
	// modesEnv lists the children to run, comma-separated (default
	// forward,train,forward,train,train+recompute; "time" alternates both graphs in one
	// process).
	modesEnv = "AUTODIFF_BENCH_MODES"
	// profileEnv, when set, is the prefix of ONNX Runtime profiles written by the children
	// (summarise one with bench/ort_profile_summary.py).
	profileEnv = "AUTODIFF_BENCH_PROFILE"
)

const (
	benchBatch   = 4
	benchSeq     = 256
	benchThreads = 2
	benchRuns    = 7
)

func TestMain(m *testing.M) {
	if mode := os.Getenv(childModeEnv); mode != "" {
		if err := benchChild(mode, os.Getenv(childDirEnv), os.Getenv(childRecEnv) != ""); err != nil {
			fmt.Fprintln(os.Stderr, "bench child:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// childResult is what a child process prints (JSON on stdout).
type childResult struct {
	RunsMS   map[string][]float64 `json:"runs_ms"`
	CPUMS    map[string][]float64 `json:"cpu_ms"` // user + system CPU time of each run
	MedianMS map[string]float64   `json:"median_ms"`
	MinMS    map[string]float64   `json:"min_ms"`
	MaxRSSMB float64              `json:"max_rss_mb"`
	Nodes    int                  `json:"nodes"`
}

func benchLayers() int {
	if n, err := strconv.Atoi(os.Getenv(layersEnv)); err == nil && n > 0 {
		return n
	}
	return 30
}

// BenchmarkLlama135M measures, on random weights with the shapes of a ~135M-parameter
// Llama-family model with SVD-LoRA on all seven projections (k = 8, m = 2), batch 4 × 256
// tokens and 2 threads, the time of forward+backward (gradients of the adapter) over the time
// of the forward pass alone, and the peak RSS of each graph in a process of its own:
//
//	go test ./graphs/autodiff -run '^$' -bench Llama135M -benchtime 1x
//
// The forward and training children run twice each, alternately (forward, train, forward,
// train), so that a change of load from other processes hits both alike; each child runs its
// graph benchRuns times after one warm-up run. Wall and CPU time (user + system, less
// sensitive to competing processes) are reported; the ratio is of the medians.
func BenchmarkLlama135M(b *testing.B) {
	dir := b.TempDir()
	hf := filepath.Join(dir, "hf")
	if err := randmodel.WriteLlama(hf, benchLayers(), 1); err != nil {
		b.Fatal(err)
	}
	exp := filepath.Join(dir, "export")
	if _, err := export.Export(hf, exp, export.Options{}); err != nil {
		b.Fatal(err)
	}
	os.RemoveAll(hf)
	wall, cpu := map[string][]float64{}, map[string][]float64{}
	rss := map[string]float64{}
	modes := []string{"forward", "train", "forward", "train", "train+recompute"}
	if v := os.Getenv(modesEnv); v != "" {
		modes = strings.Split(v, ",")
	}
	for _, mode := range modes {
		cmd := exec.Command(os.Args[0], "-test.run=^$", "-test.bench=^$")
		cmd.Env = append(os.Environ(), childModeEnv+"="+mode, childDirEnv+"="+exp)
		if mode == "train+recompute" {
			cmd.Env = append(cmd.Env, childModeEnv+"=train", childRecEnv+"=1")
		}
		cmd.Stderr = os.Stderr
		out, err := cmd.Output()
		if err != nil {
			b.Fatalf("%s child: %v", mode, err)
		}
		var r childResult
		if err := json.Unmarshal(out, &r); err != nil {
			b.Fatalf("%s child printed %q: %v", mode, out, err)
		}
		for k := range r.RunsMS {
			key := k // "forward" or "train"; a "time" child reports both
			if mode == "train+recompute" {
				key = mode
			}
			wall[key] = append(wall[key], r.RunsMS[k]...)
			cpu[key] = append(cpu[key], r.CPUMS[k]...)
			rss[key] = max(rss[key], r.MaxRSSMB)
		}
		b.Logf("%-16s wall %v ms, CPU %v ms, peak RSS %.0f MB, %d nodes", mode, r.RunsMS,
			r.CPUMS, r.MaxRSSMB, r.Nodes)
	}
	median := func(v []float64) float64 {
		if len(v) == 0 {
			return 0
		}
		s := slices.Sorted(slices.Values(v))
		return s[len(s)/2]
	}
	fw, tw := median(wall["forward"]), median(wall["train"])
	fc, tc := median(cpu["forward"]), median(cpu["train"])
	b.Logf("forward %.0f ms, forward+backward %.0f ms (medians of wall time): ratio %.2f "+
		"(goal ≤ 2.3); by CPU time %.2f; by minima %.2f", fw, tw, tw/fw, tc/fc,
		slices.Min(wall["train"])/slices.Min(wall["forward"]))
	b.Logf("peak RSS: forward %.0f MB, forward+backward %.0f MB, with recomputed layers %.0f MB",
		rss["forward"], rss["train"], rss["train+recompute"])
	b.ReportMetric(tw/fw, "train/fwd")
	b.ReportMetric(tc/fc, "train/fwd-cpu")
	b.ReportMetric(fw, "fwd-ms")
	b.ReportMetric(tw, "train-ms")
	b.ReportMetric(rss["forward"], "fwd-rss-MB")
	b.ReportMetric(rss["train"], "train-rss-MB")
	b.ReportMetric(rss["train+recompute"], "recompute-rss-MB")
}

// benchGraph is one measured session with its feeds.
type benchGraph struct {
	s       *ort.Session
	feeds   []onnx.Value
	outputs int
	nodes   int
}

// run runs the graph once and returns its wall time and the CPU time (user + system) the
// process spent meanwhile, in milliseconds. The CPU time is less sensitive to other
// processes competing for the cores.
func (g *benchGraph) run() (float64, float64, error) {
	outs := make([]onnx.Value, g.outputs)
	var err error
	if outs[0], err = onnx.NewEmptyTensor[float32](onnx.NewShape(1)); err != nil {
		return 0, 0, err
	}
	defer ort.DestroyAll(outs...)
	var r0, r1 syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &r0)
	start := time.Now()
	err = g.s.Run(g.feeds, outs)
	wall := float64(time.Since(start).Microseconds()) / 1000
	syscall.Getrusage(syscall.RUSAGE_SELF, &r1)
	cpu := func(r syscall.Rusage) float64 {
		return float64(r.Utime.Nano()+r.Stime.Nano()) / 1e6
	}
	return wall, cpu(r1) - cpu(r0), err
}

// buildBench builds the adapted graph of the export in dir, with the backward pass when
// train is set, and opens a session on it.
func buildBench(dir string, train, recompute bool) (*benchGraph, error) {
	m, err := graphs.Load(filepath.Join(dir, export.ModelFile))
	if err != nil {
		return nil, err
	}
	targets, _ := lora.DefaultTargets("llama")
	rep, err := lora.Apply(m, lora.Config{Targets: targets, Rank: 8, Dims: 2, Alpha: 512,
		Seed: 1, AsInputs: true})
	if err != nil {
		return nil, err
	}
	loss := addTokenLoss(m, export.Logits)
	outputs := []string{loss}
	m.GetGraph().Output = nil // the logits are not fetched: let ONNX Runtime drop them
	if train {
		cfg := autodiff.Config{Loss: loss, Wrt: rep.ParamNames()}
		if recompute {
			cfg.Recompute = recomputeLayers
		}
		res, err := autodiff.Differentiate(m, cfg)
		if err != nil {
			return nil, err
		}
		for _, p := range rep.ParamNames() {
			outputs = append(outputs, res.Grads[p])
		}
	} else {
		m.GetGraph().Output = []*onnxpb.ValueInfoProto{graphs.ValueInfo(loss, graphs.Float, 1)}
	}
	data, err := graphs.Marshal(m)
	if err != nil {
		return nil, err
	}
	feeds, names, err := benchFeeds(m, rep)
	if err != nil {
		return nil, err
	}
	// The training graph runs as the trainer runs it: without ONNX Runtime's memory-pattern
	// planning (trainer: the DPO/SFT step and the PPO loss sessions), which keeps peak RSS lower.
	o := ort.Options{Threads: benchThreads, ExternalDataDir: dir, NoMemPattern: train}
	if prefix := os.Getenv(profileEnv); prefix != "" {
		o.ProfilePrefix = fmt.Sprintf("%s-train=%v", prefix, train)
	}
	s, err := ort.NewSession("", data, names, outputs, o)
	if err != nil {
		return nil, err
	}
	return &benchGraph{s: s, feeds: feeds, outputs: len(outputs), nodes: len(m.GetGraph().GetNode())}, nil
}

// benchChild measures one graph ("forward" or "train": times and peak RSS) or both
// alternately ("time"), after one warm-up run each, and prints a childResult.
func benchChild(mode, dir string, recompute bool) error {
	if err := ort.Init(""); err != nil {
		return err
	}
	kinds := []string{mode}
	if mode == "time" {
		kinds = []string{"forward", "train"}
	}
	graphsByKind := map[string]*benchGraph{}
	res := childResult{MedianMS: map[string]float64{}, MinMS: map[string]float64{}}
	for _, k := range kinds {
		g, err := buildBench(dir, k == "train", recompute)
		if err != nil {
			return err
		}
		defer g.s.Close()
		graphsByKind[k] = g
		res.Nodes = g.nodes
		if _, _, err := g.run(); err != nil {
			return err
		}
	}
	times, cpu := map[string][]float64{}, map[string][]float64{}
	res.RunsMS, res.CPUMS = times, cpu
	for range benchRuns {
		for _, k := range kinds {
			ms, cms, err := graphsByKind[k].run()
			if err != nil {
				return err
			}
			times[k] = append(times[k], ms)
			cpu[k] = append(cpu[k], cms)
		}
	}
	for k, v := range times {
		sorted := slices.Sorted(slices.Values(v))
		res.MedianMS[k], res.MinMS[k] = sorted[len(v)/2], sorted[0]
	}
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return err
	}
	res.MaxRSSMB = float64(ru.Maxrss) / 1024
	return json.NewEncoder(os.Stdout).Encode(res)
}

// recomputeLayers selects the float nodes of every decoder layer for recomputation.
func recomputeLayers(n *onnxpb.NodeProto) bool {
	var layer int
	_, err := fmt.Sscanf(n.GetName(), "model.layers.%d", &layer)
	return err == nil
}

// addTokenLoss adds the mean token cross-entropy of the logits (float32) and returns its
// name: inputs targets (batch, seq) int64 and loss_mask (batch, seq) float32.
func addTokenLoss(m *onnxpb.ModelProto, logits string) string {
	b := graphs.WrapGraph(m.GetGraph())
	b.Input("targets", graphs.Int64, "batch", "seq")
	b.Input("loss_mask", graphs.Float, "batch", "seq")
	logp := b.Node("LogSoftmax", []string{logits}, graphs.AttrInt("axis", -1))
	picked := b.Node("GatherElements", []string{logp, b.Op("Unsqueeze", "targets",
		b.ConstInt64(-1))}, graphs.AttrInt("axis", -1))
	mask := b.Op("Unsqueeze", "loss_mask", b.ConstInt64(-1))
	total := b.Node("ReduceSum", []string{b.Op("Mul", picked, mask)}, graphs.AttrInt("keepdims", 0))
	count := b.Node("ReduceSum", []string{"loss_mask"}, graphs.AttrInt("keepdims", 0))
	return b.Op("Reshape", b.Op("Neg", b.Op("Div", total, count)), b.ConstInt64(1))
}

// benchFeeds makes one tensor per graph input.
func benchFeeds(m *onnxpb.ModelProto, rep *lora.Report) ([]onnx.Value, []string, error) {
	rng := rand.New(rand.NewPCG(2, 3))
	shapes := map[string][]int64{}
	for _, l := range rep.Layers {
		for _, p := range l.Params() {
			shapes[p.Name] = p.Shape
		}
	}
	ids := func() []int64 {
		v := make([]int64, benchBatch*benchSeq)
		for i := range v {
			v[i] = rng.Int64N(randmodel.VocabSize)
		}
		return v
	}
	ones := func(n int) []float32 { return slices.Repeat([]float32{1}, n) }
	var feeds []onnx.Value
	var names []string
	for _, in := range m.GetGraph().GetInput() {
		name := in.GetName()
		bs := onnx.NewShape(benchBatch, benchSeq)
		var v onnx.Value
		var err error
		switch {
		case name == export.InputIDs || name == "targets":
			v, err = onnx.NewTensor(bs, ids())
		case name == export.AttentionMask:
			v, err = onnx.NewTensor(bs, slices.Repeat([]int64{1}, benchBatch*benchSeq))
		case name == "loss_mask":
			v, err = onnx.NewTensor(bs, ones(benchBatch*benchSeq))
		case name == rep.Lambda:
			v, err = onnx.NewTensor(onnx.NewShape(benchBatch, 2), slices.Repeat([]float32{0.5}, 2*benchBatch))
		case shapes[name] != nil:
			init := slices.Clone(rep.Init[name])
			for i := range init {
				if init[i] == 0 {
					init[i] = float32(rng.NormFloat64() * 0.01)
				}
			}
			v, err = onnx.NewTensor(onnx.NewShape(shapes[name]...), init)
		default:
			err = fmt.Errorf("unexpected input %q", name)
		}
		if err != nil {
			return nil, nil, err
		}
		feeds = append(feeds, v)
		names = append(names, name)
	}
	return feeds, names, nil
}
