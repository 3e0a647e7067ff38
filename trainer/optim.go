package trainer

import (
	"fmt"
	"math"
)

// Param is one trainable tensor. Data is owned by Go and handed to ONNX Runtime without a
// copy (onnxruntime_go wraps the slice), so the optimiser updates it in place between steps.
type Param struct {
	Name  string
	Shape []int64
	Data  []float32
	// Decay applies weight decay to this tensor.
	Decay bool
}

// AdamW is Adam with decoupled weight decay (Loshchilov & Hutter):
//
//	m ← β1·m + (1−β1)·g          v ← β2·v + (1−β2)·g²
//	m̂ = m / (1−β1^t)             v̂ = v / (1−β2^t)
//	θ ← θ − lr·(m̂ / (√v̂ + ε) + wd·θ)   (the wd term only for params with Decay)
type AdamW struct {
	Beta1, Beta2, Eps, WeightDecay float64
	// Step counts the updates made so far (t in the formulas).
	Step int
	// M and V are the first and second moments, by parameter name.
	M, V map[string][]float32
}

// NewAdamW returns an optimiser with zero moments for params.
func NewAdamW(params []*Param, beta1, beta2, eps, weightDecay float64) *AdamW {
	o := &AdamW{Beta1: beta1, Beta2: beta2, Eps: eps, WeightDecay: weightDecay,
		M: map[string][]float32{}, V: map[string][]float32{}}
	for _, p := range params {
		o.M[p.Name] = make([]float32, len(p.Data))
		o.V[p.Name] = make([]float32, len(p.Data))
	}
	return o
}

// Update applies one AdamW step with learning rate lr; grads follow params.
func (o *AdamW) Update(params []*Param, grads [][]float32, lr float64) error {
	o.Step++
	c1 := 1 - math.Pow(o.Beta1, float64(o.Step))
	c2 := 1 - math.Pow(o.Beta2, float64(o.Step))
	for i, p := range params {
		g := grads[i]
		m, v := o.M[p.Name], o.V[p.Name]
		if len(g) != len(p.Data) || len(m) != len(p.Data) {
			return fmt.Errorf("adamw: %s: %d values, %d gradients, %d moments", p.Name,
				len(p.Data), len(g), len(m))
		}
		wd := 0.0
		if p.Decay {
			wd = o.WeightDecay
		}
		for j, gj := range g {
			gf := float64(gj)
			mj := o.Beta1*float64(m[j]) + (1-o.Beta1)*gf
			vj := o.Beta2*float64(v[j]) + (1-o.Beta2)*gf*gf
			m[j], v[j] = float32(mj), float32(vj)
			theta := float64(p.Data[j])
			theta -= lr * ((mj/c1)/(math.Sqrt(vj/c2)+o.Eps) + wd*theta)
			p.Data[j] = float32(theta)
		}
	}
	return nil
}

// GlobalNorm is √(Σ g²) over all gradients.
func GlobalNorm(grads [][]float32) float64 {
	var s float64
	for _, g := range grads {
		for _, x := range g {
			s += float64(x) * float64(x)
		}
	}
	return math.Sqrt(s)
}

// ClipByGlobalNorm scales all gradients by maxNorm/‖g‖ when ‖g‖ > maxNorm (maxNorm ≤ 0
// disables clipping) and returns the norm before clipping.
func ClipByGlobalNorm(grads [][]float32, maxNorm float64) float64 {
	norm := GlobalNorm(grads)
	if maxNorm > 0 && norm > maxNorm {
		scale := float32(maxNorm / norm)
		for _, g := range grads {
			for j := range g {
				g[j] *= scale
			}
		}
	}
	return norm
}

// Schedule is a learning-rate schedule: linear warmup from 0 to Peak over Warmup steps, then
// cosine decay from Peak to Peak·MinRatio at step Total.
type Schedule struct {
	Peak     float64
	Warmup   int
	Total    int
	MinRatio float64
}

// LR is the learning rate of update number step (0-based).
func (s Schedule) LR(step int) float64 {
	if s.Warmup > 0 && step < s.Warmup {
		return s.Peak * float64(step+1) / float64(s.Warmup)
	}
	span := s.Total - s.Warmup
	if span <= 0 {
		return s.Peak
	}
	progress := math.Min(1, float64(step-s.Warmup)/float64(span))
	cos := 0.5 * (1 + math.Cos(math.Pi*progress))
	return s.Peak * (s.MinRatio + (1-s.MinRatio)*cos)
}
