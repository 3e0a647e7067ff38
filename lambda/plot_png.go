package lambda

import (
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"math"
	"strings"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"
)

// PlotPNG draws the same picture as [PlotSVG] as a Width×Height PNG, with
// anti-aliased lines and points and text in the 7×13 basic font. That font
// holds ASCII only, so λ, ξ and subscript digits are spelled out ("lambda1")
// and other non-ASCII runes become "?".
func PlotPNG(w io.Writer, f Front, opt Plot) error {
	l, err := newLayout(f, opt)
	if err != nil {
		return err
	}
	c := &canvas{img: image.NewRGBA(image.Rect(0, 0, l.width, l.height))}
	c.fillRect(0, 0, float64(l.width), float64(l.height), color.RGBA{0xff, 0xff, 0xff, 0xff})
	ink := color.RGBA{0x33, 0x33, 0x33, 0xff}
	grid := color.RGBA{0xe6, 0xe6, 0xe6, 0xff}
	c.text(float64(l.width)/2, 22, 0.5, l.title, ink)

	// Grid lines, frame, ticks and tick labels.
	for _, v := range l.xticks.values {
		c.line(l.px(v), l.top, l.px(v), l.bottom, 1, grid)
	}
	for _, v := range l.yticks.values {
		c.line(l.left, l.py(v), l.right, l.py(v), 1, grid)
	}
	c.line(l.left, l.top, l.right, l.top, 1, ink)
	c.line(l.left, l.bottom, l.right, l.bottom, 1, ink)
	c.line(l.left, l.top, l.left, l.bottom, 1, ink)
	c.line(l.right, l.top, l.right, l.bottom, 1, ink)
	for _, v := range l.xticks.values {
		x := l.px(v)
		c.line(x, l.bottom, x, l.bottom+5, 1, ink)
		c.text(x, l.bottom+19, 0.5, l.xticks.label(v), ink)
	}
	for _, v := range l.yticks.values {
		y := l.py(v)
		c.line(l.left-5, y, l.left, y, 1, ink)
		c.text(l.left-8, y+4, 1, l.yticks.label(v), ink)
	}

	// Axis labels; the y label reads bottom to top.
	c.text((l.left+l.right)/2, float64(l.height)-12, 0.5, l.xlabel, ink)
	c.textUp(20, (l.top+l.bottom)/2, l.ylabel, ink)

	// Front line, then points on top.
	lineInk := color.RGBA{0x44, 0x44, 0x44, 0xff}
	for i := 1; i < len(l.front); i++ {
		a, b := l.points[l.front[i-1]], l.points[l.front[i]]
		c.line(a.x, a.y, b.x, b.y, 1.5, lineInk)
	}
	for _, p := range l.points {
		col := l.colour(p.lambda1)
		if p.dominated {
			c.disc(p.x, p.y, 5.5, col)
			c.disc(p.x, p.y, 3.5, color.RGBA{0xff, 0xff, 0xff, 0xff})
		} else {
			c.disc(p.x, p.y, 6, color.RGBA{0x22, 0x22, 0x22, 0xff})
			c.disc(p.x, p.y, 5, col)
		}
	}
	if r := l.reference; r != nil {
		c.diamond(r.x, r.y)
	}

	// Legend.
	g := l.legend()
	c.text(g.x, g.headingY, 0, "colour: lambda1", ink)
	for y := math.Floor(g.barTop); y < g.barBottom; y++ {
		t := (g.barBottom - (y + 0.5)) / (g.barBottom - g.barTop)
		c.fillRect(g.x, y, g.x+g.barWidth, y+1, l.colour(t))
	}
	c.line(g.x, g.barTop, g.x+g.barWidth, g.barTop, 1, ink)
	c.line(g.x, g.barBottom, g.x+g.barWidth, g.barBottom, 1, ink)
	c.line(g.x, g.barTop, g.x, g.barBottom, 1, ink)
	c.line(g.x+g.barWidth, g.barTop, g.x+g.barWidth, g.barBottom, 1, ink)
	c.text(g.x+g.barWidth+g.textGap, g.barTop+5, 0, "lambda1 = 1", ink)
	c.text(g.x+g.barWidth+g.textGap, g.barBottom+5, 0, "lambda1 = 0", ink)
	c.line(g.x, g.lineY, g.x+g.sampleWidth, g.lineY, 1.5, lineInk)
	c.text(g.x+g.sampleWidth+g.textGap, g.lineY+5, 0, "non-dominated", ink)
	c.disc(g.x+g.sampleWidth/2, g.dominatedY, 5.5, color.RGBA{0x66, 0x66, 0x66, 0xff})
	c.disc(g.x+g.sampleWidth/2, g.dominatedY, 3.5, color.RGBA{0xff, 0xff, 0xff, 0xff})
	c.text(g.x+g.sampleWidth+g.textGap, g.dominatedY+5, 0, "dominated", ink)
	if l.reference != nil {
		c.diamond(g.x+g.sampleWidth/2, g.referenceY)
		n := int(float64(l.width)-g.textX()-4) / face.Advance
		c.text(g.textX(), g.referenceY+5, 0, fitLabel(asciiLabel(l.referenceLabel), n, "..."), ink)
	}

	if err := png.Encode(w, c.img); err != nil {
		return fmt.Errorf("lambda: plot png: %w", err)
	}
	return nil
}

