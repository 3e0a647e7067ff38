// Package cache names the folder where the toolkit keeps what it fetched or computed once:
// the ONNX Runtime library, npm reference packages, reference log-probabilities.
package cache

import (
	"os"
	"path/filepath"
)

// Dir is $TOOLKIT_CACHE, else $XDG_CACHE_HOME/panacea-toolkit, else ~/.cache/panacea-toolkit
// (the same rule as scripts/setup.sh).
func Dir() string {
	if c := os.Getenv("TOOLKIT_CACHE"); c != "" {
		return c
	}
	base := os.Getenv("XDG_CACHE_HOME")
	if base == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			home = os.TempDir()
		}
		base = filepath.Join(home, ".cache")
	}
	return filepath.Join(base, "panacea-toolkit")
}
