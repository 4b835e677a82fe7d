package svg

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"math"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// wellFormed walks the document with encoding/xml's decoder, which fails
// on anything that is not well-formed XML, and returns how many elements
// of each name it holds.
func wellFormed(t *testing.T, doc []byte) map[string]int {
	t.Helper()
	require.NotContains(t, string(doc), "NaN")
	require.NotContains(t, string(doc), "Inf")
	dec := xml.NewDecoder(bytes.NewReader(doc))
	dec.Strict = true
	count := map[string]int{}
	depth := 0
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err, "document:\n%s", doc)
		switch tok := tok.(type) {
		case xml.StartElement:
			if depth == 0 {
				require.Equal(t, "svg", tok.Name.Local)
				require.Equal(t, "http://www.w3.org/2000/svg", tok.Name.Space)
			}
			depth++
			count[tok.Name.Local]++
		case xml.EndElement:
			depth--
		}
	}
	require.Zero(t, depth)
	require.Equal(t, 1, count["svg"])
	return count
}

func lineChart(t *testing.T, c Chart) []byte {
	t.Helper()
	var buf bytes.Buffer
	require.NoError(t, LineChart(&buf, c))
	return buf.Bytes()
}

func blockMap(t *testing.T, m Map) []byte {
	t.Helper()
	var buf bytes.Buffer
	require.NoError(t, BlockMap(&buf, m))
	return buf.Bytes()
}

// TestLineChart checks a chart of two series: well-formed, one polyline
// each in different colours, the title, axis labels and the series' names
// present (escaped), and the same bytes on a second run.
func TestLineChart(t *testing.T) {
	c := Chart{
		Title:  "Free pages <by order> & time",
		XLabel: "time (s)",
		YLabel: "pages",
		X:      []float64{0, 0.5, 1, 1.5, 2},
		Series: []Series{
			{Name: "order 0", Y: []float64{100, 80, 60, 90, 120}},
			{Name: "order \"10\"", Y: []float64{4, 3, 2, 1, 0}},
		},
	}
	doc := lineChart(t, c)
	n := wellFormed(t, doc)
	require.Equal(t, 2, n["polyline"])
	s := string(doc)
	require.Contains(t, s, "Free pages &lt;by order&gt; &amp; time")
	require.Contains(t, s, "time (s)")
	require.Contains(t, s, ">pages</text>")
	require.Contains(t, s, "order 0")
	require.Contains(t, s, "order &#34;10&#34;")
	require.Contains(t, s, `stroke="`+Palette[0]+`"`)
	require.Contains(t, s, `stroke="`+Palette[1]+`"`)
	// The axes' ticks: Y 0..150 by 50 (a span of 120 in about five steps
	// of 1, 2 or 5 times a power of ten), X 0..2 by 0.5 with one decimal.
	require.Contains(t, s, ">150</text>")
	require.Contains(t, s, ">1.5</text>")
	require.Contains(t, s, ">0.0</text>")
	require.Equal(t, doc, lineChart(t, c), "the same chart twice gives the same bytes")
}

// TestLineChartDegenerate feeds what a replay can produce at its edges:
// no series, empty series, a single point, all zeros (also on a log axis,
// where nothing can be drawn), NaN and infinities, more Y than X, a tiny
// canvas. Each must give a well-formed document without NaN.
func TestLineChartDegenerate(t *testing.T) {
	nan, inf := math.NaN(), math.Inf(1)
	for _, tc := range []struct {
		name      string
		c         Chart
		polylines int
		circles   int
	}{
		{name: "no series", c: Chart{Title: "empty"}},
		{name: "empty series", c: Chart{Series: []Series{{Name: "a"}, {Name: "b", Y: []float64{}}}}},
		{name: "single point", c: Chart{X: []float64{5}, Series: []Series{{Name: "a", Y: []float64{3}}}}, circles: 1},
		{name: "all zero", c: Chart{X: []float64{0, 1, 2}, Series: []Series{{Name: "a", Y: []float64{0, 0, 0}}}}, polylines: 1},
		{name: "all zero, log", c: Chart{LogY: true, X: []float64{0, 1, 2}, Series: []Series{{Name: "a", Y: []float64{0, 0, 0}}}}},
		{name: "log with gaps", c: Chart{LogY: true, Series: []Series{{Name: "a", Y: []float64{1, 10, 0, 1000, 5, 0, 7}}}},
			polylines: 2, circles: 1},
		{name: "not finite", c: Chart{Series: []Series{{Name: "a", Y: []float64{nan, 1, inf, 2, 3, -inf}}}}, polylines: 1, circles: 1},
		{name: "not finite X", c: Chart{X: []float64{nan, inf}, Series: []Series{{Name: "a", Y: []float64{1, 2}}}}},
		{name: "more Y than X", c: Chart{X: []float64{0, 1}, Series: []Series{{Name: "a", Y: []float64{1, 2, 3, 4}}}}, polylines: 1},
		{name: "constant", c: Chart{X: []float64{3, 3}, Series: []Series{{Name: "a", Y: []float64{7, 7}}}}, polylines: 1},
		{name: "negative", c: Chart{Series: []Series{{Name: "a", Y: []float64{-5, -0.001, -3}}}}, polylines: 1},
		{name: "huge", c: Chart{Series: []Series{{Name: "a", Y: []float64{-math.MaxFloat64, math.MaxFloat64}}}}, polylines: 1},
		{name: "tiny canvas", c: Chart{Width: 1, Height: 1, Series: []Series{{Name: "a", Y: []float64{1, 2}}}}, polylines: 1},
		{name: "many series", c: Chart{Series: func() []Series {
			s := make([]Series, 30)
			for i := range s {
				s[i] = Series{Name: "s", Y: []float64{float64(i), float64(i + 1)}}
			}
			return s
		}()}, polylines: 30},
	} {
		t.Run(tc.name, func(t *testing.T) {
			doc := lineChart(t, tc.c)
			n := wellFormed(t, doc)
			require.Equal(t, tc.polylines, n["polyline"])
			require.Equal(t, tc.circles, n["circle"])
			require.Equal(t, doc, lineChart(t, tc.c))
		})
	}
}

