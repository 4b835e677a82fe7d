package svg

import (
	"bytes"
	"encoding/xml"
	"io"
	"math"
	"strconv"
)

// Palette is the fixed sequence of series colours: distinct hues, used in
// order and then again.
var Palette = []string{
	"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
	"#e377c2", "#7f7f7f", "#bcbd22", "#17becf", "#393b79", "#ad494a",
}

// Series is one line of a LineChart: its name, for the legend, and its
// values, one per X.
type Series struct {
	Name string
	Y    []float64
}

// Chart describes a LineChart. Width and Height default to 800×400 when
// not positive. X holds the abscissae shared by every series; a series
// draws min(len(X), len(Y)) points, or len(Y) points at 0, 1, 2, … when X
// is empty. LogY plots Y on a base-10 logarithmic axis, where values of 0
// and below leave gaps.
type Chart struct {
	Title, XLabel, YLabel string
	X                     []float64
	Series                []Series
	Width, Height         int
	LogY                  bool
}

// The line chart's layout, in pixels: the plot area sits inside these
// margins, the legend in the right one.
const (
	defaultWidth  = 800
	defaultHeight = 400
	marginLeft    = 70
	marginRight   = 170
	marginTop     = 40
	marginBottom  = 50
	minPlot       = 20 // the smallest plot area side a tiny Width or Height leaves
	maxTicks      = 12
)

// writer accumulates a document; the caller's io.Writer sees one Write.
type writer struct{ bytes.Buffer }

// num writes v with one decimal: coordinates. A value that is not finite
// (an overflowing scale) writes 0.0, so that the document stays valid.
func (d *writer) num(v float64) {
	if !finite(v) {
		v = 0
	}
	s := strconv.FormatFloat(v, 'f', 1, 64)
	if s == "-0.0" {
		s = "0.0"
	}
	d.WriteString(s)
}

// text writes s escaped for XML character data and attribute values.
func (d *writer) text(s string) {
	xml.EscapeText(d, []byte(s)) // writes to a bytes.Buffer cannot fail
}

// attr writes ` name="value"` with the value escaped.
func (d *writer) attr(name, value string) {
	d.WriteByte(' ')
	d.WriteString(name)
	d.WriteString(`="`)
	d.text(value)
	d.WriteByte('"')
}

// numAttr writes ` name="v"` with v formatted by num.
func (d *writer) numAttr(name string, v float64) {
	d.WriteByte(' ')
	d.WriteString(name)
	d.WriteString(`="`)
	d.num(v)
	d.WriteByte('"')
}

// open writes the XML declaration and the svg element.
func (d *writer) open(width, height int) {
	d.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n")
	d.WriteString(`<svg xmlns="http://www.w3.org/2000/svg"`)
	d.attr("width", strconv.Itoa(width))
	d.attr("height", strconv.Itoa(height))
	d.attr("viewBox", "0 0 "+strconv.Itoa(width)+" "+strconv.Itoa(height))
	d.WriteString(` font-family="sans-serif" font-size="12">` + "\n")
	d.WriteString(`<rect x="0" y="0"`)
	d.attr("width", strconv.Itoa(width))
	d.attr("height", strconv.Itoa(height))
	d.WriteString(` fill="#ffffff"/>` + "\n")
}

// label writes a text element at (x, y) with the given anchor and extra
// attributes (already formatted, may be empty).
func (d *writer) label(x, y float64, anchor, extra, s string) {
	d.WriteString(`<text`)
	d.numAttr("x", x)
	d.numAttr("y", y)
	d.attr("text-anchor", anchor)
	d.WriteString(extra)
	d.WriteByte('>')
	d.text(s)
	d.WriteString("</text>\n")
}

// line writes a line element.
func (d *writer) line(x1, y1, x2, y2 float64, stroke string) {
	d.WriteString(`<line`)
	d.numAttr("x1", x1)
	d.numAttr("y1", y1)
	d.numAttr("x2", x2)
	d.numAttr("y2", y2)
	d.attr("stroke", stroke)
	d.WriteString("/>\n")
}

