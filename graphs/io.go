package graphs

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"google.golang.org/protobuf/proto"

	"github.com/panacea-go/toolkit/graphs/onnxpb"
)

// MaxProtoSize is the largest serialized model protobuf can hold (2 GiB − 1). Larger models
// must keep their initializers in external data.
const MaxProtoSize = 1<<31 - 1

// Load reads an ONNX model file. Initializers stored as external data stay external: their
// bytes are read on demand with [ReadTensorData]. Every external location is checked to lie
// inside the model's folder.
func Load(path string) (*onnxpb.ModelProto, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("graphs: load: %w", err)
	}
	m, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("graphs: load %s: %w", path, err)
	}
	return m, nil
}

// Parse decodes a serialized model and checks its external data references. Unknown
// protobuf fields are kept, so a parse/marshal round trip loses nothing.
func Parse(data []byte) (*onnxpb.ModelProto, error) {
	m := &onnxpb.ModelProto{}
	if err := proto.Unmarshal(data, m); err != nil {
		return nil, fmt.Errorf("not an ONNX model: %w", err)
	}
	if m.GetGraph() == nil {
		return nil, errors.New("model has no graph")
	}
	for _, t := range m.GetGraph().GetInitializer() {
		if !IsExternal(t) {
			continue
		}
		if _, err := ParseExternal(t); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// Marshal serializes a model deterministically.
func Marshal(m *onnxpb.ModelProto) ([]byte, error) {
	data, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("graphs: marshal: %w", err)
	}
	if len(data) > MaxProtoSize {
		return nil, fmt.Errorf("graphs: model is %d bytes, over protobuf's 2 GiB limit: "+
			"store initializers as external data", len(data))
	}
	return data, nil
}

// Save writes a model atomically (a temporary file in the same folder, fsync, rename).
// Initializers must already be inline or refer to external data beside path.
func Save(m *onnxpb.ModelProto, path string) error {
	data, err := Marshal(m)
	if err != nil {
		return err
	}
	return WriteFileAtomic(path, data)
}

// WriteFileAtomic writes data to a temporary file beside path, syncs it, and renames it over
// path, so that a reader never sees a half-written file.
func WriteFileAtomic(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("graphs: write %s: %w", path, err)
	}
	tmp := f.Name()
	err = f.Chmod(0o644)
	if err == nil {
		_, err = f.Write(data)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("graphs: write %s: %w", path, err)
	}
	return nil
}

// IsExternal reports whether a tensor's bytes live in an external file.
func IsExternal(t *onnxpb.TensorProto) bool {
	return t.GetDataLocation() == onnxpb.TensorProto_EXTERNAL
}

// External is a parsed external-data reference of a tensor.
type External struct {
	Location string // path relative to the model's folder
	Offset   int64
	Length   int64 // -1 when not given: the rest of the file
}

// ParseExternal reads a tensor's external_data entries. The location must be a relative
// path that stays inside the model's folder.
func ParseExternal(t *onnxpb.TensorProto) (External, error) {
	ext := External{Length: -1}
	for _, kv := range t.GetExternalData() {
		var err error
		switch kv.GetKey() {
		case "location":
			ext.Location = kv.GetValue()
		case "offset":
			ext.Offset, err = strconv.ParseInt(kv.GetValue(), 10, 64)
		case "length":
			ext.Length, err = strconv.ParseInt(kv.GetValue(), 10, 64)
		}
		if err != nil || ext.Offset < 0 || ext.Length < -1 {
			return ext, fmt.Errorf("tensor %q: bad external data %s=%q", t.GetName(),
				kv.GetKey(), kv.GetValue())
		}
	}
	if err := checkLocation(ext.Location); err != nil {
		return ext, fmt.Errorf("tensor %q: %w", t.GetName(), err)
	}
	return ext, nil
}

func checkLocation(loc string) error {
	if loc == "" {
		return errors.New("external data without a location")
	}
	clean := filepath.Clean(filepath.FromSlash(loc))
	if filepath.IsAbs(clean) || clean == ".." || strings.HasPrefix(clean, ".."+string(filepath.Separator)) {
		return fmt.Errorf("external data location %q escapes the model's folder", loc)
	}
	return nil
}

// ReadTensorData returns a tensor's raw little-endian bytes: raw_data when inline, or the
// referenced range of the external file under dir (the model's folder).
func ReadTensorData(t *onnxpb.TensorProto, dir string) ([]byte, error) {
	if !IsExternal(t) {
		return t.GetRawData(), nil
	}
	ext, err := ParseExternal(t)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(filepath.Join(dir, filepath.FromSlash(ext.Location)))
	if err != nil {
		return nil, fmt.Errorf("graphs: tensor %q: %w", t.GetName(), err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("graphs: tensor %q: %w", t.GetName(), err)
	}
	n := ext.Length
	if n < 0 {
		n = st.Size() - ext.Offset
	}
	if ext.Offset > st.Size() || n < 0 || n > st.Size()-ext.Offset {
		return nil, fmt.Errorf("graphs: tensor %q: external range [%d, +%d) beyond %s (%d bytes)",
			t.GetName(), ext.Offset, n, ext.Location, st.Size())
	}
	buf := make([]byte, n)
	if _, err := f.ReadAt(buf, ext.Offset); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("graphs: tensor %q: %w", t.GetName(), err)
	}
	return buf, nil
}

// ExternalWriter streams initializer bytes into one side file and points the tensors at it,
// so that an exporter holds at most one tensor's bytes at a time.
type ExternalWriter struct {
	f        *os.File
	location string
	offset   int64
}

// externalAlign is the alignment of each tensor in the side file (ORT can then mmap it).
const externalAlign = 4096

// NewExternalWriter creates (truncates) dir/location for writing tensor data.
func NewExternalWriter(dir, location string) (*ExternalWriter, error) {
	if err := checkLocation(location); err != nil {
		return nil, fmt.Errorf("graphs: %w", err)
	}
	f, err := os.Create(filepath.Join(dir, location))
	if err != nil {
		return nil, fmt.Errorf("graphs: external data: %w", err)
	}
	return &ExternalWriter{f: f, location: location}, nil
}

// Add appends data to the side file and turns t into an external tensor referring to it.
// t's raw_data is cleared.
func (w *ExternalWriter) Add(t *onnxpb.TensorProto, data []byte) error {
	if pad := (externalAlign - w.offset%externalAlign) % externalAlign; pad != 0 {
		if _, err := w.f.Write(make([]byte, pad)); err != nil {
			return fmt.Errorf("graphs: external data: %w", err)
		}
		w.offset += pad
	}
	if _, err := w.f.Write(data); err != nil {
		return fmt.Errorf("graphs: external data for %q: %w", t.GetName(), err)
	}
	t.RawData = nil
	t.DataLocation = onnxpb.TensorProto_EXTERNAL
	t.ExternalData = []*onnxpb.StringStringEntryProto{
		{Key: "location", Value: w.location},
		{Key: "offset", Value: strconv.FormatInt(w.offset, 10)},
		{Key: "length", Value: strconv.Itoa(len(data))},
	}
	w.offset += int64(len(data))
	return nil
}

// Close syncs and closes the side file.
func (w *ExternalWriter) Close() error {
	err := w.f.Sync()
	if cerr := w.f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("graphs: external data: %w", err)
	}
	return nil
}
