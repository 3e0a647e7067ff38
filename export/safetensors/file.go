package safetensors

import (
	"errors"
	"fmt"
	"os"
	"slices"
)

// ErrNotFound is returned (wrapped) when a tensor name is not in a file or model.
var ErrNotFound = errors.New("tensor not found")

// ErrClosed is returned (wrapped) when a closed File or Model is used.
var ErrClosed = errors.New("file is closed")

// Source is what both a single [File] and a sharded [Model] offer: read access to named
// tensors. The exporter takes a Source so that it does not care how a model is stored.
type Source interface {
	// Names returns the tensor names, sorted.
	Names() []string
	// Has reports whether the tensor exists.
	Has(name string) bool
	// Info returns the tensor's dtype, shape and byte range.
	Info(name string) (TensorInfo, error)
	// Bytes returns the tensor's raw little-endian bytes, a read-only view into the mapping.
	Bytes(name string) ([]byte, error)
	// Float32 converts a float tensor (F32, F16, BF16, F64) to a new []float32.
	Float32(name string) ([]float32, error)
	// Float16 converts a float tensor to a new slice of binary16 bits.
	Float16(name string) ([]uint16, error)
	// Close releases the mappings; views returned by Bytes become invalid.
	Close() error
}

var (
	_ Source = (*File)(nil)
	_ Source = (*Model)(nil)
)

// File is one open safetensors file. Its data is memory-mapped read-only; the methods are
// safe for concurrent use, but Close must not race with them.
type File struct {
	path  string
	data  []byte // the whole file: the mapping, or caller-owned bytes for OpenBytes
	unmap func([]byte) error
	hdr   *header
}

// Open memory-maps the safetensors file at path and validates its header. The file's bytes
// are not read into the Go heap; only the header is decoded. Call Close when done. As with
// any mapping, truncating the file while it is open makes later reads fault.
func Open(path string) (*File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("safetensors: open: %w", err)
	}
	defer f.Close() // the mapping outlives the descriptor
	return openFile(f, path)
}

// openFile maps the already open f; name is used in errors.
func openFile(f *os.File, name string) (*File, error) {
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("safetensors: stat %s: %w", name, err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("safetensors: %s is not a regular file", name)
	}
	if st.Size() < 8 {
		return nil, &FormatError{File: name, Msg: fmt.Sprintf(
			"file is %d bytes, shorter than the 8-byte header length", st.Size())}
	}
	data, unmap, err := mapFile(f, st.Size())
	if err != nil {
		return nil, fmt.Errorf("safetensors: map %s: %w", name, err)
	}
	hdr, err := parseHeader(name, data)
	if err != nil {
		_ = unmap(data)
		return nil, err
	}
	return &File{path: name, data: data, unmap: unmap, hdr: hdr}, nil
}

// OpenBytes reads a safetensors image held in memory; name is used in errors. The File
// keeps data (no copy): the caller must not modify it while the File is in use.
func OpenBytes(name string, data []byte) (*File, error) {
	hdr, err := parseHeader(name, data)
	if err != nil {
		return nil, err
	}
	return &File{path: name, data: data, hdr: hdr}, nil
}

// Path returns the path (or name) the file was opened with.
func (f *File) Path() string { return f.path }

// Names returns the tensor names in sorted order (a new slice).
func (f *File) Names() []string {
	if f.hdr == nil {
		return nil
	}
	return slices.Clone(f.hdr.names)
}

// Metadata returns a copy of the header's "__metadata__" map (empty if absent).
func (f *File) Metadata() map[string]string {
	out := map[string]string{}
	if f.hdr != nil {
		for k, v := range f.hdr.metadata {
			out[k] = v
		}
	}
	return out
}

// Has reports whether the file holds a tensor called name.
func (f *File) Has(name string) bool {
	if f.hdr == nil {
		return false
	}
	_, ok := f.hdr.tensors[name]
	return ok
}

// Info returns the dtype, shape and byte range of the tensor called name.
func (f *File) Info(name string) (TensorInfo, error) {
	if f.hdr == nil {
		return TensorInfo{}, fmt.Errorf("safetensors: %s: %w", f.path, ErrClosed)
	}
	t, ok := f.hdr.tensors[name]
	if !ok {
		return TensorInfo{}, fmt.Errorf("safetensors: %s: %q: %w", f.path, name, ErrNotFound)
	}
	t.Shape = slices.Clone(t.Shape)
	return t, nil
}

// Bytes returns the raw little-endian bytes of the tensor called name. The slice is a view
// into the file's read-only mapping, valid until Close; writing to it crashes the program.
func (f *File) Bytes(name string) ([]byte, error) {
	t, err := f.Info(name)
	if err != nil {
		return nil, err
	}
	start := f.hdr.dataStart
	return f.data[start+t.Begin : start+t.End : start+t.End], nil
}

// Float32 returns the tensor called name converted to float32 (from F32, F16, BF16 or
// F64), in a new slice in row-major order. Only this tensor is allocated.
func (f *File) Float32(name string) ([]float32, error) {
	raw, dt, err := f.floatBytes(name)
	if err != nil {
		return nil, err
	}
	return decodeFloat32(dt, raw)
}

// Float16 returns the tensor called name as binary16 bits in a new slice: F16 is copied,
// F32, BF16 and F64 are rounded to nearest even. The exporter uses it for f16 initializers.
func (f *File) Float16(name string) ([]uint16, error) {
	raw, dt, err := f.floatBytes(name)
	if err != nil {
		return nil, err
	}
	return decodeFloat16(dt, raw)
}

func (f *File) floatBytes(name string) ([]byte, DType, error) {
	t, err := f.Info(name)
	if err != nil {
		return nil, "", err
	}
	if !t.DType.IsFloat() {
		return nil, "", fmt.Errorf("safetensors: %s: %q has dtype %s, want F32, F16, BF16 or F64",
			f.path, name, t.DType)
	}
	raw, err := f.Bytes(name)
	return raw, t.DType, err
}

// Close unmaps the file. Slices returned by Bytes must not be used afterwards. Closing
// twice is harmless.
func (f *File) Close() error {
	if f.hdr == nil {
		return nil
	}
	data, unmap := f.data, f.unmap
	f.data, f.unmap, f.hdr = nil, nil, nil
	if unmap != nil {
		if err := unmap(data); err != nil {
			return fmt.Errorf("safetensors: unmap %s: %w", f.path, err)
		}
	}
	return nil
}
