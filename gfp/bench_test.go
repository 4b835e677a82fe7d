package gfp_test

import (
	"testing"

	"github.com/mmsim/mmsim/gfp"
)

var (
	sinkString string
	sinkMask   gfp.Mask
)

// BenchmarkString measures printing, which every traced event pays.
func BenchmarkString(b *testing.B) {
	for _, bc := range []struct {
		name string
		m    gfp.Mask
	}{
		{"mask=GFP_KERNEL", gfp.Kernel},
		{"mask=anon-fault", gfp.HighUserMovable | gfp.Zero | gfp.Comp},
		{"mask=nofs-page-cache", 0x150c5a},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				sinkString = bc.m.String()
			}
		})
	}
}

// BenchmarkParse measures parsing, which replaying a trace pays per event.
func BenchmarkParse(b *testing.B) {
	for _, bc := range []struct{ name, s string }{
		{"mask=GFP_KERNEL", "GFP_KERNEL"},
		{"mask=anon-fault", "GFP_HIGHUSER_MOVABLE|__GFP_ZERO|__GFP_COMP"},
		{"mask=nofs-page-cache", "GFP_NOFS|__GFP_HIGHMEM|__GFP_MOVABLE|__GFP_NOWARN|__GFP_NORETRY|__GFP_COMP|__GFP_HARDWALL"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				m, err := gfp.Parse(bc.s)
				if err != nil {
					b.Fatal(err)
				}
				sinkMask = m
			}
		})
	}
}
