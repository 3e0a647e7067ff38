package datasets

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/parquet-go/parquet-go"
)

// writeParquet writes rows (structs with parquet tags) to dir/name.
func writeParquet[T any](t testing.TB, dir, name string, rows []T) string {
	t.Helper()
	var buf bytes.Buffer
	if err := parquet.Write(&buf, rows); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestParquetMessages(t *testing.T) {
	type msg struct {
		Role    string `parquet:"role"`
		Content string `parquet:"content"`
	}
	type row struct {
		Messages []msg  `parquet:"messages,list"`
		Raw      []byte `parquet:"raw"`
	}
	p := writeParquet(t, t.TempDir(), "sft.parquet", []row{
		{Messages: []msg{{"user", "hi"}, {"assistant", "hello"}}, Raw: []byte("x")},
		{Messages: []msg{{"user", "only"}}},
	})
	cfg := &DataConfig{Dimensions: []DimensionConfig{{Name: "s", Source: p}},
		Template: TemplateConfig{Style: StyleHH}, SkipInvalid: true}
	ds := mustLoad(t, cfg, byteTok{})
	d := ds.Dims[0]
	if d.Format != FormatSFT || d.Train.Len() != 1 {
		t.Fatalf("format %s, %d examples", d.Format, d.Train.Len())
	}
	if got := (byteTok{}).Decode(d.Train.SFT[0].Prompt, true); got != "\n\nHuman: hi\n\nAssistant:" {
		t.Errorf("prompt %q", got)
	}
	inv := d.Stats.Sources[0].Invalid
	if len(inv) != 1 || inv[0].Reason != ReasonNoAssistant || inv[0].Lines[0] != 2 {
		t.Errorf("invalid %v, want no assistant turn at row 2", inv)
	}
}
