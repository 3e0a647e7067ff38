package trainer

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/panacea-go/toolkit/export"
	"github.com/panacea-go/toolkit/graphs"
	"github.com/panacea-go/toolkit/graphs/lora"
	"github.com/panacea-go/toolkit/graphs/onnxpb"
)

// baseManifest reads the manifest of the base model folder, saying how to make one when it
// is missing.
func baseManifest(dir string) (*export.Manifest, error) {
	m, err := export.ReadManifest(dir)
	if err != nil {
		return nil, fmt.Errorf("trainer: model %s: %w (the model must be a folder written by "+
			"toolkit export)", dir, err)
	}
	return m, nil
}

// adapterConfig is the SVD-LoRA configuration of a run.
func adapterConfig(cfg *Config, man *export.Manifest, asInputs bool) (lora.Config, error) {
	targets := cfg.Targets
	if len(targets) == 0 {
		var err error
		targets, err = lora.DefaultTargets(man.ModelType)
		if err != nil {
			return lora.Config{}, fmt.Errorf("trainer: %w", err)
		}
	}
	return lora.Config{Targets: targets, Rank: cfg.Rank, Dims: len(cfg.Data.Dimensions),
		Alpha: cfg.Alpha, Seed: cfg.Seed, AsInputs: asInputs, Lambda: LambdaInput}, nil
}

// loadPolicy loads the base model of cfg and inserts the adapter.
func loadPolicy(cfg *Config, man *export.Manifest, asInputs bool) (*onnxpb.ModelProto, *lora.Report, error) {
	model, err := graphs.Load(filepath.Join(cfg.Model, ModelFile))
	if err != nil {
		return nil, nil, err
	}
	lc, err := adapterConfig(cfg, man, asInputs)
	if err != nil {
		return nil, nil, err
	}
	rep, err := lora.Apply(model, lc)
	if err != nil {
		return nil, nil, fmt.Errorf("trainer: %w", err)
	}
	return model, rep, nil
}

// adapterParams turns the adapter's initial values into trainable parameters. U and V get
// weight decay; σ and s (the singular values) do not.
func adapterParams(rep *lora.Report) []*Param {
	var params []*Param
	for _, l := range rep.Layers {
		if l.Shared {
			continue
		}
		for _, p := range l.Params() {
			params = append(params, &Param{Name: p.Name, Shape: p.Shape,
				Data:  append([]float32(nil), rep.Init[p.Name]...),
				Decay: strings.HasSuffix(p.Name, lora.SuffixU) || strings.HasSuffix(p.Name, lora.SuffixV)})
		}
	}
	return params
}

// setInitializers replaces the values of the named initializers (the adapter baked into a
// deployable model).
func setInitializers(model *onnxpb.ModelProto, params []*Param) error {
	byName := map[string]*onnxpb.TensorProto{}
	for _, t := range model.GetGraph().GetInitializer() {
		byName[t.GetName()] = t
	}
	for _, p := range params {
		t, ok := byName[p.Name]
		if !ok {
			return fmt.Errorf("trainer: deployable model has no initializer %q", p.Name)
		}
		if graphs.NumElements(t.GetDims()) != int64(len(p.Data)) {
			return fmt.Errorf("trainer: initializer %q has shape %v, the adapter %d values",
				p.Name, t.GetDims(), len(p.Data))
		}
		t.DataType, t.FloatData = graphs.Float, nil
		t.RawData = graphs.FloatTensor(p.Name, t.GetDims(), p.Data).GetRawData()
	}
	return nil
}
