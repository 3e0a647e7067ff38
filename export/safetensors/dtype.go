package safetensors

import (
	"errors"
	"fmt"
	"math/bits"
)

// DType is the element type of a tensor, spelled as in a safetensors header.
type DType string

// The element types this package knows. Bytes works for all of them; Float32 and Float16
// convert only the floating-point ones.
const (
	F64  DType = "F64"  // IEEE 754 binary64
	F32  DType = "F32"  // IEEE 754 binary32
	F16  DType = "F16"  // IEEE 754 binary16
	BF16 DType = "BF16" // bfloat16
	I64  DType = "I64"  // signed 64-bit integer
	I32  DType = "I32"  // signed 32-bit integer
	I16  DType = "I16"  // signed 16-bit integer
	I8   DType = "I8"   // signed 8-bit integer
	U64  DType = "U64"  // unsigned 64-bit integer
	U32  DType = "U32"  // unsigned 32-bit integer
	U16  DType = "U16"  // unsigned 16-bit integer
	U8   DType = "U8"   // unsigned 8-bit integer
	BOOL DType = "BOOL" // one byte per element, 0 or 1

	F8E4M3 DType = "F8_E4M3" // 8-bit float, 4 exponent bits (stored and copied, not converted)
	F8E5M2 DType = "F8_E5M2" // 8-bit float, 5 exponent bits (stored and copied, not converted)
)

var dtypeSizes = map[DType]int64{
	F64: 8, F32: 4, F16: 2, BF16: 2,
	I64: 8, I32: 4, I16: 2, I8: 1,
	U64: 8, U32: 4, U16: 2, U8: 1,
	BOOL: 1, F8E4M3: 1, F8E5M2: 1,
}

// Size returns the number of bytes of one element, or 0 for an unknown dtype.
func (d DType) Size() int64 { return dtypeSizes[d] }

// Valid reports whether d is a dtype this package knows.
func (d DType) Valid() bool { return dtypeSizes[d] != 0 }

// IsFloat reports whether Float32 and Float16 can convert tensors of dtype d.
func (d DType) IsFloat() bool { return d == F64 || d == F32 || d == F16 || d == BF16 }

var errOverflow = errors.New("size overflows int64")

// numElements returns the product of shape, checking each dimension is non-negative and the
// product fits in int64.
func numElements(shape []int64) (int64, error) {
	n := uint64(1)
	for i, d := range shape {
		if d < 0 {
			return 0, fmt.Errorf("dimension %d is negative (%d)", i, d)
		}
		hi, lo := bits.Mul64(n, uint64(d))
		if hi != 0 || lo > 1<<63-1 {
			return 0, fmt.Errorf("shape %v: %w", shape, errOverflow)
		}
		n = lo
	}
	return int64(n), nil
}

// byteSize returns product(shape) times the element size of d, overflow-checked.
func byteSize(d DType, shape []int64) (int64, error) {
	n, err := numElements(shape)
	if err != nil {
		return 0, err
	}
	size := d.Size()
	if size == 0 {
		return 0, fmt.Errorf("unknown dtype %q", string(d))
	}
	hi, lo := bits.Mul64(uint64(n), uint64(size))
	if hi != 0 || lo > 1<<63-1 {
		return 0, fmt.Errorf("shape %v of %s: %w", shape, d, errOverflow)
	}
	return int64(lo), nil
}
