package trainer

import (
	"fmt"
	"math"
	"time"

	onnx "github.com/yalue/onnxruntime_go"

	"github.com/panacea-go/toolkit/graphs/autodiff"
	"github.com/panacea-go/toolkit/ort"
)

// trainStep runs GradAccum micro-batches under one λ and applies one AdamW update.
func (r *run) trainStep(step int, lr float64) (StepMetrics, error) {
	start := time.Now()
	lam := r.lsampler.Sample()
	met := StepMetrics{Step: step + 1, Lambda: lam, LR: lr, DimLosses: make([]float64, r.m)}
	if !r.sft {
		met.Accuracy, met.Margin = make([]float64, r.m), make([]float64, r.m)
	}
	for _, a := range r.acc {
		clear(a)
	}
	tokens := 0
	for range r.cfg.GradAccum {
		sb, err := nextBatch(r.data, step)
		if err != nil {
			return met, err
		}
		tokens += sb.tokens
		if err := r.micro(sb, lam, &met); err != nil {
			return met, fmt.Errorf("trainer: step %d: %w", step+1, err)
		}
	}
	inv := float32(1 / float64(r.cfg.GradAccum))
	for _, a := range r.acc {
		for j := range a {
			a[j] *= inv
		}
	}
	met.Loss /= float64(r.cfg.GradAccum)
	for i := range r.m {
		met.DimLosses[i] /= float64(r.cfg.GradAccum)
		if !r.sft {
			met.Accuracy[i] /= float64(r.cfg.GradAccum)
			met.Margin[i] /= float64(r.cfg.GradAccum)
		}
	}
	met.GradNorm = ClipByGlobalNorm(r.acc, r.cfg.MaxGradNorm)
	if math.IsNaN(met.GradNorm) || math.IsInf(met.GradNorm, 0) {
		return met, fmt.Errorf("trainer: step %d: gradient norm is %v", step+1, met.GradNorm)
	}
	if r.cfg.Ideal == "min" {
		if err := r.ideal.Update(met.DimLosses); err != nil {
			return met, err
		}
	}
	if err := r.opt.Update(r.params, r.acc, lr); err != nil {
		return met, err
	}
	met.Seconds = time.Since(start).Seconds()
	met.TokensPerS = float64(tokens) / met.Seconds
	return met, nil
}

// micro runs one micro-batch and adds its loss, metrics and gradients to the step's.
func (r *run) micro(sb *stepBatch, lam []float64, met *StepMetrics) error {
	in, free, err := tokenTensors(sb)
	if err != nil {
		return err
	}
	defer free()
	rowsLam := make([]float32, sb.rows*r.m)
	agg := make([]float32, r.m)
	for i, v := range lam {
		agg[i] = float32(v)
	}
	for row := range sb.rows {
		copy(rowsLam[row*r.m:], agg)
	}
	units := sb.pairs
	if r.sft {
		units = sb.rows
	}
	extra := map[string]any{
		LambdaInput: rowsLam, InAggWeight: agg, InDimWeight: sb.dimWeights(r.m, r.sft)}
	shapes := map[string][]int64{LambdaInput: {int64(sb.rows), int64(r.m)},
		InAggWeight: {int64(r.m)}, InDimWeight: {int64(units), int64(r.m)}}
	if !r.sft {
		ref := make([]float32, sb.rows)
		for row := range sb.rows {
			lp, ok := r.refs[sb.exIDs[row]]
			if !ok {
				return fmt.Errorf("no reference log-prob for example %d", sb.exIDs[row])
			}
			ref[row] = lp[0]
			if row >= sb.pairs {
				ref[row] = lp[1]
			}
		}
		extra[InRefLogp], shapes[InRefLogp] = ref, []int64{int64(sb.rows)}
	}
	if r.cfg.Aggregation == "tche" {
		z, err := r.ideal.Point()
		if err != nil {
			return err
		}
		z32 := make([]float32, r.m)
		for i, v := range z {
			z32[i] = float32(v)
		}
		extra[InIdeal], shapes[InIdeal] = z32, []int64{int64(r.m)}
	}
	for name, data := range extra {
		t, err := tensor(data.([]float32), shapes[name]...)
		if err != nil {
			return err
		}
		defer t.Destroy()
		in[name] = t
	}
	for i, p := range r.params {
		in[p.Name] = r.pTensors[i]
	}

	loss, _ := onnx.NewEmptyTensor[float32](onnx.NewShape(1))
	dims, _ := onnx.NewEmptyTensor[float32](onnx.NewShape(int64(r.m)))
	unitT, _ := onnx.NewEmptyTensor[float32](onnx.NewShape(int64(units)))
	defer ort.DestroyAll(loss, dims, unitT)
	out := map[string]onnx.Value{OutLoss: loss, OutDimLosses: dims, OutUnitLoss: unitT}
	var margins *onnx.Tensor[float32]
	if !r.sft {
		margins, _ = onnx.NewEmptyTensor[float32](onnx.NewShape(int64(sb.pairs)))
		defer margins.Destroy()
		out[OutMargins] = margins
	}
	for i, p := range r.params {
		out[autodiff.GradName(p.Name)] = r.grads[i]
	}
	if err := r.step.run(int64(sb.rows), in, out); err != nil {
		return err
	}

	l := float64(loss.GetData()[0])
	if math.IsNaN(l) || math.IsInf(l, 0) {
		return fmt.Errorf("loss is %v", l)
	}
	met.Loss += l
	for i, v := range dims.GetData() {
		met.DimLosses[i] += float64(v)
	}
	if !r.sft {
		count := make([]float64, r.m)
		acc, mar := make([]float64, r.m), make([]float64, r.m)
		for p, h := range margins.GetData() {
			d := sb.dims[p]
			count[d]++
			mar[d] += float64(h)
			switch { // a tie counts one half, as in eval
			case h > 0:
				acc[d]++
			case h == 0:
				acc[d] += 0.5
			}
		}
		for d := range r.m {
			if count[d] > 0 {
				met.Accuracy[d] += acc[d] / count[d]
				met.Margin[d] += mar[d] / count[d]
			}
		}
	}
	for i, g := range r.grads {
		for j, v := range g.GetData() {
			r.acc[i][j] += v
		}
	}
	return nil
}
