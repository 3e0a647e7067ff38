// Command ppostep times Panacea PPO steps (issue 6): rollout generation, scoring of the
// rollout and the PPO updates, on the real stories260k model and on random weights with the
// shapes of a ~135M-parameter Llama-family model (SmolLM-135M, 30 layers; see
// internal/randmodel).
//
//	go run ./bench/ppostep [-models both|stories260k|random135m] [-dir /tmp/panacea-ppo-bench]
//	    [-rollout 16] [-new 16] [-minibatch 4] [-epochs 2] [-steps 4] [-threads 2]
//
// Per model, two child processes of this program run one after the other, so that each has
// a peak RSS of its own:
//
//   - prepare: exports the model with a KV cache (export.Options{WithPast: true}; for
//     random135m it first writes the random checkpoint with the stories260k tokenizer files,
//     whose 512 ids lie inside the 49152 of the vocabulary) and trains two head-only reward
//     models (objective reward, -reward-steps steps on the PKU-SafeRLHF rows, labels
//     better_response_id and safer_response_id) into DIR/MODEL.
//   - ppo: runs trainer.Train with objective ppo (the real loop: four sessions of the
//     λ-policy, two reward-model sessions, AdamW in Go) for -steps steps, stopping before the
//     final samples and model, and reads metrics.jsonl.
//
// The table gives medians over the steps after the first (a warm-up) of the step's phases
// (PPOMetrics generate_s, score_s, update_s), the generated tokens/s, the whole step
// (seconds), the CPU seconds of the step (user+sys, all threads), the set-up time before the
// first step, the ppo child's peak RSS, and the 1-minute load average before and after it.
// -prepare=false reuses DIR from an earlier run; -clean deletes each model's folder after it.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"syscall"
	"time"

	"github.com/panacea-go/toolkit/bench/internal/benchutil"
	"github.com/panacea-go/toolkit/datasets"
	"github.com/panacea-go/toolkit/export"
	"github.com/panacea-go/toolkit/internal/randmodel"
	"github.com/panacea-go/toolkit/ort"
	"github.com/panacea-go/toolkit/trainer"
)

// Model names of -models.
const (
	stories = "stories260k"
	random  = "random135m"
)

// settings are the flags; children get the parent's.
type settings struct {
	dir, models, shared                       string
	rollout, newTok, minibatch, epochs, steps int
	threads, layers, rewardSteps, promptLen   int
	rewardLen                                 int
	prepare, clean                            bool
	child                                     string
}

// result is what a ppo child prints (JSON on stdout).
type result struct {
	Model      string               `json:"model"`
	PromptLen  int                  `json:"prompt_len"`
	Steps      []trainer.PPOMetrics `json:"steps"`
	CPU        []float64            `json:"cpu_s"` // per step; the first includes set-up
	SetupS     float64              `json:"setup_s"`
	PeakRSSMB  float64              `json:"peak_rss_mb"`
	LoadBefore string               `json:"load_before"`
	LoadAfter  string               `json:"load_after"`
}

var errStop = errors.New("benchmark: enough steps")

func main() {
	var s settings
	flag.StringVar(&s.dir, "dir", "/tmp/panacea-ppo-bench",
		"work folder (1.6 GB with random135m: its export and two reward models)")
	flag.StringVar(&s.models, "models", "both", "stories260k, random135m or both")
	flag.StringVar(&s.shared, "shared", "", "the shared data folder (default: $TOOLKIT_SHARED_DATA, "+
		"else ../shared/data above the working directory)")
	flag.IntVar(&s.rollout, "rollout", 16, "rollout batch: prompts generated per step")
	flag.IntVar(&s.newTok, "new", 16, "max new tokens per rollout row")
	flag.IntVar(&s.minibatch, "minibatch", 4, "rows per PPO update")
	flag.IntVar(&s.epochs, "epochs", 2, "PPO epochs over each rollout batch")
	flag.IntVar(&s.steps, "steps", 4, "PPO steps; the first is a warm-up")
	flag.IntVar(&s.threads, "threads", 2, "ONNX Runtime intra-op threads")
	flag.IntVar(&s.layers, "layers", 30, "decoder layers of random135m")
	flag.IntVar(&s.promptLen, "prompt-len", 0, "data max_prompt_len of the PPO run "+
		"(0: 48 for stories260k as in examples/panacea-ppo.yaml, 32 for random135m)")
	flag.IntVar(&s.rewardSteps, "reward-steps", 3, "steps of each reward model (8 pairs each)")
	flag.IntVar(&s.rewardLen, "reward-len", 32, "data max_len of the reward models (prompt half)")
	flag.BoolVar(&s.prepare, "prepare", true, "export and train the reward models first "+
		"(false: reuse DIR)")
	flag.BoolVar(&s.clean, "clean", false, "delete DIR/MODEL after measuring it")
	flag.StringVar(&s.child, "child", "", "internal: prepare or ppo, for one model")
	flag.Parse()

	var err error
	if s.child != "" {
		err = child(s)
	} else {
		err = parent(s)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "ppostep:", err)
		os.Exit(1)
	}
}

