package safetensors

import (
	"bytes"
	"encoding/json"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/panacea-go/toolkit/internal/testutil"
)

// writeModel writes shards (file name → tensors) into dir and, when weightMap is not nil,
// an index whose weight_map is weightMap.
func writeModel(t *testing.T, dir string, shards map[string][]Tensor, weightMap map[string]string) {
	t.Helper()
	for name, tensors := range shards {
		if err := Write(filepath.Join(dir, name), tensors, map[string]string{"format": "pt"}); err != nil {
			t.Fatal(err)
		}
	}
	if weightMap == nil {
		return
	}
	idx, err := json.Marshal(map[string]any{
		"metadata":   map[string]any{"total_size": 24},
		"weight_map": weightMap,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, IndexFileName), idx, 0o644); err != nil {
		t.Fatal(err)
	}
}

func f32Tensor(t *testing.T, name string, v ...float32) Tensor {
	t.Helper()
	tensor, err := FromFloat32(name, F32, []int64{int64(len(v))}, v)
	if err != nil {
		t.Fatal(err)
	}
	return tensor
}

func TestOpenDirSharded(t *testing.T) {
	dir := t.TempDir()
	shard1, shard2 := "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"
	writeModel(t, dir, map[string][]Tensor{
		shard1: {f32Tensor(t, "a", 1, 2), f32Tensor(t, "b", 3)},
		shard2: {f32Tensor(t, "c", 4, 5, 6), f32Tensor(t, "stray", 0)},
	}, map[string]string{"a": shard1, "b": shard1, "c": shard2})

	var logs bytes.Buffer // capture the warning about the stray tensor
	prev := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(&logs, nil)))
	m, err := OpenDir(dir)
	slog.SetDefault(prev)
	if err != nil {
		t.Fatalf("OpenDir: %v", err)
	}
	defer m.Close()
	if !strings.Contains(logs.String(), "tensor=stray") {
		t.Errorf("no warning about the unlisted tensor; logs: %q", logs.String())
	}
	if got := m.Names(); !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Errorf("Names = %v, want [a b c] (stray is not in the weight_map)", got)
	}
	if got := m.Files(); len(got) != 2 || filepath.Base(got[0]) != shard1 || filepath.Base(got[1]) != shard2 {
		t.Errorf("Files = %v, want each shard once", got)
	}
	tests := []struct {
		name string
		want []float32
	}{{"a", []float32{1, 2}}, {"b", []float32{3}}, {"c", []float32{4, 5, 6}}}
	for _, tt := range tests {
		got, err := m.Float32(tt.name)
		if err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("Float32(%s) = %v, %v; want %v", tt.name, got, err, tt.want)
		}
	}
	if m.Has("stray") {
		t.Error("Has(stray) = true, want false")
	}
	if _, err := m.Bytes("stray"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Bytes(stray) = %v, want ErrNotFound", err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Info("a"); !errors.Is(err, ErrClosed) {
		t.Errorf("Info after Close = %v, want ErrClosed", err)
	}
}

func TestOpenDirSingle(t *testing.T) {
	dir := t.TempDir()
	writeModel(t, dir, map[string][]Tensor{SingleFileName: {f32Tensor(t, "x", 7)}}, nil)
	m, err := OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if got, err := m.Float32("x"); err != nil || got[0] != 7 {
		t.Errorf("Float32(x) = %v, %v", got, err)
	}
	if _, err := OpenDir(t.TempDir()); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("OpenDir(empty folder) = %v, want ErrNotExist", err)
	}
}

