package mmsim_test

import (
	"bytes"
	"testing"

	"github.com/mmsim/mmsim"
	"github.com/mmsim/mmsim/internal/perfscript"
)

// BenchmarkReplay measures a replay of the tar capture (page-cache large
// folios, orders 0-8) through DefaultConfig against parsing the same
// text alone. Mevents/s counts the capture's mm_page_alloc, mm_page_free
// and mm_page_free_batched events per second; x-parse is the replay's
// time over the parse's, measured in the same run.
func BenchmarkReplay(b *testing.B) {
	for _, name := range []string{"page_tar_xz.perf.txt.gz", "page_anon_mmap.perf.txt.gz"} {
		data := readTrace(b, name)
		var counted int64
		sc := perfscript.NewScanner(bytes.NewReader(data))
		for sc.Scan() {
			switch sc.Event().Kind {
			case perfscript.PageAlloc, perfscript.PageFree, perfscript.PageFreeBatched:
				counted++
			}
		}
		var parseNs float64
		b.Run(name+"/parse", func(b *testing.B) {
			for b.Loop() {
				sc := perfscript.NewScanner(bytes.NewReader(data))
				for sc.Scan() {
				}
			}
			parseNs = float64(b.Elapsed().Nanoseconds()) / float64(b.N)
			b.ReportMetric(float64(counted)*float64(b.N)/b.Elapsed().Seconds()/1e6, "Mevents/s")
		})
		b.Run(name+"/replay", func(b *testing.B) {
			for b.Loop() {
				b.StopTimer()
				s, err := mmsim.New(mmsim.DefaultConfig())
				if err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				if _, err := s.Replay(bytes.NewReader(data), mmsim.ReplayProgress(nil)); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				s.Close()
				b.StartTimer()
			}
			ns := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
			b.ReportMetric(float64(counted)*float64(b.N)/b.Elapsed().Seconds()/1e6, "Mevents/s")
			if parseNs > 0 {
				b.ReportMetric(ns/parseNs, "x-parse")
			}
		})
	}
}
