package mmsim

import (
	"fmt"
	"io"
	"strconv"

	"github.com/mmsim/mmsim/gfp"
	"github.com/mmsim/mmsim/internal/svg"
	"github.com/mmsim/mmsim/zone"
)

// This file draws the allocator's state as SVG — a zone's pageblock map and
// the free pages per order over a run — and forwards the debugfs files of
// external fragmentation. The drawing is internal/svg's; the data is
// zone's.

// migratetypeColors colours each migratetype in the pageblock map.
var migratetypeColors = [gfp.MigrateTypes]string{
	gfp.MigrateUnmovable:   "#d62728", // red: kernel allocations pin the block
	gfp.MigrateMovable:     "#2ca02c", // green
	gfp.MigrateReclaimable: "#1f77b4", // blue
	gfp.MigrateHighAtomic:  "#ff7f0e", // orange
	gfp.MigrateIsolate:     "#7f7f7f", // grey
}

// pageblockMapCols is the pageblock map's row length: 64 pageblocks, 128
// MiB.
const pageblockMapCols = 64

// ownsZone reports whether z is a zone of this System's machine.
func (s *System) ownsZone(z *zone.Zone) bool {
	for _, n := range s.alloc.Nodes() {
		if n == z.Node() {
			return n.Zone(z.Type()) == z
		}
	}
	return false
}

// WritePageblockSVG draws zone z's pageblocks as an SVG block map titled
// "Node N, zone NAME: pageblocks by migratetype": one square per pageblock
// holding present pages of the zone (2 MiB, 64 to a row, in pfn order),
// coloured by its migratetype with the kernel's names in the legend
// (Unmovable, Movable, Reclaimable, HighAtomic, Isolate), and filled from
// the bottom by its occupancy, 1 - free/present, where free counts the
// pages on the buddy free lists (pages on per-cpu lists count as used, as
// the buddy allocator sees them). Each square's tooltip gives its first
// pfn, type and free pages. The pageblocks are one snapshot, taken under
// the zone lock (zone.Zone.Pageblocks). A nil zone or one of another
// System is an error wrapping ErrInvalid.
//
// Kernel: none; mm/vmstat.c:pagetypeinfo_showblockcount_print() counts the
// same pageblocks by type.
func (s *System) WritePageblockSVG(w io.Writer, z *zone.Zone) error {
	if z == nil {
		return fmt.Errorf("%w: WritePageblockSVG: no zone", ErrInvalid)
	}
	if !s.ownsZone(z) {
		return fmt.Errorf("%w: WritePageblockSVG: zone %s of node %d belongs to another System", ErrInvalid, z.Name(), z.Node().ID())
	}
	blocks := z.Pageblocks()
	cells := make([]svg.Cell, len(blocks))
	for i, b := range blocks {
		var fill float64
		if b.Present > 0 {
			fill = 1 - float64(b.Free)/float64(b.Present)
		}
		var color string
		if mt := b.Migratetype; mt >= 0 && int(mt) < gfp.MigrateTypes {
			color = migratetypeColors[mt]
		}
		cells[i] = svg.Cell{
			Color: color,
			Fill:  fill,
			Title: "pfn 0x" + strconv.FormatUint(uint64(b.StartPFN), 16) + " " + b.Migratetype.String() +
				": " + strconv.FormatInt(b.Free, 10) + "/" + strconv.FormatInt(b.Present, 10) + " free",
		}
	}
	legend := make([]svg.LegendEntry, gfp.MigrateTypes)
	for mt := range gfp.MigrateTypes {
		legend[mt] = svg.LegendEntry{Label: gfp.Migratetype(mt).String(), Color: migratetypeColors[mt]}
	}
	return svg.BlockMap(w, svg.Map{
		Title:  fmt.Sprintf("Node %d, zone %s: pageblocks by migratetype", z.Node().ID(), z.Name()),
		Cols:   pageblockMapCols,
		Cells:  cells,
		Legend: legend,
	})
}

// WriteFreePagesSVG draws free memory by order over time as an SVG line
// chart with the given title: one series per order ("order 0" … "order
// 10"), the pages held in free blocks of that order (nr_free << order) at
// each sample, on a logarithmic axis (an order with no free block leaves a
// gap). t holds the samples' times in seconds and nrFree, one per sample,
// the free blocks of each order, as zone.Zone.FreeArea returns them and
// /proc/buddyinfo prints them (of one zone, or summed over several).
// Slices of different lengths are an error wrapping ErrInvalid.
//
// Kernel: mm/vmstat.c:frag_show_print() (the /proc/buddyinfo numbers).
func WriteFreePagesSVG(w io.Writer, title string, t []float64, nrFree [][zone.NrPageOrders]int64) error {
	if len(t) != len(nrFree) {
		return fmt.Errorf("%w: WriteFreePagesSVG: %d times but %d samples", ErrInvalid, len(t), len(nrFree))
	}
	series := make([]svg.Series, zone.NrPageOrders)
	for o := range series {
		y := make([]float64, len(nrFree))
		for i, nr := range nrFree {
			y[i] = float64(nr[o] << o)
		}
		series[o] = svg.Series{Name: "order " + strconv.Itoa(o), Y: y}
	}
	return svg.LineChart(w, svg.Chart{
		Title:  title,
		XLabel: "time (s)",
		YLabel: "free pages in blocks of the order",
		X:      t,
		Series: series,
		LogY:   true,
	})
}

// WriteExtfragIndex writes /sys/kernel/debug/extfrag/extfrag_index: per
// populated zone, the fragmentation index of every order.
//
// Kernel: mm/vmstat.c:extfrag_show().
func (s *System) WriteExtfragIndex(w io.Writer) error { return s.alloc.WriteExtfragIndex(w) }

// WriteUnusableIndex writes /sys/kernel/debug/extfrag/unusable_index: per
// populated zone, the unusable free space index of every order.
//
// Kernel: mm/vmstat.c:unusable_show().
func (s *System) WriteUnusableIndex(w io.Writer) error { return s.alloc.WriteUnusableIndex(w) }
