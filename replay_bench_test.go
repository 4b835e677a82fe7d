package mmsim_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/mmsim/mmsim"
	"github.com/mmsim/mmsim/internal/perfscript"
)

// BenchmarkReplay measures a replay of the tar capture (page-cache large
// folios, orders 0-8) through DefaultConfig against parsing the same
// text alone. Mevents/s counts the capture's mm_page_alloc, mm_page_free
// and mm_page_free_batched events per second. x-parse is the replay's
// time over the parse's, both timed in each iteration of the replay
// benchmark, one after the other: this shared machine's speed drifts by
// half within seconds, so a parse timed in another benchmark run is no
// reference.
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
		parse := func() {
			sc := perfscript.NewScanner(bytes.NewReader(data))
			for sc.Scan() {
			}
		}
		b.Run(name+"/parse", func(b *testing.B) {
			for b.Loop() {
				parse()
			}
			b.ReportMetric(float64(counted)*float64(b.N)/b.Elapsed().Seconds()/1e6, "Mevents/s")
		})
		b.Run(name+"/replay", func(b *testing.B) {
			var parsing time.Duration
			for b.Loop() {
				b.StopTimer()
				start := time.Now()
				parse()
				parsing += time.Since(start)
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
			b.ReportMetric(float64(counted)*float64(b.N)/b.Elapsed().Seconds()/1e6, "Mevents/s")
			b.ReportMetric(float64(b.Elapsed())/float64(parsing), "x-parse")
		})
	}
}
