package randmodel

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/panacea-go/toolkit/export/safetensors"
)

// TestWriteLlama writes a one-layer model and checks config.json, every tensor's shape, the
// norm weights, the draw order and seeding of the first embedding values, and the spread.
func TestWriteLlama(t *testing.T) {
	dir := t.TempDir()
	if err := WriteLlama(dir, 1, 7); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		Layers int    `json:"num_hidden_layers"`
		Vocab  int    `json:"vocab_size"`
		Type   string `json:"model_type"`
	}
	if err := json.Unmarshal(raw, &cfg); err != nil {
		t.Fatalf("config.json: %v", err)
	}
	if cfg.Layers != 1 || cfg.Vocab != VocabSize || cfg.Type != "llama" {
		t.Fatalf("config.json: %+v", cfg)
	}

	m, err := safetensors.OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	want := map[string][]int64{
		"model.embed_tokens.weight":                      {VocabSize, Hidden},
		"model.norm.weight":                              {Hidden},
		"model.layers.0.input_layernorm.weight":          {Hidden},
		"model.layers.0.post_attention_layernorm.weight": {Hidden},
		"model.layers.0.self_attn.q_proj.weight":         {Heads * HeadDim, Hidden},
		"model.layers.0.self_attn.k_proj.weight":         {KVHeads * HeadDim, Hidden},
		"model.layers.0.self_attn.v_proj.weight":         {KVHeads * HeadDim, Hidden},
		"model.layers.0.self_attn.o_proj.weight":         {Hidden, Heads * HeadDim},
		"model.layers.0.mlp.gate_proj.weight":            {Intermediate, Hidden},
		"model.layers.0.mlp.up_proj.weight":              {Intermediate, Hidden},
		"model.layers.0.mlp.down_proj.weight":            {Hidden, Intermediate},
	}
	if got := m.Names(); len(got) != len(want) {
		t.Fatalf("tensors %v, want the %d of one layer", got, len(want))
	}
	for name, shape := range want {
		info, err := m.Info(name)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(info.Shape, shape) || info.DType != safetensors.F32 {
			t.Errorf("%s: %s %v, want F32 %v", name, info.DType, info.Shape, shape)
		}
	}

	norm, err := m.Float32("model.layers.0.input_layernorm.weight")
	if err != nil {
		t.Fatal(err)
	}
	if slices.ContainsFunc(norm, func(v float32) bool { return v != 1 }) {
		t.Error("norm weights are not all 1")
	}
	emb, err := m.Float32("model.embed_tokens.weight")
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(7, 35))
	for i := range 4 {
		if w := float32(rng.NormFloat64() * 0.02); emb[i] != w {
			t.Fatalf("embedding[%d] = %v, want %v (the first draws of PCG(7, 35))", i, emb[i], w)
		}
	}
	var sq float64
	for _, v := range emb {
		sq += float64(v) * float64(v)
	}
	if std := math.Sqrt(sq / float64(len(emb))); math.Abs(std-0.02) > 1e-4 {
		t.Errorf("embedding std %v, want 0.02", std)
	}
}
