package export

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"

	"github.com/panacea-go/toolkit/export/safetensors"
	"github.com/panacea-go/toolkit/graphs"
)

// Options configure Export.
type Options struct {
	// DType is the element type of the stored weight initializers: "f32" (default) or
	// "f16". Computation is float32 either way.
	DType string
	// WithPast adds past_key_values.{i}.key/.value inputs and present.{i}.key/.value
	// outputs for incremental decoding.
	WithPast bool
	// Hidden adds the output hidden_states (batch, seq, hidden): the final normalisation's
	// output, the value the LM head multiplies (model.norm for the Llama family, ln_f for
	// GPT-2). logits stays an output. Reward models pool it (see trainer.TrainReward).
	Hidden bool
	// Progress, when set, is called after each tensor with the bytes of weights written
	// so far and the total.
	Progress func(done, total int64)
}

// family is one architecture family's exporter: a validated config that can build its
// graph and declare its weights.
type family interface {
	// manifest returns the model's dimensions (the rest of the Manifest is filled by Export).
	manifest() Manifest
	// build emits the graph into g and declares every weight through p.
	build(g *gb, p *weightPlan, withPast bool) error
}

// SupportedArchitectures are the config.json architectures[0] values Export accepts.
var SupportedArchitectures = []string{"LlamaForCausalLM", "MistralForCausalLM",
	"Qwen2ForCausalLM", "GPT2LMHeadModel"}

// SupportedModelTypes are the config.json model_type values Export accepts.
var SupportedModelTypes = []string{"llama", "mistral", "qwen2", "gpt2"}

// archModelType is the model_type each supported architecture implies.
var archModelType = map[string]string{
	"LlamaForCausalLM": "llama", "MistralForCausalLM": "mistral",
	"Qwen2ForCausalLM": "qwen2", "GPT2LMHeadModel": "gpt2",
}

// selectFamily is the one switch from config.json to an architecture family: on
// architectures[0] when present, else on model_type.
func selectFamily(cfg *rawConfig) (family, error) {
	arch, modelType := cfg.architecture(), cfg.str("model_type")
	key := arch
	if key == "" {
		key = modelType
	}
	if implied, ok := archModelType[arch]; ok {
		if modelType == "" {
			modelType = implied
		} else if modelType != implied {
			slog.Warn("export: model_type differs from the architecture; following model_type",
				"architecture", arch, "model_type", modelType)
		}
	}
	unsupported := func() error {
		return fmt.Errorf("export: %s: architecture %q (model_type %q) is not supported; "+
			"supported architectures: %v, model types: %v: %w", configFile, arch, modelType,
			SupportedArchitectures, SupportedModelTypes, ErrUnsupported)
	}
	switch key {
	case "LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM",
		"llama", "mistral", "qwen2":
		if _, ok := llamaDefaults[modelType]; !ok {
			return nil, unsupported()
		}
		return newLlama(cfg, arch, modelType)
	case "GPT2LMHeadModel", "gpt2":
		if modelType != "gpt2" {
			return nil, unsupported()
		}
		return newGPT2(cfg, arch, modelType)
	}
	return nil, unsupported()
}

