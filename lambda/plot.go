package lambda

import (
	"cmp"
	"fmt"
	"image/color"
	"math"
	"slices"
	"strconv"
	"unicode/utf8"
)

// Plot sets the look of a front plot drawn by [PlotSVG] or [PlotPNG]. The zero
// value is usable: a 640×480 plot of objectives (0, 1) with the objective
// names as axis labels and points coloured from blue (λ_1 = 0) to red
// (λ_1 = 1), with no reference marker.
type Plot struct {
	// Title is drawn above the plot; empty means "Pareto front".
	Title string
	// XLabel and YLabel name the axes; empty means the objective's name
	// followed by "(max)" or "(min)".
	XLabel, YLabel string
	// Width and Height are the picture size in pixels; 0 means 640 and 480.
	// Each must lie in [MinPlotSize, MaxPlotSize].
	Width, Height int
	// Objectives picks the objectives for the x and y axes; the zero value
	// {0, 0} means {0, 1}. Otherwise the two must differ. For m ≥ 3
	// objectives, [PlotPairs] lists every pair, one plot each.
	Objectives [2]int
	// From and To are the colours of λ_1 = 0 and λ_1 = 1; a point's colour is
	// the linear blend From + λ_1·(To − From). A zero colour means the default.
	From, To color.RGBA
	// Reference is an extra point in objective space, one finite value per
	// objective (m, like a row of [Front.Values]), such as the base model's
	// scores. It is drawn as a black diamond, not coloured by λ, takes no part
	// in dominance, widens the axis ranges to include it, and has a legend
	// entry. Nil means none. It is unrelated to the hypervolume reference
	// point of [Hypervolume].
	Reference []float64
	// ReferenceLabel names Reference in the legend; empty means "base model".
	// It is ignored when Reference is nil.
	ReferenceLabel string
}

// PlotPairs returns every pair (i, j), i < j, of the front's objectives in
// lexicographic order: m(m−1)/2 pairs for m objectives, to be passed one at a
// time as [Plot.Objectives] to draw each 2-D projection of an m ≥ 3 front.
// It returns nil when the front has no points or fewer than two objectives.
func PlotPairs(f Front) [][2]int {
	if len(f.Values) == 0 {
		return nil
	}
	m := len(f.Values[0])
	var pairs [][2]int
	for i := range m {
		for j := i + 1; j < m; j++ {
			pairs = append(pairs, [2]int{i, j})
		}
	}
	return pairs
}

// The accepted picture sizes, in pixels per side.
const (
	MinPlotSize = 200
	MaxPlotSize = 8000
)

// Default colours of the λ_1 gradient.
var (
	defaultFrom = color.RGBA{R: 0x3b, G: 0x4c, B: 0xc0, A: 0xff}
	defaultTo   = color.RGBA{R: 0xb4, G: 0x04, B: 0x26, A: 0xff}
)

// plotPoint is one point in pixel coordinates.
type plotPoint struct {
	x, y      float64 // pixels
	lambda1   float64
	dominated bool // in the plotted pair of objectives
}

// axisTicks holds tick values and how many decimals their labels show.
type axisTicks struct {
	values   []float64
	decimals int
}

// layout is everything both renderers need, in pixel coordinates with y down.
type layout struct {
	width, height            int
	left, right, top, bottom float64 // plot area edges, pixels
	x0, x1, y0, y1           float64 // data range shown
	xticks, yticks           axisTicks
	points                   []plotPoint
	front                    []int // non-dominated points, by increasing x
	title, xlabel, ylabel    string
	from, to                 color.RGBA
	reference                *plotPoint // nil: none; lambda1 and dominated unused
	referenceLabel           string
}

