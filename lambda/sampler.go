package lambda

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
)

// pcgStream is the second PCG seed word; the first is the user's seed. Fixing
// it makes one uint64 enough to name a sequence.
const pcgStream = 0x9e3779b97f4a7c15

// SamplerConfig sets the distribution that a [Sampler] draws λ from.
//
// With probability VertexProb a draw is a vertex e_j, j uniform on {0 … M−1};
// otherwise it is Dirichlet(α), with density ∝ Π_i λ_i^{α_i − 1} on the
// simplex. α = (1, …, 1) is the uniform distribution on the simplex; α_i < 1
// pushes mass towards the edges and vertices, α_i > 1 towards the centre.
type SamplerConfig struct {
	// M is the number of preference dimensions, at least 1.
	M int `json:"m"`
	// Alpha holds the Dirichlet concentrations: nil for all ones, one value
	// for a symmetric Dirichlet, or M values. Each must be finite and > 0.
	Alpha []float64 `json:"alpha,omitempty"`
	// VertexProb is the probability p ∈ [0, 1] of drawing a vertex instead of
	// a Dirichlet sample.
	VertexProb float64 `json:"vertex_prob"`
}

// alphas returns the M concentrations that cfg describes, or an error naming
// the offending value.
func (cfg SamplerConfig) alphas() ([]float64, error) {
	if cfg.M < 1 {
		return nil, fmt.Errorf("lambda: sampler: m = %d, want at least 1", cfg.M)
	}
	if math.IsNaN(cfg.VertexProb) || cfg.VertexProb < 0 || cfg.VertexProb > 1 {
		return nil, fmt.Errorf("lambda: sampler: vertex probability %v is not in [0, 1]",
			cfg.VertexProb)
	}
	alpha := make([]float64, cfg.M)
	switch len(cfg.Alpha) {
	case 0:
		for i := range alpha {
			alpha[i] = 1
		}
	case 1:
		for i := range alpha {
			alpha[i] = cfg.Alpha[0]
		}
	case cfg.M:
		copy(alpha, cfg.Alpha)
	default:
		return nil, fmt.Errorf("lambda: sampler: %d Dirichlet concentrations, want 1 or m = %d",
			len(cfg.Alpha), cfg.M)
	}
	if err := checkAlpha(alpha); err != nil {
		return nil, fmt.Errorf("lambda: sampler: %w", err)
	}
	return alpha, nil
}

// checkAlpha rejects concentrations that are not finite and positive.
func checkAlpha(alpha []float64) error {
	if len(alpha) == 0 {
		return fmt.Errorf("dirichlet: no concentrations")
	}
	for i, a := range alpha {
		if math.IsNaN(a) || math.IsInf(a, 0) || a <= 0 {
			return fmt.Errorf("dirichlet: alpha[%d] = %v, want finite and > 0", i, a)
		}
	}
	return nil
}

// Sampler draws preference vectors from the distribution of a
// [SamplerConfig]. It owns a PCG generator (math/rand/v2) whose whole state,
// together with the configuration, round-trips through
// [Sampler.MarshalBinary] and [Sampler.UnmarshalBinary], so a checkpoint can
// resume the exact sequence of draws. A Sampler is not safe for concurrent use.
type Sampler struct {
	m          int
	alpha      []float64
	vertexProb float64
	src        *rand.PCG
	rng        *rand.Rand
}

// NewSampler returns a Sampler for cfg whose generator is PCG seeded with
// (seed, a fixed stream constant). Equal seeds give equal sequences.
func NewSampler(cfg SamplerConfig, seed uint64) (*Sampler, error) {
	alpha, err := cfg.alphas()
	if err != nil {
		return nil, err
	}
	src := rand.NewPCG(seed, pcgStream)
	return &Sampler{m: cfg.M, alpha: alpha, vertexProb: cfg.VertexProb,
		src: src, rng: rand.New(src)}, nil
}

// Config returns the sampler's configuration with Alpha spelled out in full.
func (s *Sampler) Config() SamplerConfig {
	return SamplerConfig{M: s.m, Alpha: append([]float64(nil), s.alpha...),
		VertexProb: s.vertexProb}
}

// Sample draws one λ ∈ Δ^{m−1}: a vertex e_j with probability p (j uniform),
// otherwise a Dirichlet(α) draw. It returns nil for a zero Sampler, one
// neither made by [NewSampler] nor restored by [Sampler.UnmarshalBinary].
func (s *Sampler) Sample() []float64 {
	if s.rng == nil {
		return nil
	}
	lambda := make([]float64, s.m)
	s.sampleInto(lambda)
	return lambda
}

// sampleInto writes one draw into dst (length m).
func (s *Sampler) sampleInto(dst []float64) {
	if s.vertexProb > 0 && s.rng.Float64() < s.vertexProb {
		clear(dst)
		dst[s.rng.IntN(s.m)] = 1
		return
	}
	dirichletInto(s.rng, s.alpha, dst)
}

