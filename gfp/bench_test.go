package gfp_test

import (
	"testing"

	"github.com/mmsim/mmsim/gfp"
)

var (
	sinkString string
	sinkMask   gfp.Mask
)

// benchMasks are masks real traces print often, from one name to seven.
var benchMasks = []struct {
	name string
	m    gfp.Mask
}{
	{"mask=GFP_KERNEL", gfp.Kernel},
	{"mask=anon-fault", gfp.HighUserMovable | gfp.Zero | gfp.Comp},
	{"mask=nofs-page-cache", gfp.NoFS | gfp.HighMem | gfp.Movable | gfp.NoWarn | gfp.NoRetry | gfp.Comp | gfp.Hardwall},
}

// BenchmarkString measures printing, which every traced event pays.
func BenchmarkString(b *testing.B) {
	for _, bc := range benchMasks {
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
	for _, bc := range benchMasks {
		b.Run(bc.name, func(b *testing.B) {
			s := bc.m.String()
			b.ReportAllocs()
			for b.Loop() {
				m, err := gfp.Parse(s)
				if err != nil || m != bc.m {
					b.Fatalf("Parse(%q) = %s, %v", s, m, err)
				}
				sinkMask = m
			}
		})
	}
}