// newLayout checks the front and options and places everything.
func newLayout(f Front, opt Plot) (*layout, error) {
	if err := f.Validate(); err != nil {
		return nil, fmt.Errorf("lambda: plot: %w", err)
	}
	m := len(f.Values[0])
	ax, ay := opt.Objectives[0], opt.Objectives[1]
	if ax == 0 && ay == 0 {
		ay = 1
	}
	if ax == ay || ax < 0 || ay < 0 || ax >= m || ay >= m {
		return nil, fmt.Errorf("lambda: plot: objectives (%d, %d), want two different "+
			"indices in [0, %d)", ax, ay, m)
	}
	if opt.Reference != nil {
		if len(opt.Reference) != m {
			return nil, fmt.Errorf("lambda: plot: Reference has %d values, want one per "+
				"objective (%d)", len(opt.Reference), m)
		}
		for i, v := range opt.Reference {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return nil, fmt.Errorf("lambda: plot: Reference[%d] = %v is not finite", i, v)
			}
		}
	}
	l := &layout{width: opt.Width, height: opt.Height, from: opt.From, to: opt.To,
		title: opt.Title, xlabel: opt.XLabel, ylabel: opt.YLabel}
	if l.width == 0 {
		l.width = 640
	}
	if l.height == 0 {
		l.height = 480
	}
	for _, s := range []int{l.width, l.height} {
		if s < MinPlotSize || s > MaxPlotSize {
			return nil, fmt.Errorf("lambda: plot: size %d×%d, want each side in [%d, %d]",
				l.width, l.height, MinPlotSize, MaxPlotSize)
		}
	}
	if l.from == (color.RGBA{}) {
		l.from = defaultFrom
	}
	if l.to == (color.RGBA{}) {
		l.to = defaultTo
	}

	// Labels.
	names := f.names()
	sense := func(i int) string {
		if f.Maximize != nil && !f.Maximize[i] {
			return " (min)"
		}
		return " (max)"
	}
	if l.title == "" {
		l.title = "Pareto front"
	}
	if l.xlabel == "" {
		l.xlabel = names[ax] + sense(ax)
	}
	if l.ylabel == "" {
		l.ylabel = names[ay] + sense(ay)
	}
	l.referenceLabel = opt.ReferenceLabel
	if l.referenceLabel == "" {
		l.referenceLabel = "base model"
	}

	// Plot area: room for the title above, tick labels and axis labels on the
	// left and below, and the legend on the right.
	l.left, l.top = 78, 44
	l.right = float64(l.width) - 164
	l.bottom = float64(l.height) - 52

	// Data ranges and ticks; the reference point, if any, is inside them.
	xs := make([]float64, len(f.Values))
	ys := make([]float64, len(f.Values))
	for k, v := range f.Values {
		xs[k], ys[k] = v[ax], v[ay]
	}
	if r := opt.Reference; r != nil {
		l.x0, l.x1 = paddedRange(append(slices.Clip(xs), r[ax]))
		l.y0, l.y1 = paddedRange(append(slices.Clip(ys), r[ay]))
	} else {
		l.x0, l.x1 = paddedRange(xs)
		l.y0, l.y1 = paddedRange(ys)
	}
	for _, span := range []float64{l.x1 - l.x0, l.y1 - l.y0} {
		if math.IsInf(span, 0) || span <= 0 {
			return nil, fmt.Errorf("lambda: plot: objective range %v is too wide or too narrow to plot", span)
		}
	}
	l.xticks = niceTicks(l.x0, l.x1, max(2, int(l.right-l.left)/90))
	l.yticks = niceTicks(l.y0, l.y1, max(2, int(l.bottom-l.top)/60))

	// Points, and the front in the plotted pair.
	// TODO: for m > 2 a point can be dominated in this projection yet not in
	// all m objectives; the plot shows projected dominance only and does not
	// mark the full-space flags that Report holds.
	pair := make([][]float64, len(xs))
	var maximize []bool
	if f.Maximize != nil {
		maximize = []bool{f.Maximize[ax], f.Maximize[ay]}
	}
	for k := range xs {
		pair[k] = []float64{xs[k], ys[k]}
	}
	dom, err := Dominated(pair, maximize)
	if err != nil {
		return nil, fmt.Errorf("lambda: plot: %w", err)
	}
	for k := range xs {
		l.points = append(l.points, plotPoint{x: l.px(xs[k]), y: l.py(ys[k]),
			lambda1: f.Lambdas[k][0], dominated: dom[k]})
		if !dom[k] {
			l.front = append(l.front, k)
		}
	}
	slices.SortStableFunc(l.front, func(a, b int) int {
		return cmp.Or(cmp.Compare(xs[a], xs[b]), cmp.Compare(ys[a], ys[b]))
	})
	if r := opt.Reference; r != nil {
		l.reference = &plotPoint{x: l.px(r[ax]), y: l.py(r[ay])}
	}
	return l, nil
}

