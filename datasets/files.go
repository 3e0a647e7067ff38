package datasets

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
)

// A record is one row of a data file: its fields, undecoded, and where it came from.
type record struct {
	pos    position
	fields map[string]json.RawMessage
	err    error // non-nil: the row could not be parsed (reason malformed)
}

// position names a row: a line number for JSONL and JSON files, a row number for Parquet.
type position struct {
	file string
	line int
	row  bool // true: line is a 1-based Parquet row number
}

// String writes "file:line", or "file: row N" for Parquet.
func (p position) String() string {
	if p.row {
		return fmt.Sprintf("%s: row %d", p.file, p.line)
	}
	return fmt.Sprintf("%s:%d", p.file, p.line)
}

// fileKind is the container format of a data file, found from its first bytes.
type fileKind int

const (
	kindJSONL fileKind = iota
	kindJSONArray
	kindParquet
)

var (
	gzipMagic    = []byte{0x1f, 0x8b}
	parquetMagic = []byte("PAR1")
	utf8BOM      = []byte{0xef, 0xbb, 0xbf}
)

// readFile reads every row of a data file.
//
// TODO: the whole (decompressed) file is held in memory, then every row; stream rows for
// data sets larger than memory once one is needed. display is the name used in positions and errors
// (the path as the config wrote it). Errors of the file as a whole (missing, bad gzip stream,
// broken JSON array) are returned; a malformed JSONL line becomes a record with err set.
func readFile(path, display string) ([]record, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("datasets: %w", err)
	}
	if bytes.HasPrefix(raw, gzipMagic) {
		zr, err := gzip.NewReader(bytes.NewReader(raw))
		if err != nil {
			return nil, fmt.Errorf("datasets: %s: gzip: %w", display, err)
		}
		raw, err = io.ReadAll(zr)
		if err != nil {
			return nil, fmt.Errorf("datasets: %s: gzip: %w", display, err)
		}
	}
	switch sniff(raw) {
	case kindParquet:
		return readParquet(raw, display)
	case kindJSONArray:
		return readJSONArray(raw, display)
	default:
		return readJSONL(bytes.NewReader(raw), display)
	}
}

// sniff tells the container format from the (decompressed) content.
//
// TODO: a JSON file holding one object with the rows under a key (e.g. {"data": [...]}) is not
// read; only JSONL and top-level arrays are.
func sniff(raw []byte) fileKind {
	if bytes.HasPrefix(raw, parquetMagic) {
		return kindParquet
	}
	trimmed := bytes.TrimLeft(bytes.TrimPrefix(raw, utf8BOM), " \t\r\n")
	if len(trimmed) > 0 && trimmed[0] == '[' {
		return kindJSONArray
	}
	return kindJSONL
}

// MaxLineBytes bounds one JSONL line, so that a corrupt or hostile file (one huge line, a
// gzip bomb) fails with an error naming the line instead of exhausting memory.
const MaxLineBytes = 16 << 20

// readLine reads up to and including the next newline, refusing lines over MaxLineBytes.
func readLine(br *bufio.Reader) ([]byte, error) {
	var line []byte
	for {
		chunk, err := br.ReadSlice('\n')
		if len(line)+len(chunk) > MaxLineBytes {
			return nil, fmt.Errorf("line longer than %d MiB", MaxLineBytes>>20)
		}
		line = append(line, chunk...)
		if !errors.Is(err, bufio.ErrBufferFull) {
			return line, err
		}
	}
}

// readJSONL reads one JSON object per line; blank lines are skipped and not counted as rows.
func readJSONL(r io.Reader, display string) ([]record, error) {
	br := bufio.NewReaderSize(r, 1<<16)
	var out []record
	for line := 1; ; line++ {
		b, err := readLine(br)
		if len(b) > 0 {
			if line == 1 {
				b = bytes.TrimPrefix(b, utf8BOM)
			}
			if len(bytes.TrimSpace(b)) > 0 {
				rec := parseJSONLine(b)
				rec.pos = position{file: display, line: line}
				out = append(out, rec)
			}
		}
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("datasets: %s:%d: %w", display, line, err)
		}
	}
}

// parseJSONLine decodes one JSONL line into a record (without its position). It never
// panics; a line that is not one JSON object yields a record with err set.
func parseJSONLine(b []byte) record {
	var fields map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&fields); err != nil {
		return record{err: fmt.Errorf("not a JSON object: %w", err)}
	}
	if fields == nil {
		return record{err: errors.New("not a JSON object: null")}
	}
	if len(bytes.TrimSpace(b[dec.InputOffset():])) > 0 {
		return record{err: errors.New("not a JSON object: trailing data after the object")}
	}
	return record{fields: fields}
}

// readJSONArray reads a file holding one JSON array of objects. An element that is not an
// object is a malformed row; a syntax error ends the file with an error naming its line.
func readJSONArray(raw []byte, display string) ([]record, error) {
	raw = bytes.TrimPrefix(raw, utf8BOM)
	dec := json.NewDecoder(bytes.NewReader(raw))
	lineAt := lineCounter(raw)
	if _, err := dec.Token(); err != nil { // the opening '['
		return nil, fmt.Errorf("datasets: %s:%d: %w", display, lineAt(dec.InputOffset()), err)
	}
	var out []record
	for dec.More() {
		start := dec.InputOffset()
		// The element starts after the separator and whitespace that precede it.
		off := start + int64(len(raw[start:])-len(bytes.TrimLeft(raw[start:], " \t\r\n,")))
		var elem json.RawMessage
		if err := dec.Decode(&elem); err != nil {
			at := off
			var syn *json.SyntaxError
			if errors.As(err, &syn) && syn.Offset > at {
				at = syn.Offset
			}
			return nil, fmt.Errorf("datasets: %s:%d: malformed JSON array: %w",
				display, lineAt(at), err)
		}
		rec := parseJSONLine(elem)
		rec.pos = position{file: display, line: lineAt(off)}
		out = append(out, rec)
	}
	if _, err := dec.Token(); err != nil { // the closing ']'
		return nil, fmt.Errorf("datasets: %s:%d: malformed JSON array: %w",
			display, lineAt(dec.InputOffset()), err)
	}
	return out, nil
}

// lineCounter returns a function from byte offset to 1-based line number; offsets must be
// asked in increasing order.
func lineCounter(raw []byte) func(int64) int {
	line, at := 1, int64(0)
	return func(off int64) int {
		if off > int64(len(raw)) {
			off = int64(len(raw))
		}
		if off > at {
			line += bytes.Count(raw[at:off], []byte{'\n'})
			at = off
		}
		return line
	}
}
