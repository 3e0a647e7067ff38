package graphs

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/panacea-go/toolkit/graphs/onnxpb"
)

// Element types, as ONNX numbers them (TensorProto.DataType).
const (
	Float   = int32(onnxpb.TensorProto_FLOAT)
	Float16 = int32(onnxpb.TensorProto_FLOAT16)
	BFloat  = int32(onnxpb.TensorProto_BFLOAT16)
	Double  = int32(onnxpb.TensorProto_DOUBLE)
	Int32   = int32(onnxpb.TensorProto_INT32)
	Int64   = int32(onnxpb.TensorProto_INT64)
	Bool    = int32(onnxpb.TensorProto_BOOL)
)

// ElemSize is the size in bytes of one element of an ONNX element type, or 0 if unknown.
func ElemSize(elem int32) int {
	switch onnxpb.TensorProto_DataType(elem) {
	case onnxpb.TensorProto_DOUBLE, onnxpb.TensorProto_INT64, onnxpb.TensorProto_UINT64,
		onnxpb.TensorProto_COMPLEX64:
		return 8
	case onnxpb.TensorProto_FLOAT, onnxpb.TensorProto_INT32, onnxpb.TensorProto_UINT32:
		return 4
	case onnxpb.TensorProto_FLOAT16, onnxpb.TensorProto_BFLOAT16, onnxpb.TensorProto_INT16,
		onnxpb.TensorProto_UINT16:
		return 2
	case onnxpb.TensorProto_INT8, onnxpb.TensorProto_UINT8, onnxpb.TensorProto_BOOL:
		return 1
	case onnxpb.TensorProto_COMPLEX128:
		return 16
	}
	return 0
}

// NumElements is the product of dims (1 for a scalar).
func NumElements(dims []int64) int64 {
	n := int64(1)
	for _, d := range dims {
		n *= d
	}
	return n
}

// RawTensor makes a tensor from little-endian bytes.
func RawTensor(name string, elem int32, dims []int64, raw []byte) *onnxpb.TensorProto {
	return &onnxpb.TensorProto{Name: name, DataType: elem, Dims: dims, RawData: raw}
}

// FloatTensor makes a float32 tensor (data copied into raw_data).
func FloatTensor(name string, dims []int64, data []float32) *onnxpb.TensorProto {
	raw := make([]byte, 4*len(data))
	for i, v := range data {
		binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(v))
	}
	return RawTensor(name, Float, dims, raw)
}

// DoubleTensor makes a float64 tensor.
func DoubleTensor(name string, dims []int64, data []float64) *onnxpb.TensorProto {
	raw := make([]byte, 8*len(data))
	for i, v := range data {
		binary.LittleEndian.PutUint64(raw[8*i:], math.Float64bits(v))
	}
	return RawTensor(name, Double, dims, raw)
}

// Int64Tensor makes an int64 tensor.
func Int64Tensor(name string, dims []int64, data []int64) *onnxpb.TensorProto {
	raw := make([]byte, 8*len(data))
	for i, v := range data {
		binary.LittleEndian.PutUint64(raw[8*i:], uint64(v))
	}
	return RawTensor(name, Int64, dims, raw)
}