// px maps a data x to a pixel column.
func (l *layout) px(x float64) float64 {
	return l.left + (x-l.x0)/(l.x1-l.x0)*(l.right-l.left)
}

// py maps a data y to a pixel row (y grows downwards on screen).
func (l *layout) py(y float64) float64 {
	return l.bottom - (y-l.y0)/(l.y1-l.y0)*(l.bottom-l.top)
}

// colour returns From + t·(To − From) for t = λ_1 clamped to [0, 1].
func (l *layout) colour(t float64) color.RGBA {
	t = min(max(t, 0), 1)
	mix := func(a, b uint8) uint8 { return uint8(math.Round(float64(a) + t*(float64(b)-float64(a)))) }
	return color.RGBA{R: mix(l.from.R, l.to.R), G: mix(l.from.G, l.to.G),
		B: mix(l.from.B, l.to.B), A: 0xff}
}

// legend holds the legend's geometry, shared by both renderers: a heading,
// a vertical colour bar from λ_1 = 1 (top) to λ_1 = 0 (bottom), then a line
// sample for the front, a marker sample for dominated points and, when there
// is a reference point, its marker sample.
type legend struct {
	x, headingY          float64
	barTop, barBottom    float64
	barWidth             float64
	lineY, dominatedY    float64
	referenceY           float64
	sampleWidth, textGap float64
}

// legend places the legend to the right of the plot area.
func (l *layout) legend() legend {
	g := legend{x: l.right + 26, headingY: l.top + 4, barTop: l.top + 16, barWidth: 14,
		sampleWidth: 26, textGap: 8}
	g.barBottom = g.barTop + min(120, (l.bottom-l.top)/2)
	g.lineY = g.barBottom + 30
	g.dominatedY = g.lineY + 22
	g.referenceY = g.dominatedY + 22
	return g
}

// textX is the left end of the legend's entry labels.
func (g legend) textX() float64 {
	return g.x + g.sampleWidth + g.textGap
}

// referenceRadius is the reference diamond's half-diagonal in pixels.
const referenceRadius = 7

// fitLabel shortens s to at most n runes, ending it with ellipsis when cut.
func fitLabel(s string, n int, ellipsis string) string {
	r := []rune(s)
	e := utf8.RuneCountInString(ellipsis)
	switch {
	case len(r) <= n:
		return s
	case n <= e:
		return string(r[:max(n, 0)])
	}
	return string(r[:n-e]) + ellipsis
}

// paddedRange returns [lo, hi] around the values with 6% padding on each side,
// or a unit-wide window when all values are equal.
func paddedRange(v []float64) (float64, float64) {
	lo, hi := slices.Min(v), slices.Max(v)
	span := hi - lo
	if span == 0 {
		span = max(math.Abs(lo)*0.2, 1)
		return lo - span/2, hi + span/2
	}
	return lo - 0.06*span, hi + 0.06*span
}

// maxTicks bounds the ticks on one axis.
const maxTicks = 50

// niceTicks returns about target ticks in [lo, hi] at a step of 1, 2 or 5
// times a power of ten, with the decimals their labels need.
func niceTicks(lo, hi float64, target int) axisTicks {
	raw := (hi - lo) / float64(target)
	exp := math.Floor(math.Log10(raw))
	mag := math.Pow(10, exp)
	step := 10 * mag
	switch f := raw / mag; {
	case f < 1.5:
		step = mag
	case f < 3.5:
		step = 2 * mag
	case f < 7.5:
		step = 5 * mag
	}
	if step == 10*mag {
		exp++
	}
	t := axisTicks{decimals: max(0, int(-exp))}
	if math.IsNaN(step) || math.IsInf(step, 0) || step <= 0 {
		return t
	}
	// Count with integers: near the float64 precision limit i+1 == i.
	first := math.Ceil(lo/step - 1e-9)
	count := math.Floor(hi/step+1e-9) - first + 1
	for k := 0; float64(k) < min(count, maxTicks); k++ {
		t.values = append(t.values, (first+float64(k))*step)
	}
	return t
}

// label formats a tick value with the axis's decimals, never as "-0".
func (t axisTicks) label(v float64) string {
	s := strconv.FormatFloat(v, 'f', t.decimals, 64)
	if f, err := strconv.ParseFloat(s, 64); err == nil && f == 0 {
		s = strconv.FormatFloat(0, 'f', t.decimals, 64)
	}
	return s
}
