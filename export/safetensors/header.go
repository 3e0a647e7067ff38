package safetensors

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"unicode/utf8"
)

// MaxHeaderSize is the largest header this package accepts (100 MiB). Real headers are a few
// hundred kilobytes at most; the cap keeps a corrupt length from driving a huge allocation.
const MaxHeaderSize = 100 << 20

// metadataKey is the reserved header key that holds the file's string metadata.
const metadataKey = "__metadata__"

// FormatError reports a malformed safetensors file or index. File is the path (or name) of
// the file, Tensor the header key involved ("" when the problem is not about one tensor).
type FormatError struct {
	File   string
	Tensor string
	Msg    string
	Err    error // underlying cause, if any
}

// Error formats the error as "safetensors: FILE: tensor "NAME": MSG: CAUSE".
func (e *FormatError) Error() string {
	var b strings.Builder
	b.WriteString("safetensors: ")
	b.WriteString(e.File)
	if e.Tensor != "" {
		fmt.Fprintf(&b, ": tensor %q", e.Tensor)
	}
	b.WriteString(": ")
	b.WriteString(e.Msg)
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap returns the underlying cause.
func (e *FormatError) Unwrap() error { return e.Err }

// TensorInfo describes one tensor of a file.
type TensorInfo struct {
	Name  string
	DType DType
	Shape []int64
	// Begin and End delimit the tensor's bytes in the data section: [Begin, End).
	Begin, End int64
}

// NumElements returns the product of the shape (1 for a scalar).
func (t TensorInfo) NumElements() int64 {
	n, _ := numElements(t.Shape) // validated when the header was parsed
	return n
}

// header is a parsed and validated safetensors header.
type header struct {
	tensors   map[string]TensorInfo
	names     []string // sorted
	metadata  map[string]string
	dataStart int64 // offset of the data section in the file: 8 + N
}

// headerEntry is one tensor's JSON entry. Pointers tell a missing field from an empty one.
type headerEntry struct {
	DType   *string  `json:"dtype"`
	Shape   *[]int64 `json:"shape"`
	Offsets *[]int64 `json:"data_offsets"`
}

// parseHeader parses and validates the header of the safetensors image data (the whole
// file). file names the file in errors. Nothing in the header is trusted before it is
// checked against len(data).
func parseHeader(file string, data []byte) (*header, error) {
	ferr := func(tensor, msg string, err error) error {
		return &FormatError{File: file, Tensor: tensor, Msg: msg, Err: err}
	}
	short := func(format string, args ...any) error {
		return &FormatError{File: file, Msg: fmt.Sprintf(format, args...)}
	}

	// Step 1: the length prefix, checked against the file size and the cap before any use.
	if len(data) < 8 {
		return nil, short("file is %d bytes, shorter than the 8-byte header length", len(data))
	}
	n := binary.LittleEndian.Uint64(data[:8])
	avail := uint64(len(data) - 8)
	if n > avail {
		return nil, short("header length %d exceeds the %d bytes after the prefix", n, avail)
	}
	if n > MaxHeaderSize {
		return nil, short("header length %d exceeds the %d-byte limit", n, MaxHeaderSize)
	}
	if n < 2 {
		return nil, short("header length %d is too short for a JSON object", n)
	}
	raw := data[8 : 8+n]
	if !utf8.Valid(raw) {
		return nil, ferr("", "header is not valid UTF-8", nil)
	}
	h := &header{
		tensors:   map[string]TensorInfo{},
		metadata:  map[string]string{},
		dataStart: int64(8 + n),
	}
	dataLen := int64(len(data)) - h.dataStart

	// Step 2: walk the top-level object key by key, so duplicate keys are caught.
	dec := json.NewDecoder(bytes.NewReader(raw))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, ferr("", "header is not a JSON object", err)
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, ferr("", "invalid header JSON", err)
		}
		key, ok := tok.(string)
		if !ok {
			return nil, ferr("", "invalid header JSON: key is not a string", nil)
		}
		if seen[key] {
			return nil, ferr(key, "duplicate key in header", nil)
		}
		seen[key] = true
		if key == metadataKey {
			if err := dec.Decode(&h.metadata); err != nil {
				return nil, ferr(key, "metadata must map strings to strings", err)
			}
			if h.metadata == nil { // "__metadata__": null
				h.metadata = map[string]string{}
			}
			continue
		}
		var e headerEntry
		if err := dec.Decode(&e); err != nil {
			return nil, ferr(key, "invalid tensor entry", err)
		}
		info, err := checkEntry(file, key, e, dataLen)
		if err != nil {
			return nil, err
		}
		h.tensors[key] = info
		h.names = append(h.names, key)
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return nil, ferr("", "invalid header JSON", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, ferr("", "unexpected content after the header object", err)
	}

	// Step 3: no two non-empty tensors may share bytes.
	slices.Sort(h.names)
	if err := checkOverlaps(file, h); err != nil {
		return nil, err
	}
	return h, nil
}

// checkEntry validates the entry of tensor name against a data section of dataLen bytes.
func checkEntry(file, name string, e headerEntry, dataLen int64) (TensorInfo, error) {
	bad := func(msg string, err error) (TensorInfo, error) {
		return TensorInfo{}, &FormatError{File: file, Tensor: name, Msg: msg, Err: err}
	}
	if name == "" {
		return bad("empty tensor name", nil)
	}
	if e.DType == nil || e.Shape == nil || e.Offsets == nil {
		return bad("entry needs dtype, shape and data_offsets", nil)
	}
	dt := DType(*e.DType)
	if !dt.Valid() {
		return bad(fmt.Sprintf("unknown dtype %q", *e.DType), nil)
	}
	off := *e.Offsets
	if len(off) != 2 {
		return bad(fmt.Sprintf("data_offsets has %d values, want 2", len(off)), nil)
	}
	begin, end := off[0], off[1]
	if begin < 0 || end < begin || end > dataLen {
		return bad(fmt.Sprintf("data_offsets [%d, %d] outside the %d-byte data section",
			begin, end, dataLen), nil)
	}
	size, err := byteSize(dt, *e.Shape)
	if err != nil {
		return bad("bad shape", err)
	}
	if end-begin != size {
		return bad(fmt.Sprintf("data_offsets [%d, %d] span %d bytes, shape %v of %s needs %d",
			begin, end, end-begin, *e.Shape, dt, size), nil)
	}
	return TensorInfo{Name: name, DType: dt, Shape: *e.Shape, Begin: begin, End: end}, nil
}

// checkOverlaps reports the first pair of non-empty tensors whose byte ranges intersect.
func checkOverlaps(file string, h *header) error {
	infos := make([]TensorInfo, 0, len(h.tensors))
	for _, name := range h.names {
		if t := h.tensors[name]; t.End > t.Begin {
			infos = append(infos, t)
		}
	}
	slices.SortFunc(infos, func(a, b TensorInfo) int {
		if c := cmp.Compare(a.Begin, b.Begin); c != 0 {
			return c
		}
		return strings.Compare(a.Name, b.Name)
	})
	for i := 1; i < len(infos); i++ {
		prev, cur := infos[i-1], infos[i]
		if cur.Begin < prev.End {
			return &FormatError{File: file, Tensor: cur.Name, Msg: fmt.Sprintf(
				"data_offsets [%d, %d] overlap tensor %q [%d, %d]",
				cur.Begin, cur.End, prev.Name, prev.Begin, prev.End)}
		}
	}
	return nil
}
