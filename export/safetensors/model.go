package safetensors

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
)

// Standard file names of a Hugging Face model folder.
const (
	SingleFileName = "model.safetensors"
	IndexFileName  = "model.safetensors.index.json"
)

// Model is the tensors of a model folder, stored either in one file or in shards listed by
// an index. Each shard is mapped once. Like File, it is safe for concurrent reads.
type Model struct {
	dir    string
	files  []*File          // every open file, in shard-name order
	byName map[string]*File // tensor name → the file that holds it
	names  []string         // sorted
}

// OpenDir opens the weights of the Hugging Face model folder dir: the sharded layout
// (model.safetensors.index.json) when its index exists, else dir/model.safetensors.
//
// For a sharded folder every tensor of the index's weight_map must exist in the shard it
// names; shard names must stay inside dir (no "..", no absolute paths, no symlinks out).
// Tensors present in a shard but missing from the weight_map are ignored with a warning.
func OpenDir(dir string) (*Model, error) {
	indexPath := filepath.Join(dir, IndexFileName)
	if _, err := os.Stat(indexPath); err == nil {
		return openIndex(dir, indexPath)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("safetensors: stat %s: %w", indexPath, err)
	}
	single := filepath.Join(dir, SingleFileName)
	f, err := Open(single)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("safetensors: %s has neither %s nor %s: %w",
				dir, IndexFileName, SingleFileName, err)
		}
		return nil, err
	}
	m := &Model{dir: dir, files: []*File{f}, byName: map[string]*File{}, names: f.Names()}
	for _, name := range m.names {
		m.byName[name] = f
	}
	return m, nil
}

// indexFile is the JSON layout of model.safetensors.index.json. Metadata (total_size, ...)
// is not needed to load the tensors and is not decoded.
type indexFile struct {
	WeightMap map[string]string `json:"weight_map"`
}

// openIndex opens the shards listed by the index at indexPath, each once, through an
// os.Root so that no shard path can leave dir.
func openIndex(dir, indexPath string) (_ *Model, err error) {
	raw, err := os.ReadFile(indexPath)
	if err != nil {
		return nil, fmt.Errorf("safetensors: read index: %w", err)
	}
	var idx indexFile
	if err := json.Unmarshal(raw, &idx); err != nil {
		return nil, &FormatError{File: indexPath, Msg: "invalid index JSON", Err: err}
	}
	if len(idx.WeightMap) == 0 {
		return nil, &FormatError{File: indexPath, Msg: "weight_map is missing or empty"}
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("safetensors: open model folder: %w", err)
	}
	defer root.Close()

	m := &Model{dir: dir, byName: map[string]*File{}}
	defer func() {
		if err != nil {
			_ = m.Close() // unmap the shards opened so far
		}
	}()

	// Step 1: open every distinct shard once, in name order. firstTensor names, for each
	// shard, the first tensor (sorted) that the weight_map puts there, for error messages.
	tensors := make([]string, 0, len(idx.WeightMap))
	for tensor := range idx.WeightMap {
		tensors = append(tensors, tensor)
	}
	slices.Sort(tensors)
	firstTensor := map[string]string{}
	var shardNames []string
	for _, tensor := range tensors {
		shard := idx.WeightMap[tensor]
		if _, ok := firstTensor[shard]; ok {
			continue
		}
		if !filepath.IsLocal(shard) {
			return nil, &FormatError{File: indexPath, Tensor: tensor,
				Msg: fmt.Sprintf("shard path %q escapes the model folder", shard)}
		}
		firstTensor[shard] = tensor
		shardNames = append(shardNames, shard)
	}
	slices.Sort(shardNames)
	shards := map[string]*File{}
	for _, s := range shardNames {
		osf, err := root.Open(s)
		if err != nil {
			return nil, &FormatError{File: indexPath, Tensor: firstTensor[s],
				Msg: fmt.Sprintf("cannot open shard %q", s), Err: err}
		}
		f, err := openFile(osf, filepath.Join(dir, s))
		osf.Close()
		if err != nil {
			return nil, err
		}
		shards[s] = f
		m.files = append(m.files, f)
	}

	// Step 2: every tensor of the weight_map must be in its shard.
	for _, tensor := range tensors {
		shard := idx.WeightMap[tensor]
		f := shards[shard]
		if !f.Has(tensor) {
			return nil, &FormatError{File: indexPath, Tensor: tensor,
				Msg: fmt.Sprintf("weight_map points at shard %q, which has no such tensor", shard)}
		}
		m.byName[tensor] = f
	}
	m.names = tensors

	// Step 3: warn about shard tensors the index does not list (they are not loaded).
	for _, f := range m.files {
		for _, name := range f.hdr.names {
			if m.byName[name] != f {
				slog.Warn("safetensors: tensor in shard but not in weight_map; ignored",
					"tensor", name, "shard", f.path)
			}
		}
	}
	return m, nil
}

// Dir returns the folder the model was opened from.
func (m *Model) Dir() string { return m.dir }

// Files returns the paths of the open files (one, or every shard), sorted.
func (m *Model) Files() []string {
	out := make([]string, len(m.files))
	for i, f := range m.files {
		out[i] = f.path
	}
	return out
}

// Names returns every tensor name of the model, sorted (a new slice).
func (m *Model) Names() []string { return slices.Clone(m.names) }

// Has reports whether the model holds a tensor called name.
func (m *Model) Has(name string) bool {
	_, ok := m.byName[name]
	return ok
}

func (m *Model) file(name string) (*File, error) {
	if m.byName == nil {
		return nil, fmt.Errorf("safetensors: %s: %w", m.dir, ErrClosed)
	}
	f, ok := m.byName[name]
	if !ok {
		return nil, fmt.Errorf("safetensors: %s: %q: %w", m.dir, name, ErrNotFound)
	}
	return f, nil
}

// Info returns the dtype, shape and byte range (within its shard) of the tensor name.
func (m *Model) Info(name string) (TensorInfo, error) {
	f, err := m.file(name)
	if err != nil {
		return TensorInfo{}, err
	}
	return f.Info(name)
}

// Bytes returns the raw bytes of tensor name, a read-only view valid until Close.
func (m *Model) Bytes(name string) ([]byte, error) {
	f, err := m.file(name)
	if err != nil {
		return nil, err
	}
	return f.Bytes(name)
}

// Float32 returns tensor name converted to float32 in a new slice; see [File.Float32].
func (m *Model) Float32(name string) ([]float32, error) {
	f, err := m.file(name)
	if err != nil {
		return nil, err
	}
	return f.Float32(name)
}

// Float16 returns tensor name as binary16 bits in a new slice; see [File.Float16].
func (m *Model) Float16(name string) ([]uint16, error) {
	f, err := m.file(name)
	if err != nil {
		return nil, err
	}
	return f.Float16(name)
}

// Close unmaps every file. Closing twice is harmless.
func (m *Model) Close() error {
	var errs []error
	for _, f := range m.files {
		if err := f.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	m.files, m.byName, m.names = nil, nil, nil
	return errors.Join(errs...)
}