func (d *writer) flush(w io.Writer) error {
	d.WriteString("</svg>\n")
	_, err := w.Write(d.Bytes())
	return err
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// niceStep returns a step of 1, 2 or 5 times a power of ten that cuts span
// into at most about n intervals; 0 when span is not a positive finite
// number.
func niceStep(span float64, n int) float64 {
	if !(span > 0) || !finite(span) {
		return 0
	}
	raw := span / float64(n)
	p := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= raw {
			return m * p
		}
	}
	return 10 * p
}

// tickLabel formats a linear tick v of a scale with the given step: as
// many decimals as the step needs, and no "-0".
func tickLabel(v, step float64) string {
	dec := 0
	if step > 0 && step < 1 {
		dec = min(int(math.Ceil(-math.Log10(step)-1e-9)), 12)
	}
	var s string
	if math.Abs(v) >= 1e15 {
		s = strconv.FormatFloat(v, 'g', 3, 64)
	} else {
		s = strconv.FormatFloat(v, 'f', dec, 64)
	}
	if t := s; len(t) > 1 && t[0] == '-' && strconv.FormatFloat(0, 'f', dec, 64) == t[1:] {
		s = t[1:]
	}
	return s
}

// powLabel formats 10^k for a logarithmic axis.
func powLabel(k int) string {
	switch {
	case k >= 0 && k <= 6:
		return strconv.FormatFloat(math.Pow(10, float64(k)), 'f', 0, 64)
	case k < 0 && k >= -3:
		return strconv.FormatFloat(math.Pow(10, float64(k)), 'f', -k, 64)
	}
	return "1e" + strconv.Itoa(k)
}

