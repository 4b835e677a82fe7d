// Package svg writes the two small charts mmsim draws: a line chart (free
// pages per order over time, counters over a replay) and a block map (a
// zone's pageblocks coloured by migratetype and shaded by occupancy).
//
// It uses the standard library only. The output is deterministic: the same
// input gives the same bytes (coordinates print with one decimal, colours
// come from a fixed palette, nothing iterates a map), so charts can be kept
// as golden files. Every text is XML-escaped, and values that cannot be
// drawn (NaN, infinities, and zero or negative values on a logarithmic
// axis) leave a gap in their line instead of corrupting the document.
//
// The package has no kernel counterpart; it renders what the /proc and
// debugfs files of the other packages print as numbers.
package svg
