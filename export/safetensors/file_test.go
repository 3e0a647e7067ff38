package safetensors

import (
	"bytes"
	"encoding/binary"
	"errors"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// allDTypes lists every dtype with a sample tensor shape for round trips.
var allDTypes = []DType{F64, F32, F16, BF16, I64, I32, I16, I8, U64, U32, U16, U8, BOOL, F8E4M3, F8E5M2}

// patternBytes returns n deterministic bytes (valid BOOLs when dt is BOOL).
func patternBytes(dt DType, n int64) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*37 + 11)
		if dt == BOOL {
			b[i] &= 1
		}
	}
	return b
}

func TestWriteReadRoundTrip(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "all.safetensors")
	var tensors []Tensor
	for i, dt := range allDTypes {
		shape := []int64{2, int64(i%3 + 1), 3}
		size, _ := byteSize(dt, shape)
		// Names in reverse dtype order so that Write has to sort them.
		name := string(rune('z'-i)) + "." + string(dt)
		tensors = append(tensors, Tensor{Name: name, DType: dt, Shape: shape, Data: patternBytes(dt, size)})
	}
	tensors = append(tensors,
		Tensor{Name: "scalar", DType: F32, Shape: []int64{}, Data: []byte{0, 0, 0x80, 0x3f}},
		Tensor{Name: "empty", DType: F16, Shape: []int64{0, 4}, Data: nil})
	meta := map[string]string{"format": "pt", "note": "round \"trip\""}
	if err := Write(path, tensors, meta); err != nil {
		t.Fatalf("Write: %v", err)
	}

	f, err := Open(path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer f.Close()
	if got := f.Metadata(); !maps.Equal(got, meta) {
		t.Errorf("Metadata = %v, want %v", got, meta)
	}
	names := f.Names()
	if !slices.IsSorted(names) || len(names) != len(tensors) {
		t.Errorf("Names = %v: want %d sorted names", names, len(tensors))
	}
	if f.hdr.dataStart%8 != 0 {
		t.Errorf("data section starts at %d, want a multiple of 8", f.hdr.dataStart)
	}
	var prevEnd int64
	for _, name := range names { // packed in name order, no gaps
		info, _ := f.Info(name)
		if info.Begin != prevEnd {
			t.Errorf("%s begins at %d, want %d", name, info.Begin, prevEnd)
		}
		prevEnd = info.End
	}
	for _, want := range tensors {
		info, err := f.Info(want.Name)
		if err != nil {
			t.Fatalf("Info(%s): %v", want.Name, err)
		}
		if info.DType != want.DType || !slices.Equal(info.Shape, want.Shape) {
			t.Errorf("%s: got %s %v, want %s %v", want.Name, info.DType, info.Shape, want.DType, want.Shape)
		}
		got, err := f.Bytes(want.Name)
		if err != nil || !bytes.Equal(got, want.Data) {
			t.Errorf("%s: Bytes differ (err %v)", want.Name, err)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("folder holds %d entries after Write, want 1 (no temp files)", len(entries))
	}
}

func TestFloatRoundTrip(t *testing.T) {
	vals := []float32{0, 1, -2.5, 0.1, 65504, 1e-6, -3.0517578125e-05, 1234.5678}
	for _, dt := range []DType{F32, F16, BF16, F64} {
		t.Run(string(dt), func(t *testing.T) {
			tensor, err := FromFloat32("w", dt, []int64{2, 4}, vals)
			if err != nil {
				t.Fatal(err)
			}
			var buf bytes.Buffer
			if err := Encode(&buf, []Tensor{tensor}, nil); err != nil {
				t.Fatal(err)
			}
			f, err := OpenBytes("mem", buf.Bytes())
			if err != nil {
				t.Fatal(err)
			}
			got, err := f.Float32("w")
			if err != nil {
				t.Fatal(err)
			}
			h, err := f.Float16("w")
			if err != nil {
				t.Fatal(err)
			}
			for i, v := range vals {
				want := v // F32 and F64 are exact for float32 inputs
				switch dt {
				case F16:
					want = F16ToF32(F32ToF16(v))
				case BF16:
					want = BF16ToF32(F32ToBF16(v))
				}
				if got[i] != want {
					t.Errorf("Float32[%d] = %g, want %g", i, got[i], want)
				}
				if h[i] != F32ToF16(want) {
					t.Errorf("Float16[%d] = %#04x, want %#04x", i, h[i], F32ToF16(want))
				}
			}
			if (dt == F16 || dt == BF16) && got[3] == 0.1 {
				t.Errorf("%s rounding not applied: %v", dt, got)
			}
		})
	}
}

func TestFileErrors(t *testing.T) {
	tensors := []Tensor{
		{Name: "ids", DType: I64, Shape: []int64{2}, Data: make([]byte, 16)},
		{Name: "w", DType: F32, Shape: []int64{1}, Data: make([]byte, 4)},
	}
	var buf bytes.Buffer
	if err := Encode(&buf, tensors, nil); err != nil {
		t.Fatal(err)
	}
	f, err := OpenBytes("mem", buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Float32("ids"); err == nil {
		t.Error("Float32 of an I64 tensor: want an error")
	}
	if _, err := f.Info("nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Info(missing) = %v, want ErrNotFound", err)
	}
	if f.Has("nope") || !f.Has("w") {
		t.Error("Has gives wrong answers")
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Bytes("w"); !errors.Is(err, ErrClosed) {
		t.Errorf("Bytes after Close = %v, want ErrClosed", err)
	}
	if err := f.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := Open(filepath.Join(t.TempDir(), "missing.safetensors")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Open(missing) = %v, want ErrNotExist", err)
	}
}

func TestWriteRejects(t *testing.T) {
	f32 := func(name string, n int) Tensor {
		return Tensor{Name: name, DType: F32, Shape: []int64{int64(n)}, Data: make([]byte, 4*n)}
	}
	tests := []struct {
		name    string
		tensors []Tensor
	}{
		{"duplicate name", []Tensor{f32("a", 1), f32("a", 2)}},
		{"empty name", []Tensor{f32("", 1)}},
		{"reserved name", []Tensor{f32(metadataKey, 1)}},
		{"unknown dtype", []Tensor{{Name: "a", DType: "F12", Shape: []int64{1}, Data: make([]byte, 4)}}},
		{"short data", []Tensor{{Name: "a", DType: F32, Shape: []int64{3}, Data: make([]byte, 8)}}},
		{"negative dim", []Tensor{{Name: "a", DType: F32, Shape: []int64{-1}, Data: nil}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "x.safetensors")
			if err := Write(path, tt.tensors, nil); err == nil {
				t.Fatal("Write: want an error")
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 0 {
				t.Errorf("failed Write left %d entries", len(entries))
			}
		})
	}
	if _, err := FromFloat32("a", F32, []int64{3}, []float32{1, 2}); err == nil {
		t.Error("FromFloat32 with 2 values for shape [3]: want an error")
	}
	if _, err := FromFloat32("a", I32, []int64{1}, []float32{1}); err == nil {
		t.Error("FromFloat32 to I32: want an error")
	}
}

func TestWriteReplacesAtomically(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ckpt.safetensors")
	for step, v := range []float32{1, 2} {
		tensor, _ := FromFloat32("s", F32, []int64{1}, []float32{v})
		if err := Write(path, []Tensor{tensor}, map[string]string{"step": string(rune('0' + step))}); err != nil {
			t.Fatal(err)
		}
	}
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got, _ := f.Float32("s")
	if got[0] != 2 || f.Metadata()["step"] != "1" {
		t.Errorf("after two writes: s = %v, metadata %v; want the second write", got, f.Metadata())
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o644 {
		t.Errorf("mode = %v, want 0644", st.Mode().Perm())
	}
}

// TestOpenHugeHeaderClaim opens real files whose length prefix is absurd: a 1 TB claim in
// a tiny file, and a sparse file whose claim fits in the file but is over MaxHeaderSize.
// Open must refuse both without reading or allocating the claimed header.
func TestOpenHugeHeaderClaim(t *testing.T) {
	tests := []struct {
		name  string
		claim uint64
		size  int64 // file size; the bytes after the prefix are a sparse hole
	}{
		{"1 TB claim in a 16-byte file", 1 << 40, 16},
		{"claim over the cap in a sparse file", MaxHeaderSize + 1, MaxHeaderSize + 64},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "big.safetensors")
			fh, err := os.Create(path)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := fh.Write(binary.LittleEndian.AppendUint64(nil, tt.claim)); err != nil {
				t.Fatal(err)
			}
			if err := fh.Truncate(tt.size); err != nil {
				t.Fatal(err)
			}
			fh.Close()
			_, err = Open(path)
			var fe *FormatError
			if !errors.As(err, &fe) || fe.File != path || !strings.Contains(fe.Msg, "exceeds") {
				t.Fatalf("Open = %v, want a FormatError for %s about the length", err, path)
			}
		})
	}
}

func TestNumElementsOverflow(t *testing.T) {
	if _, err := numElements([]int64{1 << 32, 1 << 32}); err == nil {
		t.Error("2^64 elements: want overflow error")
	}
	if n, err := numElements([]int64{1 << 31, 1 << 31}); err != nil || n != 1<<62 {
		t.Errorf("2^62 elements = %d, %v", n, err)
	}
	if _, err := byteSize(F64, []int64{1 << 61}); err == nil {
		t.Error("2^61 F64 elements: want overflow error")
	}
	if n, err := numElements([]int64{math.MaxInt64, 0}); err != nil || n != 0 {
		t.Errorf("[max, 0] = %d, %v; want 0", n, err)
	}
}
