package gradcheck

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/panacea-go/toolkit/export"
	"github.com/panacea-go/toolkit/internal/testutil"
)

// exportCase exports a Hugging Face folder into a temporary export folder.
func exportCase(t *testing.T, src string, opts export.Options) string {
	t.Helper()
	dst := t.TempDir()
	if _, err := export.Export(src, dst, opts); err != nil {
		t.Fatalf("export %s: %v", src, err)
	}
	return dst
}

// TestWholeModels checks the gradients of U, V, σ and s of exported Llama-family and GPT-2
// models (and of a model exported by torch.onnx) with SVD-LoRA against finite differences of
// a token-level cross-entropy, in float64.
func TestWholeModels(t *testing.T) {
	testutil.InitORT(t)
	root := testutil.RepoRoot(t)
	cases := []struct {
		name   string
		src    string
		opts   export.Options
		layers int
	}{
		{"llama_gqa_tied", filepath.Join(root, "testdata/export/llama_gqa_tied"), export.Options{}, 14},
		{"llama_f16_weights", filepath.Join(root, "testdata/export/llama_rope_linear_f16"),
			export.Options{DType: "f16"}, 14},
		{"qwen2_bias", filepath.Join(root, "testdata/export/qwen2_bias"), export.Options{}, 14},
		{"gpt2", filepath.Join(root, "testdata/export/gpt2"), export.Options{}, 8},
		{"stories260k", testutil.SharedData(t, "stories260k-hf"), export.Options{}, 35},
	}
	cases = append(cases, struct {
		name   string
		src    string
		opts   export.Options
		layers int
	}{"torch_exporter", "", export.Options{}, 12})
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// A model written by torch.onnx (gen_torch_lm.py), not by the toolkit.
			dir := filepath.Join("testdata", "torch_lm")
			if tc.src != "" {
				dir = exportCase(t, tc.src, tc.opts)
			}
			rep, err := Run(dir, Options{Samples: 3})
			if err != nil {
				t.Fatal(err)
			}
			var b strings.Builder
			if err := rep.Write(&b); err != nil {
				t.Fatal(err)
			}
			t.Log("\n" + b.String())
			if rep.Layers != tc.layers {
				t.Errorf("%d adapted layers, want %d", rep.Layers, tc.layers)
			}
			if len(rep.Groups) != 4 {
				t.Fatalf("%d groups, want U, V, sigma, s", len(rep.Groups))
			}
			for _, g := range rep.Groups {
				if g.Checked == 0 {
					t.Errorf("group %s: nothing checked", g.Name)
				}
			}
			if !rep.OK() || rep.MaxRel() > 1e-6 {
				t.Errorf("gradients disagree with finite differences (max rel err %g)", rep.MaxRel())
			}
		})
	}
}

func TestRunErrors(t *testing.T) {
	testutil.InitORT(t)
	root := testutil.RepoRoot(t)
	withPast := exportCase(t, filepath.Join(root, "testdata/export/llama_gqa_tied"),
		export.Options{WithPast: true})
	cases := []struct {
		name string
		dir  string
		opts Options
		want string
	}{
		{"missing folder", filepath.Join(t.TempDir(), "nothing"), Options{}, "load"},
		{"past inputs", withPast, Options{}, "past key values"},
		{"no target", withPast, Options{Targets: []string{"nothing_matches"}}, "match none"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Run(tc.dir, tc.opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}
