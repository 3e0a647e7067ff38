// Command dpostep times one Panacea DPO training step of the toolkit on random weights with
// the shapes of a ~135M-parameter Llama-family model (SmolLM-135M: hidden 576, 30 layers,
// 9 heads, 3 KV heads, MLP 1536, vocabulary 49152, tied embeddings).
//
//	dpostep prepare -dir /tmp/panacea-bench [-past]   # random checkpoint, export, data
//	dpostep train   -dir /tmp/panacea-bench [-steps 6] [-threads 2] [-profile PREFIX]
//
// prepare writes DIR/hf (config.json, a random F32 model.safetensors, the stories260k
// tokenizer files), exports it to DIR/onnx (and DIR/onnx-past with -past, for bench/decode)
// and writes DIR/data/pairs.jsonl: random text long enough that every chosen and rejected
// row fills max_len (128 prompt tokens + 128 response tokens = 256).
//
// train runs trainer.Train (the real training loop: step graph = policy with SVD-LoRA +
// DPO loss + the toolkit's backward graph, one ONNX Runtime session; AdamW in Go) with
// 2 dimensions × batch_size 2 pairs = 4 pairs of 256 tokens per step, and stops after
// -steps steps without writing the final model. Step times are StepMetrics.Seconds; the
// first step is a warm-up and the rest give the median. It prints one line starting with
// "RESULT " (key=value pairs) for bench/run_dpo_bench.sh.
package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/panacea-go/toolkit/bench/internal/benchutil"
	"github.com/panacea-go/toolkit/datasets"
	"github.com/panacea-go/toolkit/export"
	"github.com/panacea-go/toolkit/ort"
	"github.com/panacea-go/toolkit/trainer"
)

// Shapes of SmolLM-135M.
const (
	hidden, inter, layers = 576, 1536, 30
	heads, kvHeads, hd    = 9, 3, 64
	vocab                 = 49152
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: dpostep prepare|train [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "prepare":
		err = prepare(os.Args[2:])
	case "train":
		err = train(os.Args[2:])
	default:
		err = fmt.Errorf("unknown subcommand %q (want prepare or train)", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "dpostep:", err)
		os.Exit(1)
	}
}

// ---------------------------------------------------------------------------------------
// prepare

func prepare(args []string) error {
	fs := flag.NewFlagSet("prepare", flag.ExitOnError)
	dir := fs.String("dir", "/tmp/panacea-bench", "work folder (about 1.1 GB, 1.6 GB with -past)")
	past := fs.Bool("past", false, "also export with KV cache to DIR/onnx-past (bench/decode)")
	pairs := fs.Int("pairs", 12, "preference rows to write")
	tokdir := fs.String("tokenizer", "", "folder with tokenizer.json etc. (default: "+
		"../shared/data/stories260k-hf found from the module root)")
	fs.Parse(args)

	hf := filepath.Join(*dir, "hf")
	if err := os.MkdirAll(hf, 0o755); err != nil {
		return err
	}
	start := time.Now()
	size, err := writeCheckpoint(hf)
	if err != nil {
		return err
	}
	fmt.Printf("checkpoint: %s (%d bytes, %.1fs)\n", hf, size, time.Since(start).Seconds())
	if *tokdir == "" {
		*tokdir = findSharedTokenizer()
	}
	for _, f := range []string{"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"} {
		if err := benchutil.CopyFile(filepath.Join(*tokdir, f), filepath.Join(hf, f)); err != nil {
			return fmt.Errorf("tokenizer (set -tokenizer): %w", err)
		}
	}
	outs := []string{"onnx"}
	if *past {
		outs = append(outs, "onnx-past")
	}
	for _, o := range outs {
		start := time.Now()
		dst := filepath.Join(*dir, o)
		os.RemoveAll(dst)
		if _, err := export.Export(hf, dst, export.Options{WithPast: o == "onnx-past"}); err != nil {
			return err
		}
		fmt.Printf("export: %s (%.1fs)\n", dst, time.Since(start).Seconds())
	}
	if err := writePairs(filepath.Join(*dir, "data", "pairs.jsonl"), *pairs); err != nil {
		return err
	}
	fmt.Printf("data: %s (%d rows)\n", filepath.Join(*dir, "data", "pairs.jsonl"), *pairs)
	return nil
}