// SampleBatch draws n independent preference vectors, one per example, and
// returns them as a flat float32 slice of shape (n, m) in row-major order:
// element [b*m + i] is λ_i of example b. This is the layout of an ONNX tensor
// of shape [n, m]. Each row sums to 1 within float32 rounding (≤ m·2⁻²⁴).
func (s *Sampler) SampleBatch(n int) ([]float32, error) {
	if s.rng == nil {
		return nil, fmt.Errorf("lambda: sample batch: sampler is not initialised")
	}
	if n < 0 {
		return nil, fmt.Errorf("lambda: sample batch: n = %d is negative", n)
	}
	out := make([]float32, n*s.m) // (n, m)
	row := make([]float64, s.m)
	for b := range n {
		s.sampleInto(row)
		for i, v := range row {
			out[b*s.m+i] = float32(v)
		}
	}
	return out, nil
}

// samplerMagic opens every encoded Sampler; the byte after it is the version.
const (
	samplerMagic   = "LMBD"
	samplerVersion = 1
)

// MarshalBinary encodes the configuration and the generator state:
//
//	"LMBD" | version u8 | m u32 | p f64 | α_0 … α_{m−1} f64 | len u32 | PCG state
//
// all little-endian. It implements [encoding.BinaryMarshaler].
func (s *Sampler) MarshalBinary() ([]byte, error) {
	if s.src == nil {
		return nil, fmt.Errorf("lambda: marshal sampler: sampler is not initialised")
	}
	state, err := s.src.MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("lambda: marshal sampler: %w", err)
	}
	b := make([]byte, 0, len(samplerMagic)+1+4+8*(1+s.m)+4+len(state))
	b = append(b, samplerMagic...)
	b = append(b, samplerVersion)
	b = binary.LittleEndian.AppendUint32(b, uint32(s.m))
	b = binary.LittleEndian.AppendUint64(b, math.Float64bits(s.vertexProb))
	for _, a := range s.alpha {
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(a))
	}
	b = binary.LittleEndian.AppendUint32(b, uint32(len(state)))
	b = append(b, state...)
	return b, nil
}

// maxEncodedM bounds m when decoding, so a corrupt header cannot ask for a
// huge allocation.
const maxEncodedM = 1 << 16

// UnmarshalBinary restores a Sampler written by [Sampler.MarshalBinary],
// replacing the receiver's configuration and state; the next draw is the one
// that would have followed the marshalled state. It implements
// [encoding.BinaryUnmarshaler].
func (s *Sampler) UnmarshalBinary(data []byte) error {
	r := reader{b: data}
	if magic := r.next(len(samplerMagic)); string(magic) != samplerMagic {
		return fmt.Errorf("lambda: unmarshal sampler: bad magic %q, want %q", magic, samplerMagic)
	}
	if v := r.next(1); len(v) != 1 || v[0] != samplerVersion {
		return fmt.Errorf("lambda: unmarshal sampler: unsupported version %v, want %d",
			v, samplerVersion)
	}
	m := r.u32()
	if r.err == nil && (m < 1 || m > maxEncodedM) {
		return fmt.Errorf("lambda: unmarshal sampler: m = %d, want 1 … %d", m, maxEncodedM)
	}
	cfg := SamplerConfig{M: int(m), VertexProb: r.f64()}
	if r.err == nil {
		cfg.Alpha = make([]float64, m)
		for i := range cfg.Alpha {
			cfg.Alpha[i] = r.f64()
		}
	}
	state := r.next(int(r.u32()))
	if r.err != nil {
		return fmt.Errorf("lambda: unmarshal sampler: %w", r.err)
	}
	if len(r.b) != 0 {
		return fmt.Errorf("lambda: unmarshal sampler: %d trailing bytes", len(r.b))
	}

	// Check the configuration and the generator state before changing s.
	alpha, err := cfg.alphas()
	if err != nil {
		return fmt.Errorf("lambda: unmarshal sampler: %w", err)
	}
	src := new(rand.PCG)
	if err := src.UnmarshalBinary(state); err != nil {
		return fmt.Errorf("lambda: unmarshal sampler: generator state: %w", err)
	}
	*s = Sampler{m: cfg.M, alpha: alpha, vertexProb: cfg.VertexProb, src: src, rng: rand.New(src)}
	return nil
}

// reader consumes a byte slice; the first short read sets err and every later
// read returns zero values.
type reader struct {
	b   []byte
	err error
}

func (r *reader) next(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || n > len(r.b) {
		r.err = fmt.Errorf("truncated: need %d bytes, have %d", n, len(r.b))
		return nil
	}
	out := r.b[:n]
	r.b = r.b[n:]
	return out
}

func (r *reader) u32() uint32 {
	b := r.next(4)
	if b == nil {
		return 0
	}
	return binary.LittleEndian.Uint32(b)
}

func (r *reader) f64() float64 {
	b := r.next(8)
	if b == nil {
		return 0
	}
	return math.Float64frombits(binary.LittleEndian.Uint64(b))
}
