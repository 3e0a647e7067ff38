package graphs_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	onnx "github.com/yalue/onnxruntime_go"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/panacea-go/toolkit/graphs"
	"github.com/panacea-go/toolkit/graphs/onnxpb"
	"github.com/panacea-go/toolkit/internal/testutil"
	"github.com/panacea-go/toolkit/ort"
)

// affine builds y = x·W + b with W and b as initializers.
func affine(w, bias []float32) *onnxpb.ModelProto {
	b := graphs.NewBuilder("affine")
	x := b.Input("x", graphs.Float, "batch", 2)
	wn := b.Initializer(graphs.FloatTensor("W", []int64{2, 3}, w))
	bn := b.Initializer(graphs.FloatTensor("b", []int64{3}, bias))
	y := b.Op("Add", b.Op("MatMul", x, wn), bn)
	b.Output(y, "y", graphs.Float, "batch", 3)
	return b.Model("test")
}

func TestExternalDataRunsInORT(t *testing.T) {
	testutil.InitORT(t)
	dir := t.TempDir()
	m := affine([]float32{1, 2, 3, 4, 5, 6}, []float32{0.5, -1, 2})

	// Move both initializers to a side file.
	w, err := graphs.NewExternalWriter(dir, "model.onnx.data")
	if err != nil {
		t.Fatal(err)
	}
	for _, init := range m.Graph.Initializer {
		if err := w.Add(init, init.RawData); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "model.onnx")
	if err := graphs.Save(m, path); err != nil {
		t.Fatal(err)
	}

	// Load back: tensors stay external and read back identically.
	back, err := graphs.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	vals, err := graphs.TensorFloats(back.Graph.Initializer[0], dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(vals) != 6 || vals[5] != 6 {
		t.Fatalf("external W read back as %v", vals)
	}

	s, err := ort.NewSession(path, nil, []string{"x"}, []string{"y"}, ort.Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	x, _ := onnx.NewTensor(onnx.NewShape(1, 2), []float32{1, 1})
	y, _ := onnx.NewEmptyTensor[float32](onnx.NewShape(1, 3))
	defer ort.DestroyAll(x, y)
	if err := s.Run([]onnx.Value{x}, []onnx.Value{y}); err != nil {
		t.Fatal(err)
	}
	want := []float32{1 + 4 + 0.5, 2 + 5 - 1, 3 + 6 + 2}
	for i, v := range y.GetData() {
		if v != want[i] {
			t.Fatalf("y = %v, want %v", y.GetData(), want)
		}
	}
}

func TestUnknownFieldsSurviveRoundTrip(t *testing.T) {
	m := affine([]float32{1, 2, 3, 4, 5, 6}, []float32{0, 0, 0})
	data, err := graphs.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	// Append fields this subset does not declare: ModelProto.functions (25) and
	// ModelProto.training_info (20), as raw length-delimited bytes.
	var extra []byte
	extra = protowire.AppendTag(extra, 25, protowire.BytesType)
	extra = protowire.AppendBytes(extra, []byte("function-bytes"))
	extra = protowire.AppendTag(extra, 20, protowire.BytesType)
	extra = protowire.AppendBytes(extra, []byte{0x0a, 0x00})
	data = append(data, extra...)

	m2, err := graphs.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	out, err := graphs.Marshal(m2)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(out, extra[:len(extra)-4]) || !bytes.Contains(out, []byte("function-bytes")) {
		t.Fatal("unknown fields lost in a round trip")
	}
	if !proto.Equal(m, m2) && len(m2.ProtoReflect().GetUnknown()) == 0 {
		t.Fatal("parsed model differs and kept no unknown fields")
	}
}

func TestExternalLocationMustStayInFolder(t *testing.T) {
	for _, loc := range []string{"../secret.bin", "/etc/passwd", "a/../../b", ""} {
		m := affine([]float32{1, 2, 3, 4, 5, 6}, []float32{0, 0, 0})
		init := m.Graph.Initializer[0]
		init.RawData = nil
		init.DataLocation = onnxpb.TensorProto_EXTERNAL
		init.ExternalData = []*onnxpb.StringStringEntryProto{{Key: "location", Value: loc}}
		data, err := graphs.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		_, err = graphs.Parse(data)
		if err == nil {
			t.Fatalf("location %q accepted", loc)
		}
		if !strings.Contains(err.Error(), `"W"`) {
			t.Errorf("error %q does not name the tensor", err)
		}
	}
	if _, err := graphs.NewExternalWriter(t.TempDir(), "../x.data"); err == nil {
		t.Fatal("writer accepted an escaping location")
	}
}

func TestExternalRangeChecked(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "w.bin"), make([]byte, 8), 0o644); err != nil {
		t.Fatal(err)
	}
	tensor := &onnxpb.TensorProto{Name: "W", DataType: graphs.Float, Dims: []int64{4},
		DataLocation: onnxpb.TensorProto_EXTERNAL,
		ExternalData: []*onnxpb.StringStringEntryProto{
			{Key: "location", Value: "w.bin"}, {Key: "offset", Value: "4"},
			{Key: "length", Value: "16"}}}
	if _, err := graphs.ReadTensorData(tensor, dir); err == nil {
		t.Fatal("read beyond the end of the external file")
	}
}

func TestHalfConversions(t *testing.T) {
	cases := []struct {
		bits uint16
		f    float32
	}{
		{0x3c00, 1}, {0xc000, -2}, {0x7bff, 65504}, {0x0001, 5.9604645e-08},
		{0x0400, 6.1035156e-05}, {0x3555, 0.33325195}, {0x0000, 0},
	}
	for _, c := range cases {
		if got := graphs.HalfToFloat(c.bits); got != c.f {
			t.Errorf("HalfToFloat(%#04x) = %g, want %g", c.bits, got, c.f)
		}
		if got := graphs.FloatToHalf(c.f); got != c.bits {
			t.Errorf("FloatToHalf(%g) = %#04x, want %#04x", c.f, got, c.bits)
		}
	}
	// Ties round to even: 1 + 2^-11 lies halfway between 1 and 1 + 2^-10.
	if got := graphs.FloatToHalf(1 + 1.0/2048); got != 0x3c00 {
		t.Errorf("tie rounded to %#04x, want 0x3c00", got)
	}
	if got := graphs.FloatToHalf(1e6); got != 0x7c00 {
		t.Errorf("overflow gave %#04x, want +inf", got)
	}
}

func FuzzParse(f *testing.F) {
	seed, _ := graphs.Marshal(affine([]float32{1, 2, 3, 4, 5, 6}, []float32{0, 0, 0}))
	f.Add(seed)
	f.Add([]byte{})
	f.Add([]byte{0x3a, 0xff, 0xff, 0xff, 0xff, 0x0f}) // graph field claiming ~4 GiB
	f.Add(seed[:len(seed)/2])
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := graphs.Parse(data)
		if err != nil {
			return
		}
		if _, err := graphs.Marshal(m); err != nil {
			t.Fatalf("parsed model does not marshal: %v", err)
		}
	})
}
