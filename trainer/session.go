package trainer

import (
	"errors"
	"fmt"
	"strings"

	onnx "github.com/yalue/onnxruntime_go"

	"github.com/panacea-go/toolkit/graphs"
	"github.com/panacea-go/toolkit/graphs/onnxpb"
	"github.com/panacea-go/toolkit/ort"
)

// graphSession runs a graph built in memory whose weights live in an export folder's
// external data. Inputs are fed by name; past key/value inputs of a KV-cache export are fed
// empty (length 0) so that training and scoring graphs can start from such an export too.
type graphSession struct {
	sess    *ort.Session
	inputs  []string
	outputs []string
	past    map[string][]int64 // past input → (kv_heads, head_dim)
}

// openGraph opens model (its external data in dir) with every graph input and the listed
// outputs.
func openGraph(model *onnxpb.ModelProto, dir string, outputs []string, o ort.Options) (*graphSession, error) {
	data, err := graphs.Marshal(model)
	if err != nil {
		return nil, err
	}
	gs := &graphSession{outputs: outputs, past: map[string][]int64{}}
	for _, in := range model.GetGraph().GetInput() {
		gs.inputs = append(gs.inputs, in.GetName())
		if strings.HasPrefix(in.GetName(), "past_key_values.") {
			dims := in.GetType().GetTensorType().GetShape().GetDim()
			if len(dims) != 4 {
				return nil, fmt.Errorf("trainer: past input %s has rank %d, want 4", in.GetName(),
					len(dims))
			}
			gs.past[in.GetName()] = []int64{dims[1].GetDimValue(), dims[3].GetDimValue()}
		}
	}
	o.ExternalDataDir = dir
	gs.sess, err = ort.NewSession("", data, gs.inputs, outputs, o)
	if err != nil {
		return nil, err
	}
	return gs, nil
}

// run feeds in (by name; past inputs are filled in for batch size rows) and fills out (by
// name; a missing entry is allocated by ONNX Runtime and returned in the map).
func (gs *graphSession) run(rows int64, in map[string]onnx.Value, out map[string]onnx.Value) error {
	vals := make([]onnx.Value, len(gs.inputs))
	var made []onnx.Value
	defer func() { ort.DestroyAll(made...) }()
	for i, name := range gs.inputs {
		if v, ok := in[name]; ok {
			vals[i] = v
			continue
		}
		kv, ok := gs.past[name]
		if !ok {
			return fmt.Errorf("trainer: no value for graph input %q", name)
		}
		t, err := onnx.NewEmptyTensor[float32](onnx.NewShape(rows, kv[0], 0, kv[1]))
		if err != nil {
			return fmt.Errorf("trainer: %w", err)
		}
		made = append(made, t)
		vals[i] = t
	}
	outs := make([]onnx.Value, len(gs.outputs))
	for i, name := range gs.outputs {
		outs[i] = out[name]
	}
	if err := gs.sess.Run(vals, outs); err != nil {
		return err
	}
	for i, name := range gs.outputs {
		out[name] = outs[i]
	}
	return nil
}

func (gs *graphSession) close() error { return gs.sess.Close() }

// tensor wraps a Go slice as an ONNX tensor (no copy).
func tensor[T onnx.TensorData](data []T, shape ...int64) (*onnx.Tensor[T], error) {
	t, err := onnx.NewTensor(onnx.NewShape(shape...), data)
	if err != nil {
		return nil, fmt.Errorf("trainer: tensor %v: %w", shape, err)
	}
	return t, nil
}

// tokenTensors makes input_ids, attention_mask, targets and loss_mask of a batch. free
// destroys those four only, so callers may add other values to the map.
func tokenTensors(sb *stepBatch) (map[string]onnx.Value, func(), error) {
	r, s := int64(sb.rows), int64(sb.seq)
	m := map[string]onnx.Value{}
	var made []onnx.Value
	free := func() { ort.DestroyAll(made...) }
	ids, err1 := tensor(sb.ids, r, s)
	att, err2 := tensor(sb.mask, r, s)
	tg, err3 := tensor(sb.targets, r, s)
	lm, err4 := tensor(sb.lossMask, r, s)
	for _, v := range []onnx.Value{ids, att, tg, lm} {
		if v != nil {
			made = append(made, v)
		}
	}
	if err := errors.Join(err1, err2, err3, err4); err != nil {
		free()
		return nil, nil, err
	}
	m["input_ids"], m["attention_mask"], m[InTargets], m[InLossMask] = ids, att, tg, lm
	return m, free, nil
}