// TensorFloats returns a float tensor's values as float32, whatever its storage: raw_data or
// float_data/double_data, element type float, float16, bfloat16 or double. External tensors
// are read from dir.
func TensorFloats(t *onnxpb.TensorProto, dir string) ([]float32, error) {
	n := NumElements(t.GetDims())
	switch {
	case len(t.GetFloatData()) > 0:
		return t.GetFloatData(), nil
	case len(t.GetDoubleData()) > 0:
		out := make([]float32, len(t.GetDoubleData()))
		for i, v := range t.GetDoubleData() {
			out[i] = float32(v)
		}
		return out, nil
	}
	raw, err := ReadTensorData(t, dir)
	if err != nil {
		return nil, err
	}
	size := ElemSize(t.GetDataType())
	if size == 0 || int64(len(raw)) != n*int64(size) {
		return nil, fmt.Errorf("graphs: tensor %q: %d bytes for %d elements of type %d",
			t.GetName(), len(raw), n, t.GetDataType())
	}
	out := make([]float32, n)
	switch t.GetDataType() {
	case Float:
		for i := range out {
			out[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
		}
	case Double:
		for i := range out {
			out[i] = float32(math.Float64frombits(binary.LittleEndian.Uint64(raw[8*i:])))
		}
	case Float16:
		for i := range out {
			out[i] = HalfToFloat(binary.LittleEndian.Uint16(raw[2*i:]))
		}
	case BFloat:
		for i := range out {
			out[i] = math.Float32frombits(uint32(binary.LittleEndian.Uint16(raw[2*i:])) << 16)
		}
	default:
		return nil, fmt.Errorf("graphs: tensor %q: element type %d is not a float type",
			t.GetName(), t.GetDataType())
	}
	return out, nil
}

// TensorInt64s returns an integer tensor's values as int64 (int64 or int32 storage).
func TensorInt64s(t *onnxpb.TensorProto) ([]int64, error) {
	if len(t.GetInt64Data()) > 0 {
		return t.GetInt64Data(), nil
	}
	if len(t.GetInt32Data()) > 0 {
		out := make([]int64, len(t.GetInt32Data()))
		for i, v := range t.GetInt32Data() {
			out[i] = int64(v)
		}
		return out, nil
	}
	raw := t.GetRawData()
	n := NumElements(t.GetDims())
	switch t.GetDataType() {
	case Int64:
		if int64(len(raw)) != 8*n {
			break
		}
		out := make([]int64, n)
		for i := range out {
			out[i] = int64(binary.LittleEndian.Uint64(raw[8*i:]))
		}
		return out, nil
	case Int32:
		if int64(len(raw)) != 4*n {
			break
		}
		out := make([]int64, n)
		for i := range out {
			out[i] = int64(int32(binary.LittleEndian.Uint32(raw[4*i:])))
		}
		return out, nil
	}
	return nil, fmt.Errorf("graphs: tensor %q: not an inline int32/int64 tensor of %d elements",
		t.GetName(), n)
}

// HalfToFloat converts IEEE 754 binary16 bits to float32 (subnormals, inf and NaN included).
func HalfToFloat(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	frac := uint32(h) & 0x3ff
	switch {
	case exp == 0x1f:
		return math.Float32frombits(sign | 0x7f800000 | frac<<13)
	case exp == 0 && frac == 0:
		return math.Float32frombits(sign)
	case exp == 0:
		// Subnormal: value = frac · 2^-24.
		v := float32(frac) * (1.0 / (1 << 24))
		if sign != 0 {
			v = -v
		}
		return v
	}
	return math.Float32frombits(sign | (exp+112)<<23 | frac<<13)
}

// FloatToHalf converts float32 to IEEE 754 binary16 bits, rounding to nearest even.
func FloatToHalf(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int32(b>>23) & 0xff
	frac := b & 0x7fffff
	if exp == 0xff { // inf or NaN
		if frac != 0 {
			return sign | 0x7e00
		}
		return sign | 0x7c00
	}
	e := exp - 127 + 15
	if e >= 0x1f {
		return sign | 0x7c00
	}
	if e <= 0 {
		if e < -10 {
			return sign
		}
		// Subnormal half: shift the mantissa (with its implicit bit) into place.
		m := frac | 0x800000
		shift := uint32(14 - e)
		half := m >> shift
		rem := m & (1<<shift - 1)
		mid := uint32(1) << (shift - 1)
		if rem > mid || (rem == mid && half&1 == 1) {
			half++
		}
		return sign | uint16(half)
	}
	half := uint32(e)<<10 | frac>>13
	rem := frac & 0x1fff
	if rem > 0x1000 || (rem == 0x1000 && half&1 == 1) {
		half++ // may carry into the exponent, which is the correct rounding
	}
	return sign | uint16(half)
}
