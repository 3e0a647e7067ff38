package safetensors

import (
	"bytes"
	"errors"
	"maps"
	"slices"
	"testing"
)

// FuzzParseHeader feeds arbitrary bytes to OpenBytes. A malformed image must give a
// *FormatError (never a panic or another error); an accepted one must give consistent
// tensors and survive an Encode/OpenBytes round trip unchanged. Seeds are below and in
// testdata/fuzz/FuzzParseHeader (among them a header claiming 1 TB).
func FuzzParseHeader(f *testing.F) {
	var good bytes.Buffer
	a, _ := FromFloat32("a", BF16, []int64{2, 2}, []float32{1, -2, 0.5, 3})
	b := Tensor{Name: "b", DType: I8, Shape: []int64{3}, Data: []byte{1, 2, 3}}
	if err := Encode(&good, []Tensor{a, b}, map[string]string{"format": "pt"}); err != nil {
		f.Fatal(err)
	}
	f.Add(good.Bytes())
	f.Add(withPrefix(1<<40, `{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`))
	f.Add(image(`{"w":{"dtype":"F16","shape":[2],"data_offsets":[0,4]}}`, 4))
	f.Add(image(`{"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},`+
		`"b":{"dtype":"U8","shape":[2],"data_offsets":[2,4]}}`, 4))
	f.Add(image(`{"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,0]}}`, 0))
	f.Add(image(`{"__metadata__":{"k":"v"}}`, 0))
	f.Add([]byte{})

	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := OpenBytes("fuzz", data)
		if err != nil {
			var fe *FormatError
			if !errors.As(err, &fe) {
				t.Fatalf("error %v (%T) is not a *FormatError", err, err)
			}
			return
		}
		var tensors []Tensor
		for _, name := range file.Names() {
			info, err := file.Info(name)
			if err != nil {
				t.Fatal(err)
			}
			raw, err := file.Bytes(name)
			if err != nil {
				t.Fatal(err)
			}
			if int64(len(raw)) != info.NumElements()*info.DType.Size() {
				t.Fatalf("%s: %d bytes for %v of %s", name, len(raw), info.Shape, info.DType)
			}
			if info.DType.IsFloat() {
				v, err := file.Float32(name)
				if err != nil || int64(len(v)) != info.NumElements() {
					t.Fatalf("%s: Float32 gave %d values, %v", name, len(v), err)
				}
			}
			tensors = append(tensors, Tensor{Name: name, DType: info.DType, Shape: info.Shape, Data: raw})
		}
		var again bytes.Buffer
		if err := Encode(&again, tensors, file.Metadata()); err != nil {
			t.Fatalf("re-encode an accepted file: %v", err)
		}
		back, err := OpenBytes("again", again.Bytes())
		if err != nil {
			t.Fatalf("re-open: %v", err)
		}
		if !slices.Equal(back.Names(), file.Names()) || !maps.Equal(back.Metadata(), file.Metadata()) {
			t.Fatalf("round trip changed names or metadata")
		}
		for _, tensor := range tensors {
			info, _ := back.Info(tensor.Name)
			raw, _ := back.Bytes(tensor.Name)
			if info.DType != tensor.DType || !slices.Equal(info.Shape, tensor.Shape) ||
				!bytes.Equal(raw, tensor.Data) {
				t.Fatalf("round trip changed %s", tensor.Name)
			}
		}
	})
}
