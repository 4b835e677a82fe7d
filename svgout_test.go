package mmsim_test

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mmsim/mmsim"
	"github.com/mmsim/mmsim/gfp"
	"github.com/mmsim/mmsim/zone"
)

// svgElements checks that doc is well-formed XML with an svg root, and
// returns its elements' start tags in order.
func svgElements(t *testing.T, doc []byte) []xml.StartElement {
	t.Helper()
	dec := xml.NewDecoder(bytes.NewReader(doc))
	var out []xml.StartElement
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		if se, ok := tok.(xml.StartElement); ok {
			out = append(out, se.Copy())
		}
	}
	require.NotEmpty(t, out)
	require.Equal(t, "svg", out[0].Name.Local)
	return out
}

func attr(se xml.StartElement, name string) string {
	for _, a := range se.Attr {
		if a.Name.Local == name {
			return a.Value
		}
	}
	return ""
}

// TestPageblockSVG draws each zone of the default machine after a few
// allocations of each mobility: one cell per pageblock holding present
// pages (8 for DMA, whose pfns 1..3998 touch pageblocks 0..7; 1528 for
// DMA32's 782336 pages; 2560 for Normal's 1310720), the title, the five
// migratetypes in the legend; the unmovable allocation claimed pageblocks
// of Normal, which the map colours red, and those partly used are shaded.
//
// Reference: mm/page_alloc.c:try_to_claim_block() (the claim);
// mm/vmstat.c:pagetypeinfo_showblockcount_print() (the pageblocks).
func TestPageblockSVG(t *testing.T) {
	s := newSystem(t, mmsim.DefaultConfig())
	tk := s.NewTask("t")
	var held []mmsim.Page
	for _, mask := range []gfp.Mask{gfp.Kernel, gfp.HighUserMovable, gfp.Kernel | gfp.Reclaimable} {
		for range 50 {
			p, err := s.AllocPages(tk, mask, 2)
			require.NoError(t, err)
			held = append(held, p)
		}
	}
	node := s.Nodes()[0]
	for _, tc := range []struct {
		zt    gfp.ZoneType
		cells int
	}{{gfp.ZoneDMA, 8}, {gfp.ZoneDMA32, 1528}, {gfp.ZoneNormal, 2560}} {
		z := node.Zone(tc.zt)
		var buf bytes.Buffer
		require.NoError(t, s.WritePageblockSVG(&buf, z))
		var cells, unmovable, shaded, rects int
		for _, se := range svgElements(t, buf.Bytes()) {
			switch se.Name.Local {
			case "g":
				cells++
				rects = 0
				if attr(se, "fill") == "#d62728" {
					unmovable++
				}
			case "rect":
				// A cell's second rect is its occupancy bar; a
				// pageblock partly used has one shorter than the
				// cell.
				if rects++; rects == 2 && attr(se, "height") != "10.0" {
					shaded++
				}
			}
		}
		require.Equal(t, tc.cells, cells, z.Name())
		out := buf.String()
		require.Contains(t, out, "Node 0, zone "+z.Name()+": pageblocks by migratetype")
		for _, name := range []string{"Unmovable", "Movable", "Reclaimable", "HighAtomic", "Isolate"} {
			require.Contains(t, out, ">"+name+"</text>", z.Name())
		}
		if tc.zt == gfp.ZoneNormal {
			require.Positive(t, unmovable, "the GFP_KERNEL requests claimed a pageblock")
			require.Positive(t, shaded, "a partly used pageblock is shaded")
		}
		if tc.zt == gfp.ZoneDMA {
			// The first pageblock has 159 reserved pages of its 511
			// present: occupancy 158/511 (pfn 0 is not the zone's).
			require.Contains(t, out, "pfn 0x0 Movable: 256/414 free")
		}
	}
	for _, p := range held {
		require.NoError(t, s.FreePages(tk, p, 2))
	}
	require.NoError(t, s.CheckInvariants())
}

// TestPageblockSVGInvalid checks the refusals: no zone, and a zone of
// another machine. A zone without pages draws an empty map.
func TestPageblockSVGInvalid(t *testing.T) {
	s := newSystem(t, mmsim.DefaultConfig())
	other := newSystem(t, mmsim.DefaultConfig())
	require.ErrorIs(t, s.WritePageblockSVG(io.Discard, nil), mmsim.ErrInvalid)
	require.ErrorIs(t, s.WritePageblockSVG(io.Discard, other.Nodes()[0].Zone(gfp.ZoneNormal)), mmsim.ErrInvalid)
	var buf bytes.Buffer
	require.NoError(t, s.WritePageblockSVG(&buf, s.Nodes()[0].Zone(gfp.ZoneMovable)))
	for _, se := range svgElements(t, buf.Bytes()) {
		require.NotEqual(t, "g", se.Name.Local)
	}
}

// indexLine is one line of the extfrag debugfs files: the zone, then one
// value per order as "%d.%03d" (extfrag_index pads the integer part to
// two columns; a value between -1 and 0 prints as 0.-NNN).
var indexLine = regexp.MustCompile(`^Node (\d+), zone ([ A-Za-z0-9]{8}) ((?:[ -]?-?\d+\.-?\d+ )+)$`)