// findSharedTokenizer looks for ../shared/data/stories260k-hf above the working directory.
func findSharedTokenizer() string {
	wd, _ := os.Getwd()
	for d := wd; ; d = filepath.Dir(d) {
		p := filepath.Join(d, "..", "shared", "data", "stories260k-hf")
		if _, err := os.Stat(filepath.Join(p, "tokenizer.json")); err == nil {
			return p
		}
		if filepath.Dir(d) == d {
			return p
		}
	}
}

// writeCheckpoint writes config.json, generation_config.json and a random F32
// model.safetensors with SmolLM-135M's tensor shapes, streaming the data. Matrices are
// uniform in ±0.05 (xorshift), norm weights 1.
func writeCheckpoint(dir string) (int64, error) {
	cfg := map[string]any{
		"architectures": []string{"LlamaForCausalLM"}, "model_type": "llama",
		"hidden_size": hidden, "intermediate_size": inter, "num_hidden_layers": layers,
		"num_attention_heads": heads, "num_key_value_heads": kvHeads, "vocab_size": vocab,
		"max_position_embeddings": 2048, "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
		"tie_word_embeddings": true, "hidden_act": "silu", "bos_token_id": 1, "eos_token_id": 2,
	}
	js, _ := json.MarshalIndent(cfg, "", "  ")
	if err := os.WriteFile(filepath.Join(dir, "config.json"), js, 0o644); err != nil {
		return 0, err
	}
	if err := os.WriteFile(filepath.Join(dir, "generation_config.json"),
		[]byte(`{"bos_token_id": 1, "eos_token_id": 2}`), 0o644); err != nil {
		return 0, err
	}
	shapes := map[string][]int{"model.embed_tokens.weight": {vocab, hidden},
		"model.norm.weight": {hidden}}
	for i := range layers {
		p := fmt.Sprintf("model.layers.%d.", i)
		shapes[p+"input_layernorm.weight"] = []int{hidden}
		shapes[p+"post_attention_layernorm.weight"] = []int{hidden}
		shapes[p+"self_attn.q_proj.weight"] = []int{heads * hd, hidden}
		shapes[p+"self_attn.k_proj.weight"] = []int{kvHeads * hd, hidden}
		shapes[p+"self_attn.v_proj.weight"] = []int{kvHeads * hd, hidden}
		shapes[p+"self_attn.o_proj.weight"] = []int{hidden, heads * hd}
		shapes[p+"mlp.gate_proj.weight"] = []int{inter, hidden}
		shapes[p+"mlp.up_proj.weight"] = []int{inter, hidden}
		shapes[p+"mlp.down_proj.weight"] = []int{hidden, inter}
	}
	names := slices.Sorted(func(yield func(string) bool) {
		for n := range shapes {
			if !yield(n) {
				return
			}
		}
	})
	var hdr strings.Builder
	hdr.WriteString(`{"__metadata__":{"format":"pt"}`)
	var offset int64
	sizes := make([]int64, len(names))
	for i, n := range names {
		size := int64(4)
		for _, d := range shapes[n] {
			size *= int64(d)
		}
		sizes[i] = size
		dims, _ := json.Marshal(shapes[n])
		fmt.Fprintf(&hdr, `,%q:{"dtype":"F32","shape":%s,"data_offsets":[%d,%d]}`, n, dims,
			offset, offset+size)
		offset += size
	}
	hdr.WriteString("}")
	for hdr.Len()%8 != 0 {
		hdr.WriteString(" ")
	}
	path := filepath.Join(dir, "model.safetensors")
	f, err := os.Create(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	w := bufio.NewWriterSize(f, 1<<20)
	binary.Write(w, binary.LittleEndian, uint64(hdr.Len()))
	w.WriteString(hdr.String())
	state := uint64(0x2545f4914f6cdd1d)
	buf := make([]byte, 4<<10)
	for i, n := range names {
		norm := strings.HasSuffix(n, "norm.weight")
		for left := sizes[i]; left > 0; {
			chunk := min(left, int64(len(buf)))
			for j := int64(0); j < chunk; j += 4 {
				v := float32(1)
				if !norm {
					state ^= state << 13
					state ^= state >> 7
					state ^= state << 17
					v = (float32(state>>40)/float32(1<<24) - 0.5) * 0.1
				}
				binary.LittleEndian.PutUint32(buf[j:], math.Float32bits(v))
			}
			w.Write(buf[:chunk])
			left -= chunk
		}
	}
	if err := w.Flush(); err != nil {
		return 0, err
	}
	if err := f.Close(); err != nil {
		return 0, err
	}
	st, err := os.Stat(path)
	if err != nil {
		return 0, err
	}
	return st.Size(), nil
}

// writePairs writes n {prompt, chosen, rejected} rows of random lowercase words, each part
// far longer than 128 tokens of the stories260k tokenizer.
func writePairs(path string, n int) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	rng := rand.New(rand.NewPCG(7, 11))
	words := func(k int) string {
		var sb strings.Builder
		for i := range k {
			if i > 0 {
				sb.WriteByte(' ')
			}
			for range 2 + rng.IntN(6) {
				sb.WriteByte(byte('a' + rng.IntN(26)))
			}
		}
		return sb.String()
	}
	var out strings.Builder
	for range n {
		row := map[string]string{"prompt": words(200), "chosen": words(200), "rejected": words(200)}
		js, _ := json.Marshal(row)
		out.Write(js)
		out.WriteByte('\n')
	}
	return os.WriteFile(path, []byte(out.String()), 0o644)
}