// LineChart writes c as an SVG document: a framed plot area with ticks,
// grid lines and labels on both axes, one polyline per series in a
// distinct colour (Palette), and a legend with the series' names. Points
// that cannot be drawn (not finite, or not positive on a log axis) split a
// line; a lone point is drawn as a dot. Empty input draws empty axes. The
// only error is the writer's.
func LineChart(w io.Writer, c Chart) error {
	width, height := c.Width, c.Height
	if width <= 0 {
		width = defaultWidth
	}
	if height <= 0 {
		height = defaultHeight
	}
	plotW := float64(max(width-marginLeft-marginRight, minPlot))
	plotH := float64(max(height-marginTop-marginBottom, minPlot))
	width = marginLeft + int(plotW) + marginRight
	// The legend may need more height than the plot.
	height = max(marginTop+int(plotH)+marginBottom, marginTop+10+18*len(c.Series))

	xAt := func(i int) float64 {
		if len(c.X) > 0 {
			return c.X[i]
		}
		return float64(i)
	}
	points := func(s Series) int {
		if len(c.X) > 0 {
			return min(len(c.X), len(s.Y))
		}
		return len(s.Y)
	}
	valid := func(x, y float64) bool { return finite(x) && finite(y) && (!c.LogY || y > 0) }

	// The data's ranges.
	xmin, xmax := math.Inf(1), math.Inf(-1)
	ymin, ymax := math.Inf(1), math.Inf(-1)
	for _, s := range c.Series {
		for i := range points(s) {
			if x, y := xAt(i), s.Y[i]; valid(x, y) {
				xmin, xmax = min(xmin, x), max(xmax, x)
				ymin, ymax = min(ymin, y), max(ymax, y)
			}
		}
	}
	if xmin > xmax { // nothing to draw
		xmin, xmax, ymin, ymax = 0, 1, 1, 1
	}
	if xmax == xmin || !finite(xmax-xmin) {
		xmin, xmax = xmin-0.5, xmin+0.5
	}

	// The Y scale, in plotted units (log10 of the value on a log axis),
	// widened to whole ticks.
	type tick struct {
		at    float64 // in plotted units
		label string
	}
	var yticks []tick
	var ylo, yhi float64
	if c.LogY {
		ylo, yhi = math.Floor(math.Log10(ymin)), math.Ceil(math.Log10(ymax))
		if yhi <= ylo {
			yhi = ylo + 1
		}
		stride := max(1, int(math.Ceil((yhi-ylo)/maxTicks)))
		for k := int(ylo); k <= int(yhi); k += stride {
			yticks = append(yticks, tick{float64(k), powLabel(k)})
		}
	} else {
		ymin, ymax = min(ymin, 0), max(ymax, 0)
		if ymax == ymin {
			ymax = ymin + 1
		}
		ylo, yhi = ymin, ymax
		if step := niceStep(ymax-ymin, 5); step > 0 {
			ylo, yhi = math.Floor(ymin/step)*step, math.Ceil(ymax/step)*step
			for i := 0; i <= maxTicks; i++ {
				v := ylo + float64(i)*step
				if v > yhi+step/2 {
					break
				}
				yticks = append(yticks, tick{v, tickLabel(v, step)})
			}
		}
		if !finite(yhi-ylo) || yhi <= ylo {
			ylo, yhi = 0, 1
		}
	}
	var xticks []tick
	if step := niceStep(xmax-xmin, 8); step > 0 {
		first := math.Ceil(xmin/step) * step
		for i := 0; i <= maxTicks+1; i++ {
			v := first + float64(i)*step
			if v > xmax+step*1e-9 {
				break
			}
			xticks = append(xticks, tick{v, tickLabel(v, step)})
		}
	}

	px := func(x float64) float64 { return marginLeft + (x-xmin)/(xmax-xmin)*plotW }
	pyUnits := func(u float64) float64 { return marginTop + plotH - (u-ylo)/(yhi-ylo)*plotH }
	py := func(y float64) float64 {
		if c.LogY {
			return pyUnits(math.Log10(y))
		}
		return pyUnits(y)
	}

	var d writer
	d.open(width, height)
	if c.Title != "" {
		d.label(float64(width)/2, 24, "middle", ` font-size="16"`, c.Title)
	}
	// Grid and ticks.
	right, bottom := marginLeft+plotW, marginTop+plotH
	for _, t := range yticks {
		y := pyUnits(t.at)
		d.line(marginLeft, y, right, y, "#dddddd")
		d.line(marginLeft-4, y, marginLeft, y, "#000000")
		d.label(marginLeft-6, y+4, "end", "", t.label)
	}
	for _, t := range xticks {
		x := px(t.at)
		d.line(x, bottom, x, bottom+4, "#000000")
		d.label(x, bottom+16, "middle", "", t.label)
	}
	d.WriteString(`<rect`)
	d.numAttr("x", marginLeft)
	d.numAttr("y", marginTop)
	d.numAttr("width", plotW)
	d.numAttr("height", plotH)
	d.WriteString(` fill="none" stroke="#000000"/>` + "\n")
	if c.XLabel != "" {
		d.label(marginLeft+plotW/2, bottom+36, "middle", "", c.XLabel)
	}
	if c.YLabel != "" {
		d.WriteString(`<text x="0" y="0" text-anchor="middle" transform="translate(16,`)
		d.num(marginTop + plotH/2)
		d.WriteString(`) rotate(-90)">`)
		d.text(c.YLabel)
		d.WriteString("</text>\n")
	}

	// The series, then the legend.
	for si, s := range c.Series {
		color := Palette[si%len(Palette)]
		d.WriteString(`<g fill="none"`)
		d.attr("stroke", color)
		d.WriteString(` stroke-width="1.5"><title>`)
		d.text(s.Name)
		d.WriteString("</title>\n")
		var seg [][2]float64
		flushSeg := func() {
			switch len(seg) {
			case 0:
			case 1:
				d.WriteString(`<circle`)
				d.numAttr("cx", seg[0][0])
				d.numAttr("cy", seg[0][1])
				d.attr("r", "2")
				d.attr("fill", color)
				d.WriteString("/>\n")
			default:
				d.WriteString(`<polyline points="`)
				for i, p := range seg {
					if i > 0 {
						d.WriteByte(' ')
					}
					d.num(p[0])
					d.WriteByte(',')
					d.num(p[1])
				}
				d.WriteString(`"/>` + "\n")
			}
			seg = seg[:0]
		}
		for i := range points(s) {
			x, y := xAt(i), s.Y[i]
			if !valid(x, y) {
				flushSeg()
				continue
			}
			seg = append(seg, [2]float64{px(x), py(y)})
		}
		flushSeg()
		d.WriteString("</g>\n")

		ly := float64(marginTop + 10 + 18*si)
		lx := right + 15
		d.WriteString(`<rect`)
		d.numAttr("x", lx)
		d.numAttr("y", ly-6)
		d.WriteString(` width="20" height="3"`)
		d.attr("fill", color)
		d.WriteString("/>\n")
		d.label(lx+26, ly, "start", "", s.Name)
	}
	return d.flush(w)
}

