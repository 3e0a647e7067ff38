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
	"slices"
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
		{"short reference", Plot{Reference: []float64{1}}, "Reference has 1 values"},
		{"long reference", Plot{Reference: []float64{1, 2, 3}}, "Reference has 3 values"},
		{"NaN reference", Plot{Reference: []float64{0, math.NaN()}}, "Reference[1] = NaN"},
		{"infinite reference", Plot{Reference: []float64{math.Inf(-1), 0}}, "Reference[0] = -Inf"},
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

// svgTokens parses an SVG document, failing the test if it is malformed, and
// returns its character data and the number of elements per name and per
// class attribute ("path.reference").
func svgTokens(t *testing.T, doc []byte) (string, map[string]int) {
	t.Helper()
	dec := xml.NewDecoder(bytes.NewReader(doc))
	counts := map[string]int{}
	var texts strings.Builder
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return texts.String(), counts
		}
		if err != nil {
			t.Fatalf("SVG does not parse: %v", err)
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			counts[tok.Name.Local]++
			for _, a := range tok.Attr {
				if a.Name.Local == "class" {
					counts[tok.Name.Local+"."+a.Value]++
				}
			}
		case xml.CharData:
			texts.Write(tok)
		}
	}
}

func TestPlotReferenceSVG(t *testing.T) {
	tests := []struct {
		name, label, want string
	}{
		{"default label", "", "base model"},
		{"own label", "SFT <base> & co", "SFT <base> & co"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := testFront()
			var b bytes.Buffer
			opt := Plot{Reference: []float64{0.3, 0.2}, ReferenceLabel: tt.label}
			if err := PlotSVG(&b, f, opt); err != nil {
				t.Fatal(err)
			}
			texts, counts := svgTokens(t, b.Bytes())
			// One marker on the plot, one in the legend; the points stay circles.
			if counts["path.reference"] != 2 || counts["circle"] != len(f.Values)+1 {
				t.Errorf("%d reference markers and %d circles", counts["path.reference"],
					counts["circle"])
			}
			if !strings.Contains(texts, tt.want) {
				t.Errorf("SVG text lacks %q", tt.want)
			}
		})
	}

	// Without a reference there is no marker and no label.
	var b bytes.Buffer
	if err := PlotSVG(&b, testFront(), Plot{ReferenceLabel: "unused"}); err != nil {
		t.Fatal(err)
	}
	if texts, counts := svgTokens(t, b.Bytes()); counts["path.reference"] != 0 ||
		strings.Contains(texts, "unused") {
		t.Errorf("reference drawn without Plot.Reference")
	}
}

func TestPlotReferencePNG(t *testing.T) {
	f := testFront()
	f.Maximize = []bool{true, false}
	opt := Plot{Width: 500, Height: 360, Reference: []float64{0.3, 0.2}}
	l, err := newLayout(f, opt)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := PlotPNG(&b, f, opt); err != nil {
		t.Fatal(err)
	}
	if dir := os.Getenv("LAMBDA_PLOT_DIR"); dir != "" {
		_ = os.WriteFile(filepath.Join(dir, "front_reference.png"), b.Bytes(), 0o644)
	}
	img, err := png.Decode(&b)
	if err != nil {
		t.Fatalf("PNG does not decode: %v", err)
	}

	// The marker is black within a few pixels of the reference's position,
	// on the plot and in the legend; no other ink there is black.
	black := func(x, y float64) int {
		n := 0
		for dy := -2; dy <= 2; dy++ {
			for dx := -2; dx <= 2; dx++ {
				r, g, b, _ := img.At(int(math.Round(x))+dx, int(math.Round(y))+dy).RGBA()
				if r>>8 < 16 && g>>8 < 16 && b>>8 < 16 {
					n++
				}
			}
		}
		return n
	}
	g := l.legend()
	for _, p := range []struct {
		name string
		x, y float64
	}{
		{"plot", l.reference.x, l.reference.y},
		{"legend", g.x + g.sampleWidth/2, g.referenceY},
	} {
		if n := black(p.x, p.y); n < 20 {
			t.Errorf("%s marker at (%.1f, %.1f): %d of 25 pixels black", p.name, p.x, p.y, n)
		}
	}
	if n := black(l.px(0.5), l.py(0.5)); n != 0 {
		t.Errorf("%d black pixels away from the marker", n)
	}
}