// ---------------------------------------------------------------------------------------
// parent

func parent(s settings) error {
	models := []string{stories, random}
	switch s.models {
	case "both":
	case stories, random:
		models = []string{s.models}
	default:
		return fmt.Errorf("-models %q: want %s, %s or both", s.models, stories, random)
	}
	var results []result
	for _, m := range models {
		if s.prepare {
			start := time.Now()
			out, err := spawn("prepare", m)
			if err != nil {
				return err
			}
			var peak float64
			json.Unmarshal(out, &peak)
			fmt.Printf("%s: prepared in %.0fs (peak RSS %.0f MB)\n", m,
				time.Since(start).Seconds(), peak)
		}
		out, err := spawn("ppo", m)
		if err != nil {
			return err
		}
		var r result
		if err := json.Unmarshal(out, &r); err != nil {
			return fmt.Errorf("%s ppo child printed %q: %w", m, out, err)
		}
		results = append(results, r)
		printSteps(r)
		if s.clean {
			os.RemoveAll(filepath.Join(s.dir, m))
		}
	}
	fmt.Printf("\nrollout %d × ≤%d new tokens, minibatch %d, %d PPO epochs, %d steps "+
		"(medians of steps 2–%d), %d threads\n", s.rollout, s.newTok, s.minibatch, s.epochs,
		s.steps, s.steps, s.threads)
	fmt.Println("| model | prompt ≤ | generate s | gen tokens/s | score s | update s | step s " +
		"| CPU s/step | set-up s | peak RSS MB | load before → after |")
	fmt.Println("|---|---|---|---|---|---|---|---|---|---|---|")
	for _, r := range results {
		var gen, tps, score, upd, sec []float64
		for _, m := range r.Steps[1:] {
			gen, tps = append(gen, m.GenerateS), append(tps, m.GenTokensPerS)
			score, upd = append(score, m.ScoreS), append(upd, m.UpdateS)
			sec = append(sec, m.Seconds)
		}
		med := benchutil.Median
		fmt.Printf("| %s | %d | %.3f | %.1f | %.3f | %.3f | %.3f | %.2f | %.1f | %.0f | %s → %s |\n",
			r.Model, r.PromptLen, med(gen), med(tps), med(score), med(upd), med(sec),
			med(r.CPU[1:]), r.SetupS, r.PeakRSSMB, r.LoadBefore, r.LoadAfter)
	}
	return nil
}

// spawn runs this program again as a child for one model and returns its stdout; its
// stderr (logs) passes through.
func spawn(kind, model string) ([]byte, error) {
	args := append(slices.Clone(os.Args[1:]), "-child", kind, "-models", model)
	cmd := exec.Command(os.Args[0], args...)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("%s child for %s: %w", kind, model, err)
	}
	return out, nil
}

// printSteps prints one model's steps, one line each.
func printSteps(r result) {
	fmt.Printf("%s (prompt ≤ %d tokens; set-up %.1fs, peak RSS %.0f MB):\n", r.Model,
		r.PromptLen, r.SetupS, r.PeakRSSMB)
	for i, m := range r.Steps {
		fmt.Printf("  step %d: %.3fs = generate %.3fs (%.1f tokens/s) + score %.3fs + update "+
			"%.3fs + %.3fs rest; CPU %.2fs; response %.1f tokens, %.0f tokens/s\n", m.Step,
			m.Seconds, m.GenerateS, m.GenTokensPerS, m.ScoreS, m.UpdateS,
			m.Seconds-m.GenerateS-m.ScoreS-m.UpdateS, r.CPU[i], m.RespLen, m.TokensPerS)
	}
}

