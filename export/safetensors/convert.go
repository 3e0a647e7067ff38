package safetensors

import (
	"encoding/binary"
	"fmt"
	"math"
)

// F16ToF32 converts IEEE 754 binary16 bits to float32. The conversion is exact: subnormals
// become normal float32 values, infinities stay infinite, and NaNs keep their sign and
// payload (shifted into the top of the float32 mantissa).
func F16ToF32(h uint16) float32 {
	sign := uint32(h&0x8000) << 16
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h & 0x3ff)
	switch {
	case exp == 0x1f: // infinity or NaN
		return math.Float32frombits(sign | 0x7f800000 | mant<<13)
	case exp != 0: // normal: rebias the exponent from 15 to 127
		return math.Float32frombits(sign | (exp+127-15)<<23 | mant<<13)
	case mant == 0: // signed zero
		return math.Float32frombits(sign)
	default: // subnormal: mant · 2⁻²⁴, exact in float32
		f := float32(mant) * (1.0 / (1 << 24))
		return math.Float32frombits(sign | math.Float32bits(f))
	}
}

// F32ToF16 converts a float32 to IEEE 754 binary16 bits, rounding to nearest with ties to
// even. Values at or beyond 65520 in magnitude become infinity, values below half the
// smallest subnormal (2⁻²⁵) become signed zero, and NaNs stay NaN (made quiet).
func F32ToF16(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int32(b>>23) & 0xff
	mant := b & 0x7fffff

	if exp == 0xff {
		if mant == 0 {
			return sign | 0x7c00
		}
		return sign | 0x7c00 | 0x200 | uint16(mant>>13) // quiet NaN, top payload bits kept
	}
	e := exp - 127 + 15 // binary16 biased exponent
	if e >= 0x1f {
		return sign | 0x7c00
	}
	if e <= 0 {
		// Subnormal (or zero) result: value = full · 2^(exp−150) = q · 2⁻²⁴, so
		// q = full >> (14 − e) with the dropped bits rounded.
		shift := uint32(14 - e)
		if shift > 24 { // below 2⁻²⁵: rounds to zero
			return sign
		}
		full := mant | 0x800000
		return sign | uint16(roundShift(full, shift))
	}
	// Normal: drop 13 mantissa bits; a carry out of the mantissa bumps the exponent, and
	// a carry out of exponent 30 gives 0x7c00, infinity, as it should.
	return sign | uint16(uint32(e)<<10+roundShift(mant, 13))
}

// roundShift returns v >> s rounded to nearest, ties to even (1 ≤ s ≤ 31).
func roundShift(v, s uint32) uint32 {
	q := v >> s
	rem := v & (1<<s - 1)
	half := uint32(1) << (s - 1)
	if rem > half || (rem == half && q&1 == 1) {
		q++
	}
	return q
}

// BF16ToF32 converts bfloat16 bits to float32 (exact: bfloat16 is the top half of binary32).
func BF16ToF32(h uint16) float32 { return math.Float32frombits(uint32(h) << 16) }

// F32ToBF16 converts a float32 to bfloat16 bits, rounding to nearest with ties to even.
// NaNs stay NaN (made quiet); large finite values may round to infinity, as in binary32.
func F32ToBF16(f float32) uint16 {
	b := math.Float32bits(f)
	if b&0x7f800000 == 0x7f800000 && b&0x7fffff != 0 {
		return uint16(b>>16) | 0x40
	}
	return uint16(roundShift(b, 16))
}

// decodeFloat32 converts the little-endian bytes of a float tensor of dtype dt to float32.
//
// TODO: convert F8_E4M3 and F8_E5M2 too; no checkpoint the exporter targets uses them yet,
// so they are only available as raw bytes.
func decodeFloat32(dt DType, raw []byte) ([]float32, error) {
	n := int64(len(raw)) / dt.Size()
	out := make([]float32, n)
	switch dt {
	case F32:
		for i := range out {
			out[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
		}
	case F16:
		for i := range out {
			out[i] = F16ToF32(binary.LittleEndian.Uint16(raw[2*i:]))
		}
	case BF16:
		for i := range out {
			out[i] = BF16ToF32(binary.LittleEndian.Uint16(raw[2*i:]))
		}
	case F64:
		for i := range out {
			out[i] = float32(math.Float64frombits(binary.LittleEndian.Uint64(raw[8*i:])))
		}
	default:
		return nil, fmt.Errorf("dtype %s is not a float type", dt)
	}
	return out, nil
}

// decodeFloat16 converts the little-endian bytes of a float tensor of dtype dt to binary16
// bits; F16 is copied as is, the others are rounded to nearest even.
func decodeFloat16(dt DType, raw []byte) ([]uint16, error) {
	n := int64(len(raw)) / dt.Size()
	out := make([]uint16, n)
	switch dt {
	case F16:
		for i := range out {
			out[i] = binary.LittleEndian.Uint16(raw[2*i:])
		}
	case F32:
		for i := range out {
			out[i] = F32ToF16(math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:])))
		}
	case BF16:
		for i := range out {
			out[i] = F32ToF16(BF16ToF32(binary.LittleEndian.Uint16(raw[2*i:])))
		}
	case F64:
		// Rounding through float32 gives the same result as rounding F64 straight to F16:
		// float32 keeps 24 ≥ 2·11+2 significand bits, so the double rounding is innocuous.
		for i := range out {
			f := math.Float64frombits(binary.LittleEndian.Uint64(raw[8*i:]))
			out[i] = F32ToF16(float32(f))
		}
	default:
		return nil, fmt.Errorf("dtype %s is not a float type", dt)
	}
	return out, nil
}

// encodeFloat32 encodes v as little-endian bytes of dtype dt (F32, F16, BF16 or F64).
func encodeFloat32(dt DType, v []float32) ([]byte, error) {
	if !dt.IsFloat() {
		return nil, fmt.Errorf("dtype %s is not a float type", dt)
	}
	out := make([]byte, int64(len(v))*dt.Size())
	for i, f := range v {
		switch dt {
		case F32:
			binary.LittleEndian.PutUint32(out[4*i:], math.Float32bits(f))
		case F16:
			binary.LittleEndian.PutUint16(out[2*i:], F32ToF16(f))
		case BF16:
			binary.LittleEndian.PutUint16(out[2*i:], F32ToBF16(f))
		case F64:
			binary.LittleEndian.PutUint64(out[8*i:], math.Float64bits(float64(f)))
		}
	}
	return out, nil
}