// Export converts the Hugging Face folder src into dst (created if missing) and returns
// the manifest it wrote to dst/toolkit.json.
//
// Nothing is written before config.json and every tensor have been checked. The weights
// go to model.onnx.data first and model.onnx is written (atomically) only after them, so a
// failed export leaves no model.onnx that looks complete; toolkit.json is written last.
func Export(src, dst string, opts Options) (*Manifest, error) {
	// Step 1: options and config.
	elem, dtype := graphs.Float, opts.DType
	switch dtype {
	case "", "f32":
		dtype = "f32"
	case "f16":
		elem = graphs.Float16
	default:
		return nil, fmt.Errorf("export: dtype %q: want f32 or f16", opts.DType)
	}
	cfg, err := readConfig(src)
	if err != nil {
		return nil, err
	}
	fam, err := selectFamily(cfg)
	if err != nil {
		return nil, err
	}
	ids, err := readTokenIDs(src, cfg)
	if err != nil {
		return nil, err
	}

	// Step 2: open the weights (memory-mapped) and build the graph, checking every tensor.
	st, err := safetensors.OpenDir(src)
	if err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	defer st.Close()
	m := fam.manifest()
	g := newGB(m.ModelType)
	plan := newWeightPlan(g.Builder, st, elem)
	if err := fam.build(g, plan, opts.WithPast); err != nil {
		return nil, err
	}
	plan.reportUnused()
	if opts.Hidden {
		if g.hidden == "" {
			return nil, fmt.Errorf("export: family %s does not mark its hidden state", m.Family)
		}
		g.Output(g.hidden, HiddenStates, graphs.Float, "batch", "seq", m.HiddenSize)
	}
	model := g.Model("panacea-toolkit export")
	for _, kv := range [][2]string{
		{"family", m.Family}, {"model_type", m.ModelType}, {"architecture", m.Architecture},
		{"with_past", strconv.FormatBool(opts.WithPast)}, {"dtype", dtype},
		{"hidden_states", strconv.FormatBool(opts.Hidden)},
		{"weight_layout", WeightLayoutInOut},
		{"weight_layout_doc", "linear weights are initializers named by their Hugging Face " +
			"names, stored (in, out) and applied as MatMul(x, W); f16 weights pass through " +
			"a Cast node named <name>.cast"},
	} {
		graphs.SetMetadata(model, kv[0], kv[1])
	}

	// Step 3: a staging folder beside dst, so that a failure leaves dst as it was.
	if err := prepareDir(src, dst); err != nil {
		return nil, err
	}
	final := dst
	dst, err = os.MkdirTemp(filepath.Dir(final), "."+filepath.Base(final)+".partial-")
	if err != nil {
		return nil, fmt.Errorf("export: staging folder: %w", err)
	}
	defer os.RemoveAll(dst)
	slog.Info("export: writing weights", "tensors", len(plan.jobs), "bytes", plan.totalBytes(),
		"dtype", dtype, "out", final)
	if err := plan.writeWeights(dst, opts.Progress); err != nil {
		return nil, err
	}
	copied, err := copyAuxFiles(src, dst)
	if err != nil {
		return nil, err
	}
	if err := graphs.Save(model, filepath.Join(dst, ModelFile)); err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}

	// Step 4: the manifest.
	abs, err := filepath.Abs(src)
	if err != nil {
		abs = src
	}
	m.WithPast, m.DType, m.WeightLayout = opts.WithPast, dtype, WeightLayoutInOut
	m.Hidden = opts.Hidden
	m.BOSTokenID, m.EOSTokenIDs, m.PadTokenID = ids.BOS, ids.EOS, ids.Pad
	if m.EOSTokenIDs == nil {
		m.EOSTokenIDs = []int{}
	}
	m.TokenizerFiles, m.Source = copied, abs
	m.ModelFile, m.DataFile = ModelFile, DataFile
	if err := m.write(dst); err != nil {
		return nil, err
	}
	if err := swapIn(dst, final); err != nil {
		return nil, err
	}
	return &m, nil
}

// swapIn replaces the files of an earlier export in final with those of the staging folder
// (each rename is atomic); model.onnx moves last, so a reader never pairs a new graph with
// old weights.
func swapIn(stage, final string) error {
	stale := append([]string{ManifestFile, ModelFile, DataFile, configFile,
		generationConfigFile}, tokenizerFiles...)
	for _, name := range stale {
		if err := os.Remove(filepath.Join(final, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("export: remove old %s: %w", name, err)
		}
	}
	entries, err := os.ReadDir(stage)
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	slices.SortFunc(entries, func(a, b fs.DirEntry) int {
		return cmp.Compare(boolInt(a.Name() == ModelFile), boolInt(b.Name() == ModelFile))
	})
	for _, e := range entries {
		if err := os.Rename(filepath.Join(stage, e.Name()), filepath.Join(final, e.Name())); err != nil {
			return fmt.Errorf("export: %w", err)
		}
	}
	return nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// prepareDir creates dst and checks that it is neither the source folder (the copies would
// overwrite the originals) nor a training run's folder.
func prepareDir(src, dst string) error {
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return fmt.Errorf("export: create output folder: %w", err)
	}
	si, err1 := os.Stat(src)
	di, err2 := os.Stat(dst)
	if err1 == nil && err2 == nil && os.SameFile(si, di) {
		return fmt.Errorf("export: output folder %s is the source folder", dst)
	}
	for _, run := range []string{"panacea.json", "checkpoint.json", "reward.json"} {
		if _, err := os.Stat(filepath.Join(dst, run)); err == nil {
			return fmt.Errorf("export: output folder %s holds a training run (%s): choose "+
				"another folder", dst, run)
		}
	}
	return nil
}

// copyAuxFiles copies config.json, generation_config.json and the tokenizer files that
// exist from src to dst and returns the names of the tokenizer files copied.
func copyAuxFiles(src, dst string) ([]string, error) {
	tokenizers := []string{}
	names := append([]string{configFile, generationConfigFile}, tokenizerFiles...)
	for i, name := range names {
		data, err := os.ReadFile(filepath.Join(src, name))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("export: copy %s: %w", name, err)
		}
		if err := graphs.WriteFileAtomic(filepath.Join(dst, name), data); err != nil {
			return nil, fmt.Errorf("export: copy %s: %w", name, err)
		}
		if i >= 2 {
			tokenizers = append(tokenizers, name)
		}
	}
	if len(tokenizers) == 0 {
		slog.Warn("export: no tokenizer files in the source folder", "src", src)
	}
	return tokenizers, nil
}
