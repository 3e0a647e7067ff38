package export

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/panacea-go/toolkit/graphs"
)

// Names of the files in an export folder.
const (
	ModelFile    = "model.onnx"      // the graph
	DataFile     = "model.onnx.data" // every weight initializer (external data)
	ManifestFile = "toolkit.json"    // the Manifest
)

// Names of the graph's inputs and outputs (see the package doc for their shapes).
const (
	InputIDs      = "input_ids"      // int64 (batch, seq)
	AttentionMask = "attention_mask" // int64 (batch, past + seq)
	Logits        = "logits"         // float32 (batch, seq, vocab)
	// HiddenStates is the final-norm output, float32 (batch, seq, hidden), only with
	// Options.Hidden.
	HiddenStates = "hidden_states"
)

// WeightLayoutInOut is the Manifest.WeightLayout (and model metadata "weight_layout") of
// this exporter: every linear weight is stored (in, out) and applied as MatMul(x, W).
const WeightLayoutInOut = "in_out"

// tokenizerFiles are copied from the source folder when they exist.
var tokenizerFiles = []string{
	"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.json",
	"merges.txt",
}

// Manifest describes an export folder; it is stored as dst/toolkit.json so that later
// commands (generate, train, eval) need only that folder.
type Manifest struct {
	Family       string `json:"family"`       // "llama" or "gpt2"
	ModelType    string `json:"model_type"`   // config.json model_type: llama, mistral, qwen2, gpt2
	Architecture string `json:"architecture"` // config.json architectures[0]

	NumLayers        int `json:"num_layers"`
	HiddenSize       int `json:"hidden_size"`
	IntermediateSize int `json:"intermediate_size"` // MLP width
	NumHeads         int `json:"num_heads"`
	NumKVHeads       int `json:"num_kv_heads"` // == NumHeads without GQA
	HeadDim          int `json:"head_dim"`
	VocabSize        int `json:"vocab_size"`
	MaxPositions     int `json:"max_positions"`
	// SlidingWindow is the attention window of the layers that use one (0: none).
	SlidingWindow  int  `json:"sliding_window,omitempty"`
	TiedEmbeddings bool `json:"tied_embeddings"`

	WithPast     bool   `json:"with_past"`     // graph has past_key_values / present
	DType        string `json:"dtype"`         // stored weight type: "f32" or "f16"
	WeightLayout string `json:"weight_layout"` // WeightLayoutInOut
	// Hidden is true when the graph also outputs hidden_states (Options.Hidden).
	Hidden bool `json:"hidden,omitempty"`

	BOSTokenID  *int  `json:"bos_token_id"`
	EOSTokenIDs []int `json:"eos_token_ids"`
	PadTokenID  *int  `json:"pad_token_id"`

	// TokenizerFiles are the tokenizer files copied into the folder (names only).
	TokenizerFiles []string `json:"tokenizer_files"`
	// Source is the absolute path of the Hugging Face folder exported.
	Source string `json:"source"`
	// ModelFile and DataFile name the graph and its weights inside the folder.
	ModelFile string `json:"model_file"`
	DataFile  string `json:"data_file"`
}

// PastInputs returns the past key/value input names in graph order:
// past_key_values.0.key, past_key_values.0.value, past_key_values.1.key, ...
func (m *Manifest) PastInputs() []string { return kvNames("past_key_values", m.NumLayers) }

// PresentOutputs returns the present key/value output names in graph order.
func (m *Manifest) PresentOutputs() []string { return kvNames("present", m.NumLayers) }

// InputNames returns every graph input: input_ids, attention_mask, then the past inputs
// when the model has them.
func (m *Manifest) InputNames() []string {
	names := []string{InputIDs, AttentionMask}
	if m.WithPast {
		names = append(names, m.PastInputs()...)
	}
	return names
}

// OutputNames returns every graph output: logits, then the present outputs when the model
// has them, then hidden_states when it has that.
func (m *Manifest) OutputNames() []string {
	names := []string{Logits}
	if m.WithPast {
		names = append(names, m.PresentOutputs()...)
	}
	if m.Hidden {
		names = append(names, HiddenStates)
	}
	return names
}

func kvNames(prefix string, layers int) []string {
	names := make([]string, 0, 2*layers)
	for i := range layers {
		names = append(names, fmt.Sprintf("%s.%d.key", prefix, i),
			fmt.Sprintf("%s.%d.value", prefix, i))
	}
	return names
}

// ReadManifest reads dir/toolkit.json.
func ReadManifest(dir string) (*Manifest, error) {
	data, err := os.ReadFile(filepath.Join(dir, ManifestFile))
	if err != nil {
		return nil, fmt.Errorf("export: read manifest: %w", err)
	}
	m := &Manifest{}
	if err := json.Unmarshal(data, m); err != nil {
		return nil, fmt.Errorf("export: %s: %w", filepath.Join(dir, ManifestFile), err)
	}
	if m.Family == "" || m.NumLayers <= 0 || m.VocabSize <= 0 {
		return nil, fmt.Errorf("export: %s: family, num_layers or vocab_size missing",
			filepath.Join(dir, ManifestFile))
	}
	if m.ModelFile == "" {
		m.ModelFile = ModelFile
	}
	if m.DataFile == "" {
		m.DataFile = DataFile
	}
	return m, nil
}

// write stores the manifest as dir/toolkit.json, atomically.
func (m *Manifest) write(dir string) error {
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fmt.Errorf("export: encode manifest: %w", err)
	}
	path := filepath.Join(dir, ManifestFile)
	if err := graphs.WriteFileAtomic(path, append(data, '\n')); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	return nil
}
