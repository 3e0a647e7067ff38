package lambda

import (
	"bytes"
	"encoding/xml"
	"image/color"
	"image/png"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestPlotSVG(t *testing.T) {
	f := testFront()
	var b bytes.Buffer
	if err := PlotSVG(&b, f, Plot{Title: "helpful vs harmless <test>"}); err != nil {
		t.Fatal(err)
	}
	if dir := os.Getenv("LAMBDA_PLOT_DIR"); dir != "" {
		_ = os.WriteFile(filepath.Join(dir, "front.svg"), b.Bytes(), 0o644)
	}

	// Walk every token: a malformed document fails here.
	dec := xml.NewDecoder(&b)
	counts := map[string]int{}
	var root string
	texts := ""
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("SVG does not parse: %v", err)
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			if root == "" {
				root = tok.Name.Local
				if tok.Name.Space != "http://www.w3.org/2000/svg" {
					t.Errorf("root namespace %q", tok.Name.Space)
				}
			}
			counts[tok.Name.Local]++
		case xml.CharData:
			texts += string(tok)
		}
	}
	if root != "svg" {
		t.Fatalf("root element %q, want svg", root)
	}
	// 11 points plus the legend's marker sample; one front line.
	if counts["circle"] != len(f.Values)+1 || counts["polyline"] != 1 {
		t.Errorf("%d circles and %d polylines", counts["circle"], counts["polyline"])
	}
	for _, want := range []string{"helpful vs harmless <test>", "helpful (max)", "harmless (max)",
		"non-dominated", "dominated"} {
		if !strings.Contains(texts, want) {
			t.Errorf("SVG text lacks %q", want)
		}
	}
}

func TestPlotPNG(t *testing.T) {
	f := testFront()
	f.Maximize = []bool{true, false}
	opt := Plot{Width: 500, Height: 360, XLabel: "helpfulness", YLabel: "harm λ₂"}
	var b bytes.Buffer
	if err := PlotPNG(&b, f, opt); err != nil {
		t.Fatal(err)
	}
	if dir := os.Getenv("LAMBDA_PLOT_DIR"); dir != "" {
		_ = os.WriteFile(filepath.Join(dir, "front.png"), b.Bytes(), 0o644)
	}
	img, err := png.Decode(&b)
	if err != nil {
		t.Fatalf("PNG does not decode: %v", err)
	}
	if got := img.Bounds().Size(); got.X != 500 || got.Y != 360 {
		t.Fatalf("size %v, want 500×360", got)
	}
	white := color.RGBAModel.Convert(color.White)
	inked := 0
	near := func(c color.Color, want color.RGBA) bool {
		r, g, b, _ := c.RGBA()
		d := func(x uint32, y uint8) int { return abs(int(x>>8) - int(y)) }
		return d(r, want.R) < 8 && d(g, want.G) < 8 && d(b, want.B) < 8
	}
	fromSeen, toSeen := false, false
	for y := range 360 {
		for x := range 500 {
			c := img.At(x, y)
			if color.RGBAModel.Convert(c) != white {
				inked++
			}
			fromSeen = fromSeen || near(c, defaultFrom)
			toSeen = toSeen || near(c, defaultTo)
		}
	}
	if inked < 2000 {
		t.Errorf("only %d non-background pixels", inked)
	}
	if !fromSeen || !toSeen {
		t.Errorf("gradient end colours drawn: from %v, to %v", fromSeen, toSeen)
	}
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

func TestPlotErrors(t *testing.T) {
	f := testFront()
	tests := []struct {
		name string
		opt  Plot
		want string
	}{
		{"same objective", Plot{Objectives: [2]int{1, 1}}, "objectives (1, 1)"},
		{"out of range", Plot{Objectives: [2]int{0, 2}}, "objectives (0, 2)"},
		{"too small", Plot{Width: 50}, "size 50×480"},
		{"too large", Plot{Height: 1 << 20}, "want each side"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkErr(t, PlotSVG(io.Discard, f, tt.opt), tt.want)
			checkErr(t, PlotPNG(io.Discard, f, tt.opt), tt.want)
		})
	}
	checkErr(t, PlotSVG(io.Discard, Front{}, Plot{}), "no points")
	wide := Front{Lambdas: [][]float64{{1, 0}, {0, 1}},
		Values: [][]float64{{-1e308, 0}, {1e308, 1}}}
	checkErr(t, PlotPNG(io.Discard, wide, Plot{}), "too wide")
	// Two values one ulp apart far from zero must still plot, with few ticks.
	narrow := Front{Lambdas: [][]float64{{1, 0}, {0, 1}},
		Values: [][]float64{{1e20, 0}, {math.Nextafter(1e20, 2e20), 1}}}
	if err := PlotSVG(io.Discard, narrow, Plot{}); err != nil {
		t.Errorf("narrow range: %v", err)
	}
}

func TestNiceTicks(t *testing.T) {
	tests := []struct {
		lo, hi   float64
		target   int
		want     []float64
		decimals int
	}{
		{0, 1, 5, []float64{0, 0.2, 0.4, 0.6, 0.8, 1}, 1},
		{-0.06, 1.06, 5, []float64{0, 0.2, 0.4, 0.6, 0.8, 1}, 1},
		{3, 97, 4, []float64{20, 40, 60, 80}, 0},
		{0.012, 0.018, 3, []float64{0.012, 0.014, 0.016, 0.018}, 3},
		{-3, 3, 6, []float64{-3, -2, -1, 0, 1, 2, 3}, 0},
	}
	for _, tt := range tests {
		got := niceTicks(tt.lo, tt.hi, tt.target)
		if got.decimals != tt.decimals || len(got.values) != len(tt.want) {
			t.Fatalf("niceTicks(%v, %v) = %+v, want %v (%d decimals)", tt.lo, tt.hi, got,
				tt.want, tt.decimals)
		}
		for i, v := range got.values {
			if got.label(v) != got.label(tt.want[i]) {
				t.Fatalf("niceTicks(%v, %v) = %v, want %v", tt.lo, tt.hi, got.values, tt.want)
			}
		}
	}
	if s := (axisTicks{decimals: 1}).label(-1e-17); s != "0.0" {
		t.Errorf("label(-1e-17) = %q, want 0.0", s)
	}
}

func TestASCIILabel(t *testing.T) {
	if got := asciiLabel("λ₁ ≥ ξ"); got != "lambda1 ? xi" {
		t.Errorf("asciiLabel = %q", got)
	}
}