func TestPlotReferenceRange(t *testing.T) {
	// The points span [0, 1] in both objectives; the reference lies outside.
	tests := []struct {
		name string
		ref  []float64
	}{
		{"beyond both", []float64{2.5, -1}},
		{"below both", []float64{-0.5, -3}},
		{"inside", []float64{0.5, 0.5}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := newLayout(testFront(), Plot{Reference: tt.ref})
			if err != nil {
				t.Fatal(err)
			}
			if x := tt.ref[0]; x <= l.x0 || x >= l.x1 {
				t.Errorf("x range [%v, %v] excludes %v", l.x0, l.x1, x)
			}
			if y := tt.ref[1]; y <= l.y0 || y >= l.y1 {
				t.Errorf("y range [%v, %v] excludes %v", l.y0, l.y1, y)
			}
			if r := l.reference; r.x <= l.left || r.x >= l.right || r.y <= l.top ||
				r.y >= l.bottom {
				t.Errorf("marker at (%.1f, %.1f) outside the plot area", r.x, r.y)
			}
			// The points keep their ranges inside the axes too.
			if l.x0 >= 0 || l.x1 <= 1 || l.y0 >= 0 || l.y1 <= 1 {
				t.Errorf("range [%v, %v] × [%v, %v] cuts the points", l.x0, l.x1, l.y0, l.y1)
			}
		})
	}
}

func TestPlotPairs(t *testing.T) {
	tests := []struct {
		m    int
		want [][2]int
	}{
		{0, nil},
		{1, nil},
		{2, [][2]int{{0, 1}}},
		{3, [][2]int{{0, 1}, {0, 2}, {1, 2}}},
		{4, [][2]int{{0, 1}, {0, 2}, {0, 3}, {1, 2}, {1, 3}, {2, 3}}},
	}
	for _, tt := range tests {
		var f Front
		if tt.m > 0 {
			f.Values = [][]float64{make([]float64, tt.m)}
		}
		if got := PlotPairs(f); !slices.Equal(got, tt.want) {
			t.Errorf("m = %d: PlotPairs = %v, want %v", tt.m, got, tt.want)
		}
	}
}

func TestPlotProjections(t *testing.T) {
	// A three-objective front: the points on the positive octant of the unit
	// sphere, and a reference outside their range in every objective.
	g, err := Grid(3, 5)
	if err != nil {
		t.Fatal(err)
	}
	f := Front{Names: []string{"helpful", "harmless", "honest"}, Lambdas: g,
		Maximize: []bool{true, false, true}}
	for _, l := range g {
		n := math.Sqrt(l[0]*l[0] + l[1]*l[1] + l[2]*l[2])
		f.Values = append(f.Values, []float64{l[0] / n, l[1] / n, l[2] / n})
	}
	ref := []float64{-0.5, 1.5, 2}
	sense := []string{" (max)", " (min)", " (max)"}

	// Every pair from PlotPairs, and each one reversed.
	var pairs [][2]int
	for _, p := range PlotPairs(f) {
		pairs = append(pairs, p, [2]int{p[1], p[0]})
	}
	for _, p := range pairs {
		opt := Plot{Objectives: p, Reference: ref}
		l, err := newLayout(f, opt)
		if err != nil {
			t.Fatalf("objectives %v: %v", p, err)
		}
		if want := f.Names[p[0]] + sense[p[0]]; l.xlabel != want {
			t.Errorf("objectives %v: x label %q, want %q", p, l.xlabel, want)
		}
		if want := f.Names[p[1]] + sense[p[1]]; l.ylabel != want {
			t.Errorf("objectives %v: y label %q, want %q", p, l.ylabel, want)
		}
		if l.reference.x != l.px(ref[p[0]]) || l.reference.y != l.py(ref[p[1]]) {
			t.Errorf("objectives %v: marker at (%.1f, %.1f), want (%.1f, %.1f)", p,
				l.reference.x, l.reference.y, l.px(ref[p[0]]), l.py(ref[p[1]]))
		}
		if x, y := ref[p[0]], ref[p[1]]; x <= l.x0 || x >= l.x1 || y <= l.y0 || y >= l.y1 {
			t.Errorf("objectives %v: range [%v, %v] × [%v, %v] excludes (%v, %v)", p,
				l.x0, l.x1, l.y0, l.y1, x, y)
		}
		if err := PlotSVG(io.Discard, f, opt); err != nil {
			t.Errorf("objectives %v: svg: %v", p, err)
		}
		if err := PlotPNG(io.Discard, f, opt); err != nil {
			t.Errorf("objectives %v: png: %v", p, err)
		}
	}
}

func TestFitLabel(t *testing.T) {
	tests := []struct {
		s    string
		n    int
		want string
	}{
		{"base model", 10, "base model"},
		{"base model", 8, "base ..."},
		{"λ-base", 3, "λ-b"},
		{"abcdef", 2, "ab"},
	}
	for _, tt := range tests {
		if got := fitLabel(tt.s, tt.n, "..."); got != tt.want {
			t.Errorf("fitLabel(%q, %d) = %q, want %q", tt.s, tt.n, got, tt.want)
		}
	}
}