func TestOpenDirBadIndex(t *testing.T) {
	const shard = "model-00001-of-00001.safetensors"
	outside := t.TempDir()
	writeModel(t, outside, map[string][]Tensor{"evil.safetensors": {f32Tensor(t, "a", 1)}}, nil)
	tests := []struct {
		name      string
		weightMap map[string]string
		index     string // raw index text, used instead of weightMap when set
		setup     func(dir string)
		tensor    string
		msg       string
	}{
		{name: "missing tensor", weightMap: map[string]string{"a": shard, "ghost": shard},
			tensor: "ghost", msg: shard},
		{name: "missing shard file",
			weightMap: map[string]string{"a": shard, "b": "model-00002-of-00002.safetensors"},
			tensor:    "b", msg: "model-00002-of-00002.safetensors"},
		{name: "dot-dot escape", weightMap: map[string]string{"a": "../evil.safetensors"},
			tensor: "a", msg: "escapes"},
		{name: "absolute path", weightMap: map[string]string{"a": filepath.Join(outside, "evil.safetensors")},
			tensor: "a", msg: "escapes"},
		{name: "symlink escape", weightMap: map[string]string{"a": "link.safetensors"},
			setup: func(dir string) {
				target := filepath.Join(outside, "evil.safetensors")
				if err := os.Symlink(target, filepath.Join(dir, "link.safetensors")); err != nil {
					t.Fatal(err)
				}
			}, tensor: "a", msg: "escapes"},
		{name: "bad JSON", index: `{"weight_map": [}`, msg: "invalid index JSON"},
		{name: "empty weight_map", index: `{"metadata": {}}`, msg: "weight_map"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			writeModel(t, dir, map[string][]Tensor{shard: {f32Tensor(t, "a", 1)}}, tt.weightMap)
			if tt.index != "" {
				if err := os.WriteFile(filepath.Join(dir, IndexFileName), []byte(tt.index), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if tt.setup != nil {
				tt.setup(dir)
			}
			m, err := OpenDir(dir)
			var fe *FormatError
			if !errors.As(err, &fe) {
				if m != nil {
					m.Close()
				}
				t.Fatalf("OpenDir = %v, want a *FormatError", err)
			}
			if fe.Tensor != tt.tensor || !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("error %q: want tensor %q and %q in the message", err, tt.tensor, tt.msg)
			}
			if testing.Verbose() {
				t.Log(err)
			}
		})
	}
}

// TestStories260K reads the real stories260K checkpoint (47 F32 tensors, tied head).
func TestStories260K(t *testing.T) {
	dir := testutil.SharedData(t, "stories260k-hf")
	m, err := OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	names := m.Names()
	if len(names) != 47 {
		t.Errorf("%d tensors, want 47", len(names))
	}
	if m.Has("lm_head.weight") {
		t.Error("lm_head.weight present, want none (tied head)")
	}
	shapes := []struct {
		name  string
		shape []int64
	}{
		{"model.embed_tokens.weight", []int64{512, 64}},
		{"model.layers.0.self_attn.q_proj.weight", []int64{64, 64}},
		{"model.layers.4.self_attn.k_proj.weight", []int64{32, 64}},
		{"model.layers.2.mlp.gate_proj.weight", []int64{172, 64}},
		{"model.layers.2.mlp.down_proj.weight", []int64{64, 172}},
		{"model.norm.weight", []int64{64}},
	}
	for _, s := range shapes {
		info, err := m.Info(s.name)
		if err != nil {
			t.Errorf("Info(%s): %v", s.name, err)
			continue
		}
		if info.DType != F32 || !slices.Equal(info.Shape, s.shape) {
			t.Errorf("%s: %s %v, want F32 %v", s.name, info.DType, info.Shape, s.shape)
		}
	}
	emb, err := m.Float32("model.embed_tokens.weight")
	if err != nil {
		t.Fatal(err)
	}
	h, err := m.Float16("model.embed_tokens.weight")
	if err != nil {
		t.Fatal(err)
	}
	var nonzero int
	for i, v := range emb {
		if v != v || v > 100 || v < -100 {
			t.Fatalf("embedding[%d] = %g, not a plausible weight", i, v)
		}
		if v != 0 {
			nonzero++
		}
		if h[i] != F32ToF16(v) {
			t.Fatalf("Float16[%d] = %#04x, want %#04x", i, h[i], F32ToF16(v))
		}
	}
	if nonzero < len(emb)/2 {
		t.Errorf("only %d of %d embedding values are non-zero", nonzero, len(emb))
	}
}