// canvas draws anti-aliased shapes on an RGBA image by coverage blending.
type canvas struct {
	img *image.RGBA
}

// blend paints c over pixel (x, y) with coverage a ∈ [0, 1].
func (c *canvas) blend(x, y int, col color.RGBA, a float64) {
	if a <= 0 || !(image.Point{X: x, Y: y}).In(c.img.Rect) {
		return
	}
	a = min(a, 1) * float64(col.A) / 255
	i := c.img.PixOffset(x, y)
	px := c.img.Pix[i : i+4 : i+4]
	for j, v := range [3]uint8{col.R, col.G, col.B} {
		px[j] = uint8(math.Round(float64(px[j])*(1-a) + float64(v)*a))
	}
	px[3] = 0xff
}

// fillRect paints the pixels whose centres lie in [x0, x1) × [y0, y1).
func (c *canvas) fillRect(x0, y0, x1, y1 float64, col color.RGBA) {
	for y := int(math.Round(y0)); y < int(math.Round(y1)); y++ {
		for x := int(math.Round(x0)); x < int(math.Round(x1)); x++ {
			c.blend(x, y, col, 1)
		}
	}
}

// line draws a segment of the given width; a pixel's coverage is
// width/2 + 0.5 − (distance from its centre to the segment), clamped.
func (c *canvas) line(x0, y0, x1, y1, width float64, col color.RGBA) {
	r := width/2 + 0.5
	dx, dy := x1-x0, y1-y0
	len2 := dx*dx + dy*dy
	for y := int(math.Floor(min(y0, y1) - r)); y <= int(math.Ceil(max(y0, y1)+r)); y++ {
		for x := int(math.Floor(min(x0, x1) - r)); x <= int(math.Ceil(max(x0, x1)+r)); x++ {
			// Pixel (x, y) is centred on the integer point (x, y), so a
			// one-pixel line at an integer coordinate covers exactly one row.
			px, py := float64(x), float64(y)
			t := 0.0
			if len2 > 0 {
				t = min(max(((px-x0)*dx+(py-y0)*dy)/len2, 0), 1)
			}
			ex, ey := px-(x0+t*dx), py-(y0+t*dy)
			c.blend(x, y, col, r-math.Hypot(ex, ey))
		}
	}
}

