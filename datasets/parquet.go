package datasets

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/parquet-go/parquet-go"
)

// readParquet reads every row of a Parquet file into records numbered by row (1-based).
// Column values become JSON so that every container format shares one row parser: strings,
// numbers, booleans, nulls, lists (e.g. messages) and groups (e.g. {role, content}).
func readParquet(raw []byte, display string) (recs []record, err error) {
	// parquet-go panics on some malformed inputs; turn that into an error naming the file.
	defer func() {
		if r := recover(); r != nil {
			recs, err = nil, fmt.Errorf("datasets: %s: malformed parquet: %v", display, r)
		}
	}()
	f, err := parquet.OpenFile(bytes.NewReader(raw), int64(len(raw)))
	if err != nil {
		return nil, fmt.Errorf("datasets: %s: parquet: %w", display, err)
	}
	reader := parquet.NewReader(f)
	defer reader.Close()
	for row := 1; ; row++ {
		values := map[string]any{}
		err := reader.Read(&values)
		if errors.Is(err, io.EOF) {
			return recs, nil
		}
		pos := position{file: display, line: row, row: true}
		if err != nil {
			return nil, fmt.Errorf("datasets: %s: %w", pos, err)
		}
		rec := record{pos: pos, fields: make(map[string]json.RawMessage, len(values))}
		for k, v := range values {
			b, err := json.Marshal(jsonable(v))
			if err != nil {
				rec.err = fmt.Errorf("column %s: %w", k, err)
				break
			}
			rec.fields[k] = b
		}
		recs = append(recs, rec)
	}
}

// jsonable turns byte slices (Parquet BYTE_ARRAY without a string annotation) into strings,
// recursively, so they marshal as JSON text rather than base64.
func jsonable(v any) any {
	switch x := v.(type) {
	case []byte:
		return string(x)
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = jsonable(e)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = jsonable(e)
		}
		return out
	default:
		return v
	}
}
