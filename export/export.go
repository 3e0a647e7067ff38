package export

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
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
	model := g.Model("panacea-toolkit export")
	for _, kv := range [][2]string{
		{"family", m.Family}, {"model_type", m.ModelType}, {"architecture", m.Architecture},
		{"with_past", strconv.FormatBool(opts.WithPast)}, {"dtype", dtype},
		{"weight_layout", WeightLayoutInOut},
		{"weight_layout_doc", "linear weights are initializers named by their Hugging Face " +
			"names, stored (in, out) and applied as MatMul(x, W); f16 weights pass through " +
			"a Cast node named <name>.cast"},
	} {
		graphs.SetMetadata(model, kv[0], kv[1])
	}

	// Step 3: the output folder. Old results go first so none survives a failure.
	if err := prepareDir(src, dst); err != nil {
		return nil, err
	}
	slog.Info("export: writing weights", "tensors", len(plan.jobs), "bytes", plan.totalBytes(),
		"dtype", dtype, "out", dst)
	if err := plan.writeWeights(dst, opts.Progress); err != nil {
		os.Remove(filepath.Join(dst, DataFile))
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
	m.BOSTokenID, m.EOSTokenIDs, m.PadTokenID = ids.BOS, ids.EOS, ids.Pad
	if m.EOSTokenIDs == nil {
		m.EOSTokenIDs = []int{}
	}
	m.TokenizerFiles, m.Source = copied, abs
	m.ModelFile, m.DataFile = ModelFile, DataFile
	if err := m.write(dst); err != nil {
		return nil, err
	}
	return &m, nil
}

// prepareDir creates dst and removes the files of an earlier export from it (also the
// tokenizer files, so that none of another model survives). dst must not be the source
// folder (the copies would overwrite the originals).
func prepareDir(src, dst string) error {
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return fmt.Errorf("export: create output folder: %w", err)
	}
	si, err1 := os.Stat(src)
	di, err2 := os.Stat(dst)
	if err1 == nil && err2 == nil && os.SameFile(si, di) {
		return fmt.Errorf("export: output folder %s is the source folder", dst)
	}
	stale := append([]string{ManifestFile, ModelFile, DataFile, configFile,
		generationConfigFile}, tokenizerFiles...)
	for _, name := range stale {
		if err := os.Remove(filepath.Join(dst, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("export: remove old %s: %w", name, err)
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
