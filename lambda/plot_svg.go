package lambda

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"image/color"
	"io"
	"strings"
)

// PlotSVG draws a front as a standalone SVG document: axes with ticks and
// labels, one point per λ coloured by λ_1 (see [Plot.From]), the points that
// are non-dominated in the plotted pair of objectives joined by a line in
// increasing x, dominated points hollow, [Plot.Reference] (if set) as a black
// diamond, a title and a legend.
func PlotSVG(w io.Writer, f Front, opt Plot) error {
	l, err := newLayout(f, opt)
	if err != nil {
		return err
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" `+
		`viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n",
		l.width, l.height, l.width, l.height)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	svgText(&b, float64(l.width)/2, 24, "middle", 16, "bold", l.title)

	// Grid lines, ticks and tick labels.
	b.WriteString(`<g stroke="#e6e6e6" stroke-width="1">` + "\n")
	for _, v := range l.xticks.values {
		x := l.px(v)
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f"/>`+"\n", x, l.top, x, l.bottom)
	}
	for _, v := range l.yticks.values {
		y := l.py(v)
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f"/>`+"\n", l.left, y, l.right, y)
	}
	b.WriteString("</g>\n")
	fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="none" `+
		`stroke="#333" stroke-width="1"/>`+"\n", l.left, l.top, l.right-l.left, l.bottom-l.top)
	for _, v := range l.xticks.values {
		x := l.px(v)
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#333"/>`+"\n",
			x, l.bottom, x, l.bottom+5)
		svgText(&b, x, l.bottom+18, "middle", 11, "", l.xticks.label(v))
	}
	for _, v := range l.yticks.values {
		y := l.py(v)
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#333"/>`+"\n",
			l.left-5, y, l.left, y)
		svgText(&b, l.left-8, y+4, "end", 11, "", l.yticks.label(v))
	}

	// Axis labels.
	svgText(&b, (l.left+l.right)/2, float64(l.height)-14, "middle", 13, "", l.xlabel)
	cy := (l.top + l.bottom) / 2
	fmt.Fprintf(&b, `<g transform="translate(18 %.1f) rotate(-90)">`+"\n", cy)
	svgText(&b, 0, 0, "middle", 13, "", l.ylabel)
	b.WriteString("</g>\n")

	// Front line, then points on top.
	if len(l.front) > 1 {
		var pts []string
		for _, k := range l.front {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", l.points[k].x, l.points[k].y))
		}
		fmt.Fprintf(&b, `<polyline points="%s" fill="none" stroke="#444" stroke-width="1.5"/>`+"\n",
			strings.Join(pts, " "))
	}
	for _, p := range l.points {
		c := svgColour(l.colour(p.lambda1))
		if p.dominated {
			fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="4.5" fill="white" stroke="%s" `+
				`stroke-width="2"/>`+"\n", p.x, p.y, c)
		} else {
			fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="5" fill="%s" stroke="#222" `+
				`stroke-width="1"/>`+"\n", p.x, p.y, c)
		}
	}
	if r := l.reference; r != nil {
		svgDiamond(&b, r.x, r.y)
	}

	// Legend: colour bar for λ_1, front line, dominated marker.
	g := l.legend()
	svgText(&b, g.x, g.headingY, "start", 12, "bold", "colour: λ₁")
	fmt.Fprintf(&b, `<defs><linearGradient id="lambda1" x1="0" y1="1" x2="0" y2="0">`+
		`<stop offset="0" stop-color="%s"/><stop offset="1" stop-color="%s"/>`+
		`</linearGradient></defs>`+"\n", svgColour(l.colour(0)), svgColour(l.colour(1)))
	fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="url(#lambda1)" `+
		`stroke="#333"/>`+"\n", g.x, g.barTop, g.barWidth, g.barBottom-g.barTop)
	svgText(&b, g.x+g.barWidth+g.textGap, g.barTop+4, "start", 11, "", "λ₁ = 1")
	svgText(&b, g.x+g.barWidth+g.textGap, g.barBottom+4, "start", 11, "", "λ₁ = 0")
	fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#444" `+
		`stroke-width="1.5"/>`+"\n", g.x, g.lineY, g.x+g.sampleWidth, g.lineY)
	svgText(&b, g.x+g.sampleWidth+g.textGap, g.lineY+4, "start", 11, "", "non-dominated")
	fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="4.5" fill="white" stroke="#666" `+
		`stroke-width="2"/>`+"\n", g.x+g.sampleWidth/2, g.dominatedY)
	svgText(&b, g.x+g.sampleWidth+g.textGap, g.dominatedY+4, "start", 11, "", "dominated")
	if l.reference != nil {
		svgDiamond(&b, g.x+g.sampleWidth/2, g.referenceY)
		// About 6.5 pixels per character at 11 px sans-serif.
		n := int((float64(l.width) - g.textX() - 4) / 6.5)
		svgText(&b, g.textX(), g.referenceY+4, "start", 11, "", fitLabel(l.referenceLabel, n, "…"))
	}

	b.WriteString("</svg>\n")
	if _, err := w.Write(b.Bytes()); err != nil {
		return fmt.Errorf("lambda: plot svg: %w", err)
	}
	return nil
}

// svgText writes an escaped <text> element; weight may be empty.
func svgText(b *bytes.Buffer, x, y float64, anchor string, size int, weight, s string) {
	fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="%s" font-size="%d"`, x, y, anchor, size)
	if weight != "" {
		fmt.Fprintf(b, ` font-weight="%s"`, weight)
	}
	b.WriteString(">")
	// xml.EscapeText cannot fail on a bytes.Buffer.
	_ = xml.EscapeText(b, []byte(s))
	b.WriteString("</text>\n")
}

// svgDiamond writes the reference marker centred on (x, y): a black diamond
// with a white rim so that it stands out over points and the front line.
func svgDiamond(b *bytes.Buffer, x, y float64) {
	const r = referenceRadius
	fmt.Fprintf(b, `<path class="reference" d="M%.1f %.1fL%.1f %.1fL%.1f %.1fL%.1f %.1fZ" `+
		`fill="black" stroke="white" stroke-width="1.5"/>`+"\n",
		x, y-r, x+r, y, x, y+r, x-r, y)
}

// svgColour writes c as #rrggbb.
func svgColour(c color.RGBA) string {
	return fmt.Sprintf("#%02x%02x%02x", c.R, c.G, c.B)
}