// parseIndexFile parses an extfrag debugfs file into each zone's values in
// thousandths.
func parseIndexFile(t *testing.T, s string) (zones []string, values [][]int) {
	t.Helper()
	for _, l := range strings.Split(strings.TrimSuffix(s, "\n"), "\n") {
		m := indexLine.FindStringSubmatch(l)
		require.NotNil(t, m, "line %q", l)
		zones = append(zones, strings.TrimSpace(m[2]))
		var vs []int
		for _, f := range strings.Fields(m[3]) {
			ip, fp, ok := strings.Cut(f, ".")
			require.True(t, ok, f)
			i, err := strconv.Atoi(ip)
			require.NoError(t, err)
			fr, err := strconv.Atoi(fp)
			require.NoError(t, err)
			vs = append(vs, i*1000+fr)
		}
		values = append(values, vs)
	}
	return zones, values
}

// TestExtfragIndexFiles reads the two debugfs files of the default machine
// after boot and after fragmenting its DMA zone: one line per populated
// zone with NrPageOrders values; after boot every order's fragmentation
// index is -1.000 (a MAX_ORDER block is free everywhere) and the unusable
// index grows with the order, as Zone.FragmentationIndex and
// Zone.UnusableIndex give them.
//
// Reference: mm/vmstat.c:extfrag_show_print(), unusable_show_print().
func TestExtfragIndexFiles(t *testing.T) {
	s := newSystem(t, mmsim.DefaultConfig())
	check := func() {
		var buf bytes.Buffer
		require.NoError(t, s.WriteExtfragIndex(&buf))
		zones, frag := parseIndexFile(t, buf.String())
		require.Equal(t, []string{"DMA", "DMA32", "Normal"}, zones)
		buf.Reset()
		require.NoError(t, s.WriteUnusableIndex(&buf))
		uzones, unusable := parseIndexFile(t, buf.String())
		require.Equal(t, zones, uzones)
		for i, name := range zones {
			require.Len(t, frag[i], zone.NrPageOrders)
			require.Len(t, unusable[i], zone.NrPageOrders)
			z := s.Nodes()[0].Zone(gfp.ZoneType(i))
			require.Equal(t, name, z.Name())
			for o := range zone.NrPageOrders {
				require.Equal(t, z.FragmentationIndex(zone.Order(o)), frag[i][o], "%s order %d", name, o)
				require.Equal(t, z.UnusableIndex(zone.Order(o)), unusable[i][o], "%s order %d", name, o)
				if o > 0 {
					require.GreaterOrEqual(t, unusable[i][o], unusable[i][o-1])
				}
			}
		}
	}
	check()
	var buf bytes.Buffer
	require.NoError(t, s.WriteExtfragIndex(&buf))
	require.Equal(t, 3, strings.Count(buf.String(), strings.Repeat("-1.000 ", zone.NrPageOrders)+"\n"))

	// Take the DMA zone's order-4 and larger blocks, leaving the smaller
	// ones: the high orders' fragmentation index leaves -1000.
	tk := s.NewTask("t")
	for {
		if _, err := s.AllocPages(tk, gfp.DMA|gfp.NoWarn, 4); err != nil {
			break
		}
	}
	check()
	dma := s.Nodes()[0].Zone(gfp.ZoneDMA)
	require.NotEqual(t, -1000, dma.FragmentationIndex(zone.MaxPageOrder))
	require.Equal(t, 1000, dma.UnusableIndex(zone.MaxPageOrder))
}

// TestFreePagesSVG draws three samples of the Normal zone's free areas:
// one series per order, the title, and an error for slices that do not
// match.
func TestFreePagesSVG(t *testing.T) {
	s := newSystem(t, mmsim.DefaultConfig())
	tk := s.NewTask("t")
	z := s.Nodes()[0].Zone(gfp.ZoneNormal)
	var times []float64
	var samples [][zone.NrPageOrders]int64
	for i := range 3 {
		times = append(times, float64(i))
		samples = append(samples, z.FreeArea())
		for range 100 {
			_, err := s.AllocPages(tk, gfp.Kernel, zone.Order(i))
			require.NoError(t, err)
		}
	}
	var buf bytes.Buffer
	require.NoError(t, mmsim.WriteFreePagesSVG(&buf, "Normal <free>", times, samples))
	els := svgElements(t, buf.Bytes())
	var groups int
	for _, se := range els {
		if se.Name.Local == "g" {
			groups++
		}
	}
	require.Equal(t, zone.NrPageOrders, groups)
	out := buf.String()
	require.Contains(t, out, "Normal &lt;free&gt;")
	for o := range zone.NrPageOrders {
		require.Contains(t, out, ">order "+strconv.Itoa(o)+"</text>")
	}
	var again bytes.Buffer
	require.NoError(t, mmsim.WriteFreePagesSVG(&again, "Normal <free>", times, samples))
	require.Equal(t, buf.Bytes(), again.Bytes())

	require.ErrorIs(t, mmsim.WriteFreePagesSVG(io.Discard, "x", times[:2], samples), mmsim.ErrInvalid)
	require.NoError(t, mmsim.WriteFreePagesSVG(io.Discard, "empty", nil, nil))
}