// ---------------------------------------------------------------------------------------
// children

func child(s settings) error {
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, nil)))
	// Resolve the library before the cache moves into the work folder.
	if err := ort.Init(ort.ResolveLib("")); err != nil {
		return err
	}
	os.Setenv("TOOLKIT_CACHE", filepath.Join(s.dir, "cache"))
	if s.shared == "" {
		s.shared = findShared()
	}
	switch s.child {
	case "prepare":
		if err := prepare(s, s.models); err != nil {
			return err
		}
		return json.NewEncoder(os.Stdout).Encode(benchutil.ProcMB("VmHWM"))
	case "ppo":
		r, err := runPPO(s, s.models)
		if err != nil {
			return err
		}
		return json.NewEncoder(os.Stdout).Encode(r)
	}
	return fmt.Errorf("-child %q: want prepare or ppo", s.child)
}

// prepare writes DIR/MODEL/onnx and the reward models DIR/MODEL/reward-{helpful,harmless}.
func prepare(s settings, model string) error {
	dir := filepath.Join(s.dir, model)
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	src := filepath.Join(s.shared, "stories260k-hf")
	if model == random {
		src = filepath.Join(dir, "hf")
		start := time.Now()
		if err := randmodel.WriteLlama(src, s.layers, 1); err != nil {
			return err
		}
		for _, f := range []string{"tokenizer.json", "tokenizer_config.json",
			"special_tokens_map.json"} {
			err := benchutil.CopyFile(filepath.Join(s.shared, "stories260k-hf", f), filepath.Join(src, f))
			if err != nil {
				return fmt.Errorf("tokenizer (set -shared): %w", err)
			}
		}
		slog.Info("random checkpoint", "dir", src, "layers", s.layers,
			"seconds", fmt.Sprintf("%.1f", time.Since(start).Seconds()))
	}
	start := time.Now()
	onnxDir := filepath.Join(dir, "onnx")
	if _, err := export.Export(src, onnxDir, export.Options{WithPast: true}); err != nil {
		return err
	}
	slog.Info("export", "dir", onnxDir, "seconds", fmt.Sprintf("%.1f", time.Since(start).Seconds()))
	if model == random {
		os.RemoveAll(src) // the export holds the weights now
	}
	pku := filepath.Join(s.shared, "pku-saferlhf", "alpaca7b-test-head190.jsonl")
	for _, d := range []struct{ name, label string }{
		{"helpful", "better_response_id"}, {"harmless", "safer_response_id"}} {
		cfg := trainer.Defaults()
		cfg.Objective, cfg.Model = "reward", onnxDir
		cfg.Out = filepath.Join(dir, "reward-"+d.name)
		cfg.Steps, cfg.SaveEvery, cfg.LR, cfg.Warmup = s.rewardSteps, 0, 1e-2, 0
		cfg.Data = datasets.DataConfig{
			Dimensions:   []datasets.DimensionConfig{{Name: d.name, Source: pku, Label: d.label}},
			Template:     datasets.TemplateConfig{Style: datasets.StyleHH},
			MaxPromptLen: s.rewardLen / 2, MaxLen: s.rewardLen, BatchSize: 8, Epochs: 1,
			EvalFraction: 0.2, Seed: 1,
		}
		start := time.Now()
		if err := trainer.Train(context.Background(), cfg, ort.Options{Threads: s.threads},
			false, trainer.Hooks{}); err != nil {
			return fmt.Errorf("reward model %s: %w", d.name, err)
		}
		slog.Info("reward model", "dir", cfg.Out, "seconds",
			fmt.Sprintf("%.1f", time.Since(start).Seconds()))
	}
	return nil
}

