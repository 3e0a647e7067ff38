package safetensors

import (
	"encoding/binary"
	"errors"
	"strings"
	"testing"
)

// image builds a safetensors file from a header string and dataLen zero bytes of data.
func image(hdr string, dataLen int) []byte {
	b := binary.LittleEndian.AppendUint64(nil, uint64(len(hdr)))
	b = append(b, hdr...)
	return append(b, make([]byte, dataLen)...)
}

// withPrefix builds a file whose length prefix claims n bytes, followed by rest.
func withPrefix(n uint64, rest string) []byte {
	return append(binary.LittleEndian.AppendUint64(nil, n), rest...)
}

func TestParseHeaderValid(t *testing.T) {
	hdr := `{"__metadata__":{"format":"pt"},` +
		`"b":{"dtype":"F32","shape":[2,3],"data_offsets":[8,32]},` +
		`"a":{"dtype":"BF16","shape":[4],"data_offsets":[0,8]},` +
		`"s":{"dtype":"I64","shape":[],"data_offsets":[32,40]},` +
		`"z":{"dtype":"U8","shape":[0,7],"data_offsets":[8,8]}}   `
	h, err := parseHeader("ok", image(hdr, 40))
	if err != nil {
		t.Fatalf("parseHeader: %v", err)
	}
	if got := strings.Join(h.names, ","); got != "a,b,s,z" {
		t.Errorf("names = %s, want a,b,s,z", got)
	}
	if b := h.tensors["b"]; b.DType != F32 || b.Begin != 8 || b.End != 32 || b.NumElements() != 6 {
		t.Errorf("b = %+v", b)
	}
	if s := h.tensors["s"]; s.NumElements() != 1 {
		t.Errorf("scalar has %d elements, want 1", s.NumElements())
	}
	if h.metadata["format"] != "pt" || h.dataStart != int64(8+len(hdr)) {
		t.Errorf("metadata %v, dataStart %d", h.metadata, h.dataStart)
	}
}

func TestParseHeaderMalformed(t *testing.T) {
	entry := func(dtype, shape, offsets string) string {
		return `{"dtype":` + dtype + `,"shape":` + shape + `,"data_offsets":` + offsets + `}`
	}
	w := func(body string) string { return `{"w":` + body + `}` }
	tests := []struct {
		name   string
		data   []byte
		tensor string // the tensor the error must name ("" for file-level errors)
		msg    string // a fragment of the message
	}{
		{"empty file", nil, "", "shorter than"},
		{"truncated prefix", []byte{1, 0, 0}, "", "shorter than"},
		{"header longer than file", withPrefix(100, `{}`), "", "exceeds the 2 bytes"},
		{"1 TB header claim", withPrefix(1<<40, `{"w":{}}`), "", "exceeds"},
		{"max uint64 header claim", withPrefix(1<<64-1, `{}`), "", "exceeds"},
		{"zero header", withPrefix(0, ``), "", "too short"},
		{"truncated header JSON", image(`{"w":{"dtype":"F32"`, 4), "w", "invalid tensor entry"},
		{"bad JSON", image(`{"w":[1,}`, 4), "w", "invalid tensor entry"},
		{"not an object", image(`[1, 2]`, 0), "", "not a JSON object"},
		{"invalid UTF-8", image("{\"\xff\":{}}", 0), "", "UTF-8"},
		{"trailing content", image(`{} {}`, 0), "", "after the header"},
		{"duplicate key", image(`{"w":`+entry(`"U8"`, `[1]`, `[0,1]`)+`,"w":`+
			entry(`"U8"`, `[1]`, `[1,2]`)+`}`, 2), "w", "duplicate"},
		{"entry not an object", image(w(`7`), 0), "w", "invalid tensor entry"},
		{"entry null", image(w(`null`), 0), "w", "needs dtype"},
		{"missing dtype", image(w(`{"shape":[1],"data_offsets":[0,4]}`), 4), "w", "needs dtype"},
		{"missing offsets", image(w(`{"dtype":"F32","shape":[1]}`), 4), "w", "needs dtype"},
		{"unknown dtype", image(w(entry(`"F12"`, `[1]`, `[0,4]`)), 4), "w", "unknown dtype"},
		{"dtype not a string", image(w(entry(`4`, `[1]`, `[0,4]`)), 4), "w", "invalid tensor entry"},
		{"three offsets", image(w(entry(`"F32"`, `[1]`, `[0,4,8]`)), 8), "w", "2"},
		{"negative offset", image(w(entry(`"F32"`, `[1]`, `[-4,0]`)), 4), "w", "outside"},
		{"begin after end", image(w(entry(`"F32"`, `[1]`, `[4,0]`)), 4), "w", "outside"},
		{"end past data", image(w(entry(`"F32"`, `[2]`, `[0,8]`)), 4), "w", "outside"},
		{"size mismatch", image(w(entry(`"F32"`, `[3]`, `[0,8]`)), 8), "w", "needs 12"},
		{"negative dim", image(w(entry(`"F32"`, `[-1,2]`, `[0,0]`)), 0), "w", "negative"},
		{"overflowing dims", image(w(entry(`"F32"`, `[4294967296,4294967296]`, `[0,0]`)), 0), "w", "overflow"},
		{"overflowing bytes", image(w(entry(`"F64"`, `[2305843009213693952]`, `[0,0]`)), 0), "w", "overflow"},
		{"dim beyond int64", image(w(entry(`"F32"`, `[1e30]`, `[0,4]`)), 4), "w", "invalid tensor entry"},
		{"fractional dim", image(w(entry(`"F32"`, `[1.5]`, `[0,4]`)), 4), "w", "invalid tensor entry"},
		{"overlapping", image(`{"a":`+entry(`"F32"`, `[2]`, `[0,8]`)+`,"b":`+
			entry(`"F32"`, `[2]`, `[4,12]`)+`}`, 12), "b", "overlap"},
		{"same range twice", image(`{"a":`+entry(`"U8"`, `[4]`, `[0,4]`)+`,"b":`+
			entry(`"U8"`, `[4]`, `[0,4]`)+`}`, 4), "b", "overlap"},
		{"metadata not strings", image(`{"__metadata__":{"n":1}}`, 0), metadataKey, "strings"},
		{"empty name", image(`{"":`+entry(`"U8"`, `[1]`, `[0,1]`)+`}`, 1), "", "empty tensor name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := parseHeader("bad.safetensors", tt.data)
			var fe *FormatError
			if !errors.As(err, &fe) {
				t.Fatalf("parseHeader = %v, %v; want a *FormatError", h, err)
			}
			if fe.File != "bad.safetensors" || fe.Tensor != tt.tensor {
				t.Errorf("error names file %q tensor %q, want bad.safetensors and %q", fe.File, fe.Tensor, tt.tensor)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("error %q does not mention %q", err, tt.msg)
			}
			if _, err := OpenBytes("bad.safetensors", tt.data); !errors.As(err, &fe) {
				t.Errorf("OpenBytes = %v, want a *FormatError", err)
			}
		})
	}
}
