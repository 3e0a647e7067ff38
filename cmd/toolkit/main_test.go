package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/panacea-go/toolkit/internal/testutil"
)

// TestMain lets a test run this binary as the toolkit itself (for kill tests): with
// TOOLKIT_TEST_MAIN=1 the process is the CLI.
func TestMain(m *testing.M) {
	if os.Getenv("TOOLKIT_TEST_MAIN") == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// run executes the CLI in-process and returns stdout and the error.
func run(t *testing.T, args ...string) (string, error) {
	t.Helper()
	root := newRoot()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	if !strings.Contains(strings.Join(args, " "), "--ort-lib") {
		args = append(args, "--ort-lib", testutil.ORTLib(t))
	}
	root.SetArgs(append(args, "--log-level", "warn"))
	err := root.Execute()
	return out.String(), err
}

type storiesReference struct {
	Record struct {
		Prompt       string `json:"prompt"`
		GeneratedIDs []int  `json:"generated_ids"`
		Text         string `json:"text"`
	} `json:"record"`
}

// TestExportGenerateReference runs the two commands of the README on the real stories260k
// model, with and without KV cache, and checks the greedy text against the reference
// continuation in the model's folder.
func TestExportGenerateReference(t *testing.T) {
	src := testutil.SharedData(t, "stories260k-hf")
	raw, err := os.ReadFile(filepath.Join(src, "reference.json"))
	if err != nil {
		t.Fatal(err)
	}
	var ref storiesReference
	if err := json.Unmarshal(raw, &ref); err != nil {
		t.Fatal(err)
	}
	for _, past := range []bool{false, true} {
		out := filepath.Join(t.TempDir(), "s260k")
		args := []string{"export", "--model", src, "--out", out}
		if past {
			args = append(args, "--with-past")
		}
		if _, err := run(t, args...); err != nil {
			t.Fatal(err)
		}
		text, err := run(t, "generate", "--model", out, "--prompt", ref.Record.Prompt,
			"--max-new-tokens", "64")
		if err != nil {
			t.Fatal(err)
		}
		if text != ref.Record.Text+"\n" {
			t.Fatalf("with past=%v generated\n%q\nwant\n%q", past, text, ref.Record.Text)
		}
	}
}

// TestBadInput checks that wrong flags and inputs fail with errors that name what is wrong.
func TestBadInput(t *testing.T) {
	src := testutil.SharedData(t, "stories260k-hf")
	out := filepath.Join(t.TempDir(), "s260k")
	if _, err := run(t, "export", "--model", src, "--out", out); err != nil {
		t.Fatal(err)
	}
	badCfg := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(badCfg, []byte("model: x\nmax-new-tokenz: 3\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	fracCfg := filepath.Join(t.TempDir(), "frac.yaml")
	negCfg := filepath.Join(t.TempDir(), "neg.yaml")
	for path, key := range map[string]string{fracCfg: "steps: 2.7", negCfg: "seed: -1"} {
		pku := filepath.Join(testutil.SharedData(t, "pku-saferlhf"), "alpaca7b-test-head190.jsonl")
		body := "model: " + out + "\nout: " + t.TempDir() + "\n" + key + "\ndata:\n  dimensions:\n" +
			"    - {name: helpful, source: " + pku + ", label: better_response_id}\n"
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"fractional steps in a config", []string{"train", "--config", fracCfg}, "steps"},
		{"negative seed in a config", []string{"train", "--config", negCfg}, "seed"},
		{"missing model", []string{"generate", "--model", filepath.Join(out, "nope"),
			"--prompt", "x"}, "nope"},
		{"lambda on a base model", []string{"generate", "--model", out, "--prompt", "x",
			"--lambda", "0.5,0.5"}, "no preference input"},
		{"bad dtype", []string{"export", "--model", src, "--out", out + "2", "--dtype", "q4"},
			"--dtype"},
		{"missing export source", []string{"export", "--model", filepath.Join(src, "none"),
			"--out", out + "3"}, "none"},
		{"unknown config key", []string{"generate", "--config", badCfg, "--prompt", "x"},
			"max-new-tokenz"},
		{"top-p out of range", []string{"generate", "--model", out, "--prompt", "x",
			"--top-p", "1.5"}, "--top-p"},
		{"eval on an export", []string{"eval", "--model", out}, "not a training run"},
		{"missing ort lib", []string{"generate", "--model", out, "--prompt", "x",
			"--ort-lib", "/nonexistent/libonnxruntime.so.1"}, "TOOLKIT_ORT_LIB"},
	}
	for _, c := range cases {
		_, err := run(t, c.args...)
		if err == nil {
			t.Errorf("%s: no error", c.name)
			continue
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %q does not mention %q", c.name, err, c.want)
		}
	}
}
