// Package testutil finds what the project's tests need from outside the repository: the real
// models and data in shared/data beside the checkout, and the ONNX Runtime library.
//
// On CI (CI=true) a missing input fails the test instead of skipping it: CI always provides
// both, so a skip there would hide a broken set-up.
package testutil

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/panacea-go/toolkit/ort"
)

// RepoRoot returns the folder holding go.mod, found by walking up from the working directory.
func RepoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatalf("testutil: getwd: %v", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatalf("testutil: no go.mod above the working directory")
		}
		dir = parent
	}
}

// SharedData returns the path of shared/data/<name> (the real models and data sets). It
// honours TOOLKIT_SHARED_DATA, else uses ../shared/data beside the repository root.
func SharedData(t testing.TB, name string) string {
	t.Helper()
	base := os.Getenv("TOOLKIT_SHARED_DATA")
	if base == "" {
		base = filepath.Join(RepoRoot(t), "..", "shared", "data")
	}
	p := filepath.Join(base, name)
	if _, err := os.Stat(p); err != nil {
		missing(t, "shared data %s not found (set TOOLKIT_SHARED_DATA): %v", p, err)
	}
	return p
}

// ORTLib returns the path of libonnxruntime.so.1: TOOLKIT_ORT_LIB if set, else the cache that
// scripts/fetch-ort.sh fills.
func ORTLib(t testing.TB) string {
	t.Helper()
	p := ort.ResolveLib("")
	if _, err := os.Stat(p); err != nil {
		missing(t, "ONNX Runtime library %s not found: run scripts/fetch-ort.sh or set TOOLKIT_ORT_LIB", p)
	}
	return p
}

// InitORT loads the ONNX Runtime library for a test (once per process).
func InitORT(t testing.TB) {
	t.Helper()
	if err := ort.Init(ORTLib(t)); err != nil {
		t.Fatal(err)
	}
}

func missing(t testing.TB, format string, args ...any) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatalf(format, args...)
	}
	t.Skipf(format, args...)
}
