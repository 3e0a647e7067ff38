package trainer

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/panacea-go/toolkit/export"
	"github.com/panacea-go/toolkit/export/safetensors"
	"github.com/panacea-go/toolkit/graphs"
	"github.com/panacea-go/toolkit/graphs/onnxpb"
)

// RunInfo is panacea.json in a run folder: what a later command needs to know about the
// trained model beyond the export manifest.
type RunInfo struct {
	Dimensions []string `json:"dimensions"`
	BaseModel  string   `json:"base_model"`
	Config     Config   `json:"config"`
}

// ReadRunInfo reads dir/panacea.json.
func ReadRunInfo(dir string) (*RunInfo, error) {
	js, err := os.ReadFile(filepath.Join(dir, RunFile))
	if err != nil {
		return nil, fmt.Errorf("trainer: %s is not a training run folder: %w", dir, err)
	}
	var ri RunInfo
	if err := json.Unmarshal(js, &ri); err != nil {
		return nil, fmt.Errorf("trainer: %s: %w", filepath.Join(dir, RunFile), err)
	}
	return &ri, nil
}

// writeModel writes the deployable λ-input model (adapter baked in as initializers) and the
// files that make the run folder usable by generate and eval.
func (r *run) writeModel(man *export.Manifest) error {
	return writeRunModel(r.cfg, man, r.params)
}

// writeRunModel writes cfg.Out's deployable model with the trained adapter params, the
// adapter file, panacea.json and the export's tokenizer and manifest files.
func writeRunModel(cfg *Config, man *export.Manifest, params []*Param) error {
	model, _, err := loadPolicy(cfg, man, false)
	if err != nil {
		return err
	}
	if err := setInitializers(model, params); err != nil {
		return err
	}
	if err := saveWithExternal(model, cfg.Model, cfg.Out); err != nil {
		return err
	}
	var ts []safetensors.Tensor
	for _, p := range params {
		t, err := safetensors.FromFloat32(p.Name, safetensors.F32, p.Shape, p.Data)
		if err != nil {
			return err
		}
		ts = append(ts, t)
	}
	if err := safetensors.Write(filepath.Join(cfg.Out, AdapterFile), ts, nil); err != nil {
		return err
	}
	files := append([]string{export.ManifestFile, "config.json", "generation_config.json"},
		man.TokenizerFiles...)
	for _, f := range files {
		if err := copyFile(filepath.Join(cfg.Model, f), filepath.Join(cfg.Out, f)); err != nil {
			return err
		}
	}
	ri := RunInfo{Dimensions: cfg.DimNames(), BaseModel: cfg.Model, Config: *cfg}
	js, err := json.MarshalIndent(ri, "", "  ")
	if err != nil {
		return err
	}
	if err := graphs.WriteFileAtomic(filepath.Join(cfg.Out, RunFile), js); err != nil {
		return err
	}
	slog.Info("wrote λ-input model", "dir", cfg.Out, "dimensions", ri.Dimensions)
	return nil
}

// inlineLimit is the size below which initializers stay inside model.onnx: shape
// constants must (ONNX Runtime reads them during shape inference), and tiny ones gain
// nothing from a side file.
const inlineLimit = 1024

// saveWithExternal writes model to dst/model.onnx with the bytes of every float initializer
// of at least inlineLimit bytes in dst/model.onnx.data; initializers that are external in
// srcDir are streamed from there one tensor at a time.
func saveWithExternal(model *onnxpb.ModelProto, srcDir, dst string) error {
	w, err := graphs.NewExternalWriter(dst, ModelFile+".data")
	if err != nil {
		return err
	}
	for _, t := range model.GetGraph().GetInitializer() {
		data, err := graphs.ReadTensorData(t, srcDir)
		if err != nil {
			w.Close()
			return err
		}
		if len(data) < inlineLimit || t.GetDataType() == graphs.Int64 {
			if graphs.IsExternal(t) { // a small tensor external in the source: bring it inline
				t.DataLocation, t.ExternalData, t.RawData = 0, nil, data
			}
			continue
		}
		if err := w.Add(t, data); err != nil {
			w.Close()
			return err
		}
	}
	if err := w.Close(); err != nil {
		return err
	}
	return graphs.Save(model, filepath.Join(dst, ModelFile))
}

// copyFile copies src to dst; a missing src is not an error (optional files).
func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("trainer: %w", err)
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return fmt.Errorf("trainer: %w", err)
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("trainer: copy %s: %w", src, err)
	}
	return out.Close()
}
