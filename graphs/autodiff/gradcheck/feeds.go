package gradcheck

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"

	onnx "github.com/yalue/onnxruntime_go"

	"github.com/panacea-go/toolkit/graphs"
	"github.com/panacea-go/toolkit/graphs/autodiff"
	"github.com/panacea-go/toolkit/graphs/lora"
	"github.com/panacea-go/toolkit/graphs/onnxpb"
	"github.com/panacea-go/toolkit/ort"
)

// feeds holds one tensor per graph input, made once: the float64 adapter values are
// wrapped without copying, so the finite differences change them in place between runs.
type feeds struct {
	order  []string
	values map[string]onnx.Value
	params map[string][]float64
}

// newFeeds makes the inputs of the check: random token ids and next-token targets, an
// attention mask with left padding on every row but the first, random λ on the simplex, and
// random non-zero adapter values (at the initial σ = s = 0 the U and V gradients vanish).
func newFeeds(m *onnxpb.ModelProto, rep *lora.Report, opts Options, vocab int,
	rng *rand.Rand) (*feeds, error) {
	fd := &feeds{values: map[string]onnx.Value{}, params: map[string][]float64{}}
	bsz, seq := int64(opts.Batch), int64(opts.Seq)
	mask := make([]int64, bsz*seq)
	for i := range mask {
		row, col := int64(i)/seq, int64(i)%seq
		if row == 0 || seq <= 3 || col >= 2 {
			mask[i] = 1
		}
	}
	ids := func() []int64 {
		v := make([]int64, bsz*seq)
		for i := range v {
			v[i] = rng.Int64N(int64(vocab))
		}
		return v
	}
	shapes := map[string][]int64{}
	for _, l := range rep.Layers {
		for _, p := range l.Params() {
			shapes[p.Name] = p.Shape
		}
	}
	for _, in := range m.GetGraph().GetInput() {
		name := in.GetName()
		var v onnx.Value
		var err error
		switch {
		case name == "input_ids":
			v, err = onnx.NewTensor(onnx.NewShape(bsz, seq), ids())
		case name == targetsInput:
			v, err = onnx.NewTensor(onnx.NewShape(bsz, seq), ids())
		case name == "attention_mask":
			v, err = onnx.NewTensor(onnx.NewShape(bsz, seq), mask)
		case name == "position_ids":
			v, err = onnx.NewTensor(onnx.NewShape(bsz, seq), positions(mask, seq))
		case name == maskInput:
			f := make([]float64, len(mask))
			for i, x := range mask {
				f[i] = float64(x)
			}
			v, err = tensorOf([]int64{bsz, seq}, f)
		case name == rep.Lambda:
			v, err = tensorOf([]int64{bsz, int64(opts.Dims)}, simplexRows(rng, opts.Batch, opts.Dims))
		case shapes[name] != nil:
			p := randomParam(rng, name, graphs.NumElements(shapes[name]))
			fd.params[name] = p
			v, err = tensorOf(shapes[name], p)
		default:
			// TODO: past key values of length 0 would let models exported --with-past run.
			fd.destroy()
			return nil, fmt.Errorf("gradcheck: cannot feed graph input %q (export the model "+
				"without past key values)", name)
		}
		if err != nil {
			fd.destroy()
			return nil, fmt.Errorf("gradcheck: input %q: %w", name, err)
		}
		fd.order = append(fd.order, name)
		fd.values[name] = v
	}
	return fd, nil
}

// positions is HF's cumsum(mask) − 1, clamped at 0.
func positions(mask []int64, seq int64) []int64 {
	out := make([]int64, len(mask))
	for i := range mask {
		if int64(i)%seq == 0 {
			out[i] = mask[i] - 1
		} else {
			out[i] = out[i-1] + mask[i]
		}
	}
	for i := range out {
		out[i] = max(out[i], 0)
	}
	return out
}

func simplexRows(rng *rand.Rand, rows, m int) []float64 {
	v := make([]float64, rows*m)
	for r := range rows {
		sum := 0.0
		for j := range m {
			v[r*m+j] = rng.ExpFloat64()
			sum += v[r*m+j]
		}
		for j := range m {
			v[r*m+j] /= sum
		}
	}
	return v
}

// randomParam draws adapter values large enough that the branch moves the logits:
// U, V ~ N(0, 0.3²), σ, s ~ N(0, 1).
func randomParam(rng *rand.Rand, name string, n int64) []float64 {
	std := 1.0
	if strings.HasSuffix(name, lora.SuffixU) || strings.HasSuffix(name, lora.SuffixV) {
		std = 0.3
	}
	v := make([]float64, n)
	for i := range v {
		v[i] = rng.NormFloat64() * std
	}
	return v
}

func (fd *feeds) destroy() {
	for _, v := range fd.values {
		v.Destroy()
	}
}

func (fd *feeds) session(m *onnxpb.ModelProto, outputs []string, threads int) (*ort.Session, error) {
	data, err := graphs.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("gradcheck: %w", err)
	}
	s, err := ort.NewSession("", data, fd.order, outputs, ort.Options{Threads: threads})
	if err != nil {
		return nil, fmt.Errorf("gradcheck: %w", err)
	}
	return s, nil
}

func (fd *feeds) inputs() []onnx.Value {
	ins := make([]onnx.Value, len(fd.order))
	for i, n := range fd.order {
		ins[i] = fd.values[n]
	}
	return ins
}

// loss runs a session whose only output is the loss.
func (fd *feeds) loss(s *ort.Session) (float64, error) {
	out, err := tensorOf([]int64{1}, make([]float64, 1))
	if err != nil {
		return 0, err
	}
	defer out.Destroy()
	if err := s.Run(fd.inputs(), []onnx.Value{out}); err != nil {
		return 0, fmt.Errorf("gradcheck: %w", err)
	}
	l := out.(*onnx.Tensor[float64]).GetData()[0]
	if math.IsNaN(l) || math.IsInf(l, 0) {
		return 0, fmt.Errorf("gradcheck: the loss is %v", l)
	}
	return l, nil
}

// gradients runs the differentiated graph once and returns every parameter's gradient.
func (fd *feeds) gradients(m *onnxpb.ModelProto, names []string, res *autodiff.Result,
	threads int) (map[string][]float64, float64, error) {
	outputs := []string{lossOutput}
	for _, p := range names {
		outputs = append(outputs, res.Grads[p])
	}
	s, err := fd.session(m, outputs, threads)
	if err != nil {
		return nil, 0, err
	}
	defer s.Close()
	outs := make([]onnx.Value, len(outputs))
	if outs[0], err = tensorOf([]int64{1}, make([]float64, 1)); err != nil {
		return nil, 0, err
	}
	defer ort.DestroyAll(outs...)
	if err := s.Run(fd.inputs(), outs); err != nil {
		return nil, 0, fmt.Errorf("gradcheck: %w", err)
	}
	grads := map[string][]float64{}
	for i, p := range names {
		t, ok := outs[i+1].(*onnx.Tensor[float64])
		if !ok {
			return nil, 0, fmt.Errorf("gradcheck: gradient of %s is not a float64 tensor", p)
		}
		grads[p] = append([]float64(nil), t.GetData()...)
	}
	return grads, outs[0].(*onnx.Tensor[float64]).GetData()[0], nil
}