// disc fills a circle of radius r centred at (cx, cy), anti-aliased.
func (c *canvas) disc(cx, cy, r float64, col color.RGBA) {
	for y := int(math.Floor(cy - r - 1)); y <= int(math.Ceil(cy+r+1)); y++ {
		for x := int(math.Floor(cx - r - 1)); x <= int(math.Ceil(cx+r+1)); x++ {
			d := math.Hypot(float64(x)-cx, float64(y)-cy)
			c.blend(x, y, col, r+0.5-d)
		}
	}
}

// diamond draws the reference marker centred on (cx, cy): a black diamond of
// half-diagonal referenceRadius inside a white rim, anti-aliased.
func (c *canvas) diamond(cx, cy float64) {
	c.rhombus(cx, cy, referenceRadius+1.5, color.RGBA{0xff, 0xff, 0xff, 0xff})
	c.rhombus(cx, cy, referenceRadius, color.RGBA{0, 0, 0, 0xff})
}

// rhombus fills the square |x − cx| + |y − cy| ≤ r; a pixel's coverage is
// 0.5 + its signed distance inside the nearest edge, (r − |dx| − |dy|)/√2.
func (c *canvas) rhombus(cx, cy, r float64, col color.RGBA) {
	for y := int(math.Floor(cy - r - 1)); y <= int(math.Ceil(cy+r+1)); y++ {
		for x := int(math.Floor(cx - r - 1)); x <= int(math.Ceil(cx+r+1)); x++ {
			d := math.Abs(float64(x)-cx) + math.Abs(float64(y)-cy)
			c.blend(x, y, col, 0.5+(r-d)/math.Sqrt2)
		}
	}
}

// face is the PNG text face: 7 pixels per character, 13 per line.
var face = basicfont.Face7x13

// text draws s with its baseline at y; anchor 0 puts x at the left end, 0.5 at
// the middle and 1 at the right end.
func (c *canvas) text(x, y, anchor float64, s string, col color.RGBA) {
	s = asciiLabel(s)
	width := float64(len(s) * face.Advance)
	d := font.Drawer{Dst: c.img, Src: image.NewUniform(col), Face: face,
		Dot: fixed.P(int(math.Round(x-anchor*width)), int(math.Round(y)))}
	d.DrawString(s)
}

// textUp draws s rotated a quarter turn anticlockwise, centred on (x, y), by
// drawing it on a scratch image and copying each covered pixel across.
func (c *canvas) textUp(x, y float64, s string, col color.RGBA) {
	s = asciiLabel(s)
	tw, th := len(s)*face.Advance, face.Height
	scratch := image.NewAlpha(image.Rect(0, 0, tw, th))
	d := font.Drawer{Dst: scratch, Src: image.Opaque, Face: face, Dot: fixed.P(0, face.Ascent)}
	d.DrawString(s)
	// Scratch (sx, sy) lands at (x0 + sy, y0 + tw − 1 − sx).
	x0 := int(math.Round(x)) - th/2
	y0 := int(math.Round(y)) - tw/2
	for sy := range th {
		for sx := range tw {
			if a := scratch.AlphaAt(sx, sy).A; a > 0 {
				c.blend(x0+sy, y0+tw-1-sx, col, float64(a)/255)
			}
		}
	}
}

// asciiNames spells out the non-ASCII runes that plot labels commonly hold.
var asciiNames = map[rune]string{
	'λ': "lambda", 'ξ': "xi", 'Δ': "Delta", '↑': "^", '↓': "v", '×': "x", '−': "-",
	'₀': "0", '₁': "1", '₂': "2", '₃': "3", '₄': "4", '₅': "5", '₆': "6", '₇': "7",
	'₈': "8", '₉': "9",
}

// asciiLabel rewrites s into the printable ASCII that the basic font holds.
func asciiLabel(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r >= ' ' && r <= '~':
			b.WriteRune(r)
		case asciiNames[r] != "":
			b.WriteString(asciiNames[r])
		default:
			b.WriteByte('?')
		}
	}
	return b.String()
}