// TestLineChartLogTicks checks the log axis: a tick at every power of ten
// the data spans, labelled plainly.
func TestLineChartLogTicks(t *testing.T) {
	doc := lineChart(t, Chart{LogY: true, Series: []Series{{Name: "a", Y: []float64{3, 40000}}}})
	wellFormed(t, doc)
	for _, l := range []string{">1</text>", ">10</text>", ">100</text>", ">1000</text>", ">10000</text>", ">100000</text>"} {
		require.Contains(t, string(doc), l)
	}
}

// TestBlockMap checks a map of five cells on three columns: well-formed,
// two cells per row plus one, the occupancy bars of the cells that are not
// empty, the tooltips and legend labels escaped, the same bytes twice.
func TestBlockMap(t *testing.T) {
	m := Map{
		Title: "Node 0, zone DMA32: pageblocks by migratetype",
		Cols:  3,
		Cells: []Cell{
			{Color: "#ff0000", Fill: 0, Title: "pfn 0x0 <Unmovable>"},
			{Color: "#00ff00", Fill: 0.5, Title: "pfn 0x200"},
			{Color: "#00ff00", Fill: 1},
			{Color: "", Fill: math.NaN()},
			{Color: "#0000ff", Fill: 7, Title: "over full"},
		},
		Legend: []LegendEntry{{Label: "Unmovable", Color: "#ff0000"}, {Label: "Movable & co", Color: "#00ff00"}},
	}
	doc := blockMap(t, m)
	n := wellFormed(t, doc)
	// Background, five cells, three bars (0.5, 1, and 7 clamped), two swatches.
	require.Equal(t, 1+5+3+2, n["rect"])
	require.Equal(t, 3, n["title"])
	s := string(doc)
	require.Contains(t, s, m.Title)
	require.Contains(t, s, "pfn 0x0 &lt;Unmovable&gt;")
	require.Contains(t, s, "Movable &amp; co")
	require.Contains(t, s, `y="41.0" width="10" height="5.0"`) // the half-full cell: row 0 at y 36
	require.Contains(t, s, `fill="`+emptyColor+`"`)
	require.NotContains(t, s, `height="70.0"`)
	require.Equal(t, doc, blockMap(t, m))
}

// TestBlockMapEmpty checks a map without cells, legend or columns.
func TestBlockMapEmpty(t *testing.T) {
	n := wellFormed(t, blockMap(t, Map{}))
	require.Equal(t, 1, n["rect"])
	n = wellFormed(t, blockMap(t, Map{Title: "x", Cols: -1, Cells: make([]Cell, 200)}))
	require.Equal(t, 1+200, n["rect"])
}

// TestWriteError checks that the writer's error comes back.
func TestWriteError(t *testing.T) {
	boom := errors.New("boom")
	require.ErrorIs(t, LineChart(failWriter{boom}, Chart{}), boom)
	require.ErrorIs(t, BlockMap(failWriter{boom}, Map{}), boom)
}

type failWriter struct{ err error }

func (f failWriter) Write([]byte) (int, error) { return 0, f.err }

// TestTickLabel checks the tick formatting: decimals from the step, no
// negative zero.
func TestTickLabel(t *testing.T) {
	for _, tc := range []struct {
		v, step float64
		want    string
	}{
		{0, 1, "0"}, {20, 20, "20"}, {0.5, 0.5, "0.5"}, {0.30000000000000004, 0.1, "0.3"},
		{-1e-17, 0.1, "0.0"}, {0.25, 0.05, "0.25"}, {-2, 1, "-2"}, {2e15, 1e15, "2e+15"},
	} {
		require.Equal(t, tc.want, tickLabel(tc.v, tc.step), "%v step %v", tc.v, tc.step)
	}
	require.Equal(t, "1e7", powLabel(7))
	require.Equal(t, "0.001", powLabel(-3))
	require.Equal(t, "1e-4", powLabel(-4))
	require.Equal(t, strings.Repeat("1", 1), powLabel(0))
}