// runPPO runs s.steps PPO steps on DIR/MODEL and collects their metrics.
func runPPO(s settings, model string) (result, error) {
	dir := filepath.Join(s.dir, model)
	r := result{Model: model, PromptLen: s.promptLen, LoadBefore: benchutil.LoadAvg()}
	if r.PromptLen == 0 {
		r.PromptLen = map[string]int{stories: 48, random: 32}[model]
	}
	pku := filepath.Join(s.shared, "pku-saferlhf", "alpaca7b-test-head190.jsonl")
	cfg := trainer.Defaults()
	cfg.Objective, cfg.Model = "ppo", filepath.Join(dir, "onnx")
	cfg.Out = filepath.Join(dir, fmt.Sprintf("ppo-%d", time.Now().UnixNano()))
	cfg.Steps, cfg.SaveEvery, cfg.LR, cfg.VertexProb = s.steps, 0, 1e-3, 0.5
	cfg.PPO.RewardModels = []string{filepath.Join(dir, "reward-helpful"),
		filepath.Join(dir, "reward-harmless")}
	cfg.PPO.KLCoef = 0.2
	cfg.PPO.RolloutBatch, cfg.PPO.MaxNewTokens = s.rollout, s.newTok
	cfg.PPO.MiniBatch, cfg.PPO.PPOEpochs = s.minibatch, s.epochs
	cfg.Data = datasets.DataConfig{
		Dimensions: []datasets.DimensionConfig{
			{Name: "helpful", Source: pku, Label: "better_response_id"},
			{Name: "harmless", Source: pku, Label: "safer_response_id"},
		},
		Template:     datasets.TemplateConfig{Style: datasets.StyleHH},
		MaxPromptLen: r.PromptLen, MaxLen: 2 * r.PromptLen, BatchSize: 4, EvalFraction: 0.2,
		Seed: 1,
	}
	defer os.RemoveAll(cfg.Out)

	lastCPU := cpuSeconds()
	var stepSecs float64
	hooks := trainer.Hooks{
		OnStep: func(_ int, m trainer.StepMetrics) {
			now := cpuSeconds()
			r.CPU = append(r.CPU, now-lastCPU)
			lastCPU = now
			stepSecs += m.Seconds
			slog.Info("ppo step", "model", model, "step", m.Step,
				"seconds", fmt.Sprintf("%.3f", m.Seconds))
		},
		AfterStep: func(step int) error {
			if step >= s.steps {
				return errStop
			}
			return nil
		},
	}
	start := time.Now()
	err := trainer.Train(context.Background(), cfg, ort.Options{Threads: s.threads}, false, hooks)
	if err != nil && !errors.Is(err, errStop) {
		return r, err
	}
	r.SetupS = time.Since(start).Seconds() - stepSecs
	r.LoadAfter = benchutil.LoadAvg()
	r.PeakRSSMB = benchutil.ProcMB("VmHWM")
	if r.Steps, err = readMetrics(filepath.Join(cfg.Out, trainer.MetricsFile)); err != nil {
		return r, err
	}
	if len(r.Steps) < 2 || len(r.Steps) != len(r.CPU) {
		return r, fmt.Errorf("%d metrics lines for %d steps: need at least 2", len(r.Steps),
			len(r.CPU))
	}
	return r, nil
}

// readMetrics reads a PPO run's metrics.jsonl.
func readMetrics(path string) ([]trainer.PPOMetrics, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []trainer.PPOMetrics
	for _, line := range bytes.Split(bytes.TrimSpace(raw), []byte("\n")) {
		var m trainer.PPOMetrics
		if err := json.Unmarshal(line, &m); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		out = append(out, m)
	}
	return out, nil
}

// ---------------------------------------------------------------------------------------
// helpers

// findShared returns $TOOLKIT_SHARED_DATA, else the first ../shared/data above the working
// directory that holds stories260k-hf.
func findShared() string {
	if p := os.Getenv("TOOLKIT_SHARED_DATA"); p != "" {
		return p
	}
	wd, _ := os.Getwd()
	for d := wd; ; d = filepath.Dir(d) {
		p := filepath.Join(d, "..", "shared", "data")
		if _, err := os.Stat(filepath.Join(p, "stories260k-hf")); err == nil || filepath.Dir(d) == d {
			return p
		}
	}
}

// cpuSeconds is the process's user+system CPU time so far, all threads.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}