// ---------------------------------------------------------------------------------------
// train

var errStop = errors.New("benchmark: enough steps")

func train(args []string) error {
	fs := flag.NewFlagSet("train", flag.ExitOnError)
	dir := fs.String("dir", "/tmp/panacea-bench", "work folder written by prepare")
	steps := fs.Int("steps", 6, "steps to run; the first is a warm-up")
	threads := fs.Int("threads", 2, "ONNX Runtime intra-op threads")
	batch := fs.Int("batch", 2, "pairs per dimension per step (2 dimensions)")
	maxLen := fs.Int("max-len", 256, "tokens per row (prompt 128 + response 128)")
	rank := fs.Int("rank", 8, "SVD-LoRA rank k")
	profile := fs.String("profile", "", "ONNX Runtime profile file prefix (chrome trace JSON)")
	optLevel := fs.String("opt-level", "", "ONNX Runtime graph optimisation level (default all)")
	logLevel := fs.String("log-level", "info", "debug, info, warn")
	fs.Parse(args)

	var lvl slog.Level
	lvl.UnmarshalText([]byte(*logLevel))
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lvl})))

	// The library comes from the usual places (flag-less: $TOOLKIT_ORT_LIB, then the cache);
	// resolve it before the cache moves to the work folder, so that reference log-probs of
	// random models never land in the user's cache.
	if err := ort.Init(ort.ResolveLib("")); err != nil {
		return err
	}
	os.Setenv("TOOLKIT_CACHE", filepath.Join(*dir, "cache"))

	cfg := trainer.Defaults()
	cfg.Model = filepath.Join(*dir, "onnx")
	cfg.Out = filepath.Join(*dir, fmt.Sprintf("run-%d", time.Now().UnixNano()))
	cfg.Steps = *steps
	cfg.Rank = *rank
	cfg.SaveEvery = 0
	cfg.EvalGrid = 0
	cfg.Warmup = 0
	data := filepath.Join(*dir, "data", "pairs.jsonl")
	cfg.Data = datasets.DataConfig{
		Dimensions: []datasets.DimensionConfig{
			{Name: "helpful", Source: data}, {Name: "harmless", Source: data}},
		Template: datasets.TemplateConfig{Style: datasets.StylePlain, Separator: " ",
			EOSToken: "none"},
		MaxLen:      *maxLen,
		PadToMaxLen: true,
		BatchSize:   *batch,
		Epochs:      100,
		Seed:        1,
	}
	defer os.RemoveAll(cfg.Out)

	var mets []trainer.StepMetrics
	var cpus, faults []float64 // CPU seconds (user+sys, all threads), minor page faults
	lastCPU, lastFlt := usage()
	hooks := trainer.Hooks{
		OnStep: func(_ int, m trainer.StepMetrics) {
			now, flt := usage()
			cpus, faults = append(cpus, now-lastCPU), append(faults, flt-lastFlt)
			lastCPU, lastFlt = now, flt
			mets = append(mets, m)
			slog.Info("step", "step", m.Step, "seconds", fmt.Sprintf("%.3f", m.Seconds),
				"loss", fmt.Sprintf("%.5f", m.Loss), "grad_norm", fmt.Sprintf("%.4g", m.GradNorm))
		},
		AfterStep: func(step int) error {
			if step >= *steps {
				return errStop
			}
			return nil
		},
	}
	o := ort.Options{Threads: *threads, ProfilePrefix: *profile, OptLevel: *optLevel}
	start := time.Now()
	err := trainer.Train(context.Background(), cfg, o, false, hooks)
	total := time.Since(start).Seconds()
	if err != nil && !errors.Is(err, errStop) {
		return err
	}
	if len(mets) < 2 {
		return fmt.Errorf("only %d steps ran", len(mets))
	}
	var secs []float64
	for _, m := range mets[1:] {
		secs = append(secs, m.Seconds)
	}
	med := benchutil.Median(secs)
	rows := 4 * *batch // 2 dimensions × batch pairs × (chosen, rejected)
	tokens := rows * *maxLen
	stepsTime := 0.0
	for _, m := range mets {
		stepsTime += m.Seconds
	}
	fmt.Printf("steps (s): %v\n", fmtList(secs))
	fmt.Printf("step CPU seconds (user+sys, all threads; the first includes set-up): %v\n",
		fmtList(cpus))
	fmt.Printf("step minor page faults (the first includes set-up): %v\n", fmtList(faults))
	fmt.Printf("warm-up step: %.3fs; set-up (data, reference log-probs, step graph, "+
		"session): %.1fs\n", mets[0].Seconds, total-stepsTime)
	fmt.Printf("RESULT impl=toolkit-ort median_step_s=%.4f min_step_s=%.4f warmup_step_s=%.4f "+
		"tokens_per_s=%.1f rows=%d seq=%d steps=%d setup_s=%.2f first_loss=%.6f "+
		"metrics_tokens_per_s=%.1f median_step_cpu_s=%.3f median_step_minflt=%.0f "+
		"vm_hwm_mb=%.0f vm_rss_mb=%.0f\n",
		med, slices.Min(secs), mets[0].Seconds, float64(tokens)/med, rows, *maxLen, len(secs),
		total-stepsTime, mets[0].Loss, benchutil.Median(tokPerS(mets[1:])), benchutil.Median(cpus[1:]),
		benchutil.Median(faults[1:]), benchutil.ProcMB("VmHWM"), benchutil.ProcMB("VmRSS"))
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		fmt.Printf("getrusage: maxrss %.0f MB\n", float64(ru.Maxrss)/1024)
	}
	return nil
}

func tokPerS(ms []trainer.StepMetrics) []float64 {
	var v []float64
	for _, m := range ms {
		v = append(v, m.TokensPerS)
	}
	return v
}

func fmtList(v []float64) string {
	var parts []string
	for _, x := range v {
		parts = append(parts, fmt.Sprintf("%.3f", x))
	}
	return "[" + strings.Join(parts, " ") + "]"
}

// usage is the process's user+system CPU seconds and minor page faults so far.
func usage() (cpu, minflt float64) {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0, 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds(), float64(ru.Minflt)
}
