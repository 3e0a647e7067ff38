package safetensors

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

func TestF16ToF32(t *testing.T) {
	tests := []struct {
		name string
		h    uint16
		want float32
	}{
		{"one", 0x3c00, 1},
		{"minus two", 0xc000, -2},
		{"one third", 0x3555, 0.333251953125},
		{"max finite", 0x7bff, 65504},
		{"smallest normal", 0x0400, 6.103515625e-05},
		{"smallest subnormal", 0x0001, 5.960464477539063e-08},
		{"largest subnormal", 0x03ff, 6.097555160522461e-05},
		{"negative subnormal", 0x8200, -3.0517578125e-05},
		{"zero", 0x0000, 0},
		{"plus inf", 0x7c00, float32(math.Inf(1))},
		{"minus inf", 0xfc00, float32(math.Inf(-1))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := F16ToF32(tt.h); got != tt.want {
				t.Errorf("F16ToF32(%#04x) = %g, want %g", tt.h, got, tt.want)
			}
		})
	}
	if b := math.Float32bits(F16ToF32(0x8000)); b != 0x80000000 {
		t.Errorf("F16ToF32(-0) bits = %#x, want 0x80000000", b)
	}
	for _, h := range []uint16{0x7e00, 0x7c01, 0xfe00, 0x7fff} {
		if f := F16ToF32(h); !math.IsNaN(float64(f)) {
			t.Errorf("F16ToF32(%#04x) = %g, want NaN", h, f)
		}
	}
}

func TestF32ToF16(t *testing.T) {
	pow := func(e int) float32 { return float32(math.Ldexp(1, e)) }
	tests := []struct {
		name string
		f    float32
		want uint16
	}{
		{"one", 1, 0x3c00},
		{"minus two", -2, 0xc000},
		{"max finite", 65504, 0x7bff},
		{"below overflow tie", 65519, 0x7bff},
		{"overflow tie rounds to inf", 65520, 0x7c00},
		{"huge", 1e10, 0x7c00},
		{"minus huge", -1e10, 0xfc00},
		{"tie to even down", 1 + pow(-11), 0x3c00},
		{"tie to even up", 1 + 3*pow(-11), 0x3c02},
		{"above tie", 1 + pow(-11) + pow(-20), 0x3c01},
		{"smallest normal", pow(-14), 0x0400},
		{"smallest subnormal", pow(-24), 0x0001},
		{"half subnormal tie to zero", pow(-25), 0x0000},
		{"just above half subnormal", pow(-25) * (1 + pow(-20)), 0x0001},
		{"1.5 subnormal tie to even", 3 * pow(-25), 0x0002},
		{"subnormal rounds up to normal", pow(-14) - pow(-26), 0x0400},
		{"tiny", 1e-10, 0x0000},
		{"negative tiny", -1e-10, 0x8000},
		{"f32 subnormal", math.Float32frombits(1), 0x0000},
		{"plus inf", float32(math.Inf(1)), 0x7c00},
		{"minus inf", float32(math.Inf(-1)), 0xfc00},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := F32ToF16(tt.f); got != tt.want {
				t.Errorf("F32ToF16(%g) = %#04x, want %#04x", tt.f, got, tt.want)
			}
		})
	}
	for _, f := range []float32{float32(math.NaN()), math.Float32frombits(0x7f800001)} {
		if h := F32ToF16(f); h&0x7c00 != 0x7c00 || h&0x3ff == 0 {
			t.Errorf("F32ToF16(NaN %#x) = %#04x, want a NaN", math.Float32bits(f), h)
		}
	}
}

// TestF16RoundTripAll checks every one of the 65536 binary16 patterns survives f16→f32→f16.
func TestF16RoundTripAll(t *testing.T) {
	for i := range 1 << 16 {
		h := uint16(i)
		f := F16ToF32(h)
		if math.IsNaN(float64(f)) {
			if g := F32ToF16(f); g&0x7c00 != 0x7c00 || g&0x3ff == 0 {
				t.Fatalf("NaN %#04x came back as %#04x", h, g)
			}
			continue
		}
		if g := F32ToF16(f); g != h {
			t.Fatalf("%#04x → %g → %#04x", h, f, g)
		}
	}
}

// TestF32ToF16Nearest compares F32ToF16 with a brute-force nearest-even search over the
// sorted table of all non-negative finite binary16 values, for random and edge inputs.
func TestF32ToF16Nearest(t *testing.T) {
	// table[i] is the value of bits i for i in [0, 0x7bff]; values increase with i.
	table := make([]float64, 0x7c00)
	for i := range table {
		table[i] = float64(F16ToF32(uint16(i)))
	}
	ref := func(f float32) uint16 {
		x := math.Abs(float64(f))
		sign := uint16(0)
		if math.Signbit(float64(f)) {
			sign = 0x8000
		}
		if x >= 65520 {
			return sign | 0x7c00
		}
		i, _ := slices.BinarySearch(table, x)
		if i == len(table) {
			i--
		}
		best := i
		if i > 0 {
			lo, hi := x-table[i-1], table[i]-x
			if lo < hi || (lo == hi && (i-1)%2 == 0) {
				best = i - 1
			}
		}
		return sign | uint16(best)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for n := range 300000 {
		var f float32
		if n%2 == 0 { // uniform bits in the f16 exponent range and a bit beyond
			e := rng.IntN(50) - 28
			f = float32(math.Ldexp(1+rng.Float64(), e))
		} else { // exact ties and their neighbours
			h := uint16(rng.IntN(0x7bff))
			mid := math.Float32bits(float32((table[h] + table[h+1]) / 2))
			f = math.Float32frombits(mid + uint32(rng.IntN(3)) - 1)
		}
		if rng.IntN(2) == 0 {
			f = -f
		}
		if got, want := F32ToF16(f), ref(f); got != want {
			t.Fatalf("F32ToF16(%g, bits %#x) = %#04x, want %#04x", f, math.Float32bits(f), got, want)
		}
	}
}

func TestBF16(t *testing.T) {
	tests := []struct {
		name string
		f    float32
		want uint16
	}{
		{"one", 1, 0x3f80},
		{"minus two", -2, 0xc000},
		{"pi", math.Pi, 0x4049},
		{"tie to even down", math.Float32frombits(0x3f808000), 0x3f80},
		{"tie to even up", math.Float32frombits(0x3f818000), 0x3f82},
		{"above tie", math.Float32frombits(0x3f808001), 0x3f81},
		{"max float32 rounds to inf", math.MaxFloat32, 0x7f80},
		{"inf", float32(math.Inf(-1)), 0xff80},
		{"subnormal", math.Float32frombits(0x00010000), 0x0001},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := F32ToBF16(tt.f)
			if got != tt.want {
				t.Errorf("F32ToBF16(%g) = %#04x, want %#04x", tt.f, got, tt.want)
			}
			if back := BF16ToF32(got); math.Float32bits(back) != uint32(got)<<16 {
				t.Errorf("BF16ToF32(%#04x) bits = %#x", got, math.Float32bits(back))
			}
		})
	}
	if h := F32ToBF16(math.Float32frombits(0x7f800001)); h&0x7f80 != 0x7f80 || h&0x7f == 0 {
		t.Errorf("F32ToBF16(signalling NaN) = %#04x, want a NaN", h)
	}
	if f := BF16ToF32(0x4049); f != 3.140625 {
		t.Errorf("BF16ToF32(0x4049) = %g, want 3.140625", f)
	}
}