// Map describes a BlockMap: a grid of Cols squares per row (64 when not
// positive), one per cell in order, and a legend of the colour classes.
type Map struct {
	Title  string
	Cols   int
	Cells  []Cell
	Legend []LegendEntry
}

// Cell is one square of a BlockMap: Color is its class's colour (any SVG
// colour, such as "#1f77b4"), Fill its occupancy from 0 (empty) to 1
// (full), and Title the tooltip shown over it (none when empty).
type Cell struct {
	Color string
	Fill  float64
	Title string
}

// LegendEntry is one colour class of a BlockMap's legend.
type LegendEntry struct {
	Label, Color string
}

// The block map's layout, in pixels.
const (
	cellSize   = 10 // a cell's side
	cellPitch  = 11 // cellSize plus the gap between cells
	mapMargin  = 10
	mapTop     = 36 // room for the title
	legendLine = 18
	mapMinW    = 320
	defaultCol = 64
	emptyColor = "#999999"
)

// BlockMap writes m as an SVG document: the title, the cells row by row,
// each drawn in its colour, pale for the whole square and solid for a bar
// rising from its bottom in proportion to Fill (clamped to 0..1; NaN is
// 0), with its tooltip, and the legend below. The only error is the
// writer's.
func BlockMap(w io.Writer, m Map) error {
	cols := m.Cols
	if cols <= 0 {
		cols = defaultCol
	}
	rows := (len(m.Cells) + cols - 1) / cols
	gridW := cols * cellPitch
	width := max(2*mapMargin+gridW, mapMinW)
	gridBottom := mapTop + rows*cellPitch
	height := gridBottom + mapMargin + len(m.Legend)*legendLine + mapMargin

	var d writer
	d.open(width, height)
	if m.Title != "" {
		d.label(float64(width)/2, 22, "middle", ` font-size="16"`, m.Title)
	}
	for i, c := range m.Cells {
		x := float64(mapMargin + (i%cols)*cellPitch)
		y := float64(mapTop + (i/cols)*cellPitch)
		color := c.Color
		if color == "" {
			color = emptyColor
		}
		fill := c.Fill
		if !(fill > 0) { // also NaN
			fill = 0
		}
		fill = min(fill, 1)
		d.WriteString("<g")
		d.attr("fill", color)
		d.WriteByte('>')
		if c.Title != "" {
			d.WriteString("<title>")
			d.text(c.Title)
			d.WriteString("</title>")
		}
		d.WriteString(`<rect`)
		d.numAttr("x", x)
		d.numAttr("y", y)
		d.WriteString(` width="10" height="10" fill-opacity="0.25"/>`)
		if h := fill * cellSize; h > 0 {
			d.WriteString(`<rect`)
			d.numAttr("x", x)
			d.numAttr("y", y+cellSize-h)
			d.WriteString(` width="10"`)
			d.numAttr("height", h)
			d.WriteString("/>")
		}
		d.WriteString("</g>\n")
	}
	for i, e := range m.Legend {
		y := float64(gridBottom + mapMargin + i*legendLine)
		color := e.Color
		if color == "" {
			color = emptyColor
		}
		d.WriteString(`<rect`)
		d.numAttr("x", mapMargin)
		d.numAttr("y", y)
		d.WriteString(` width="12" height="12"`)
		d.attr("fill", color)
		d.WriteString("/>\n")
		d.label(mapMargin+18, y+10, "start", "", e.Label)
	}
	return d.flush(w)
}
