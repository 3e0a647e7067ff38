package tokenizer

import (
	"encoding/json"
	"errors"
	"fmt"
)

// ErrUnsupported marks a component type, or an option value, that this package does not
// implement. Errors wrapping it name the type and the JSON key that holds it.
var ErrUnsupported = errors.New("unsupported")

// FormatError reports a tokenizer file that cannot be used: malformed JSON, a missing or
// inconsistent key, or a component this package does not implement.
type FormatError struct {
	File string // the file at fault
	Key  string // JSON path of the key at fault, e.g. "pre_tokenizer.pretokenizers[0].pattern"
	Err  error  // what is wrong
}

// Error formats the error as "tokenizer: FILE: KEY: reason".
func (e *FormatError) Error() string {
	switch {
	case e.File != "" && e.Key != "":
		return fmt.Sprintf("tokenizer: %s: %s: %v", e.File, e.Key, e.Err)
	case e.File != "":
		return fmt.Sprintf("tokenizer: %s: %v", e.File, e.Err)
	case e.Key != "":
		return fmt.Sprintf("tokenizer: %s: %v", e.Key, e.Err)
	}
	return fmt.Sprintf("tokenizer: %v", e.Err)
}

// Unwrap returns the underlying reason.
func (e *FormatError) Unwrap() error { return e.Err }

// errAt builds a FormatError for the JSON key at fault; the loader fills in the file name.
func errAt(key, format string, args ...any) error {
	return &FormatError{Key: key, Err: fmt.Errorf(format, args...)}
}

// withFile sets the file name on a FormatError (or wraps any other error in one).
func withFile(err error, file string) error {
	var fe *FormatError
	if errors.As(err, &fe) {
		if fe.File == "" {
			fe.File = file
		}
		return err
	}
	return &FormatError{File: file, Err: err}
}

// unsupported reports a component type the package does not implement.
func unsupported(key, kind, typ string) error {
	return errAt(key, "%w %s type %q", ErrUnsupported, kind, typ)
}

// isNull reports whether a JSON value is absent or null.
func isNull(raw json.RawMessage) bool {
	return len(raw) == 0 || string(raw) == "null"
}

// decodeAt unmarshals raw into v, blaming key on failure.
func decodeAt(raw json.RawMessage, key string, v any) error {
	if err := json.Unmarshal(raw, v); err != nil {
		return errAt(key, "decode: %w", err)
	}
	return nil
}

// componentType reads the "type" field of a component object.
func componentType(raw json.RawMessage, key string) (string, error) {
	var head struct {
		Type string `json:"type"`
	}
	if err := decodeAt(raw, key, &head); err != nil {
		return "", err
	}
	if head.Type == "" {
		return "", errAt(key+".type", "missing component type")
	}
	return head.Type, nil
}

// patternJSON is a Split/Replace pattern: exactly one of String (a literal) or Regex is set.
type patternJSON struct {
	String *string `json:"String"`
	Regex  *string `json:"Regex"`
}

// parseSequence reads the list under field of a "Sequence" component at key, parsing each
// element with parse and dropping null ones.
func parseSequence[T comparable](raw json.RawMessage, key, field string,
	parse func(json.RawMessage, string) (T, error)) ([]T, error) {
	var cfg map[string]json.RawMessage
	if err := decodeAt(raw, key, &cfg); err != nil {
		return nil, err
	}
	var subs []json.RawMessage
	if list, ok := cfg[field]; ok {
		if err := decodeAt(list, key+"."+field, &subs); err != nil {
			return nil, err
		}
	}
	var zero T
	var seq []T
	for i, sub := range subs {
		c, err := parse(sub, fmt.Sprintf("%s.%s[%d]", key, field, i))
		if err != nil {
			return nil, err
		}
		if c != zero {
			seq = append(seq, c)
		}
	}
	return seq, nil
}
