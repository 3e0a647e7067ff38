package export

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Errors that Export wraps, so that callers can tell the kinds of failure apart with
// errors.Is. The messages themselves name the key, tensor or architecture at fault.
var (
	// ErrUnsupported: the architecture, model type, activation or rope_scaling type is not
	// one this package exports.
	ErrUnsupported = errors.New("unsupported model")
	// ErrConfig: a config.json key is missing or has an invalid value.
	ErrConfig = errors.New("invalid config")
	// ErrMissingTensor: a tensor the config calls for is not in the checkpoint.
	ErrMissingTensor = errors.New("missing tensor")
	// ErrTensorShape: a tensor's shape or dtype differs from what the config implies.
	ErrTensorShape = errors.New("mis-shaped tensor")
)

// configFile is the name of the Hugging Face model configuration in a model folder.
const configFile = "config.json"

// generationConfigFile holds the generation defaults (eos_token_id may be a list).
const generationConfigFile = "generation_config.json"

// rawConfig is config.json kept as raw JSON per key, so that presence can be checked
// before the per-family structs are decoded.
type rawConfig struct {
	data []byte
	keys map[string]json.RawMessage
}

// readConfig reads dir/config.json.
func readConfig(dir string) (*rawConfig, error) {
	data, err := os.ReadFile(filepath.Join(dir, configFile))
	if err != nil {
		return nil, fmt.Errorf("export: read %s: %w", configFile, err)
	}
	c := &rawConfig{data: data}
	if err := json.Unmarshal(data, &c.keys); err != nil {
		return nil, fmt.Errorf("export: %s is not a JSON object: %w: %w", configFile, err, ErrConfig)
	}
	return c, nil
}

// has reports whether key is present and not null.
func (c *rawConfig) has(key string) bool {
	v, ok := c.keys[key]
	return ok && strings.TrimSpace(string(v)) != "null"
}

// require checks that every key is present and not null.
func (c *rawConfig) require(keys ...string) error {
	for _, k := range keys {
		if !c.has(k) {
			return configErr(k, "is missing")
		}
	}
	return nil
}

// decode unmarshals the whole file into v (a per-family struct with HF key names as json
// tags); a value of the wrong JSON type is reported with its key.
func (c *rawConfig) decode(v any) error {
	if err := json.Unmarshal(c.data, v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return configErr(te.Field, fmt.Sprintf("has JSON %s, want %s", te.Value, te.Type))
		}
		return fmt.Errorf("export: decode %s: %w: %w", configFile, err, ErrConfig)
	}
	return nil
}

// str returns the string value of key, or "" when absent or not a string.
func (c *rawConfig) str(key string) string {
	var s string
	if v, ok := c.keys[key]; ok {
		_ = json.Unmarshal(v, &s)
	}
	return s
}

// architecture returns architectures[0], or "" when the list is absent or empty.
func (c *rawConfig) architecture() string {
	var archs []string
	if v, ok := c.keys["architectures"]; ok {
		_ = json.Unmarshal(v, &archs)
	}
	if len(archs) == 0 {
		return ""
	}
	return archs[0]
}

// configErr builds the error for a bad config key.
func configErr(key, msg string) error {
	return fmt.Errorf("export: %s: key %q %s: %w", configFile, key, msg, ErrConfig)
}

// maxDim bounds every integer size in a config, so that a corrupt file cannot drive huge
// allocations before the tensor shapes are checked.
const maxDim = 1 << 24

// positive checks that each named value is > 0 (and integers ≤ maxDim); pairs are key,
// value.
func positive(pairs ...any) error {
	for i := 0; i+1 < len(pairs); i += 2 {
		key, _ := pairs[i].(string)
		switch v := pairs[i+1].(type) {
		case int:
			if v <= 0 || v > maxDim {
				return configErr(key, fmt.Sprintf("must be in [1, %d], got %d", maxDim, v))
			}
		case float64:
			if !(v > 0) {
				return configErr(key, fmt.Sprintf("must be positive, got %g", v))
			}
		}
	}
	return nil
}

// tokenIDs are the special token ids recorded in the manifest.
type tokenIDs struct {
	BOS  *int
	EOS  []int
	Pad  *int
	From string // the file the EOS ids came from
}

// readTokenIDs takes bos/eos/pad from generation_config.json when it sets them, else from
// config.json. eos_token_id may be one id or a list.
func readTokenIDs(dir string, cfg *rawConfig) (tokenIDs, error) {
	var ids tokenIDs
	gen := map[string]json.RawMessage{}
	data, err := os.ReadFile(filepath.Join(dir, generationConfigFile))
	switch {
	case err == nil:
		if err := json.Unmarshal(data, &gen); err != nil {
			return ids, fmt.Errorf("export: %s is not a JSON object: %w", generationConfigFile, err)
		}
	case !errors.Is(err, fs.ErrNotExist):
		return ids, fmt.Errorf("export: read %s: %w", generationConfigFile, err)
	}
	pick := func(key string) (json.RawMessage, string) {
		if v, ok := gen[key]; ok && strings.TrimSpace(string(v)) != "null" {
			return v, generationConfigFile
		}
		if cfg.has(key) {
			return cfg.keys[key], configFile
		}
		return nil, ""
	}
	for _, k := range []struct {
		key string
		dst **int
	}{{"bos_token_id", &ids.BOS}, {"pad_token_id", &ids.Pad}} {
		raw, file := pick(k.key)
		if raw == nil {
			continue
		}
		list, err := intOrList(raw)
		if err != nil || len(list) == 0 {
			return ids, fmt.Errorf("export: %s: key %q: want an integer id: %w", file, k.key, ErrConfig)
		}
		id := list[0]
		*k.dst = &id
	}
	if raw, file := pick("eos_token_id"); raw != nil {
		list, err := intOrList(raw)
		if err != nil {
			return ids, fmt.Errorf("export: %s: key %q: want an id or a list of ids: %w",
				file, "eos_token_id", ErrConfig)
		}
		ids.EOS, ids.From = list, file
	}
	return ids, nil
}

// intOrList decodes an integer or a list of integers.
func intOrList(raw json.RawMessage) ([]int, error) {
	var one int
	if err := json.Unmarshal(raw, &one); err == nil {
		return []int{one}, nil
	}
	var list []int
	if err := json.Unmarshal(raw, &list); err != nil {
		return nil, err
	}
	return list, nil
}
