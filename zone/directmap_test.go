package zone

import (
	"bytes"
	"fmt"
	"regexp"
	"strconv"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/sync/errgroup"

	"github.com/mmsim/mmsim/gfp"
	"github.com/mmsim/mmsim/internal/bug"
)

// oddMachine has zones that start and end off every large-page boundary,
// so that its direct map mixes all three entry sizes at both ends of a
// zone.
func oddMachine() Config {
	return Config{NrCPUs: 2, Sysctl: DefaultSysctl(), Nodes: []NodeConfig{{CPUs: []int{0, 1}, Zones: []ZoneConfig{
		{Type: gfp.ZoneDMA, StartPFN: 1, Spanned: 4095, Present: 3998, Managed: 3840},
		{Type: gfp.ZoneDMA32, StartPFN: 4096, Spanned: 782336, Present: 781000, Managed: 770000},
		{Type: gfp.ZoneNormal, StartPFN: 1048576 + 300, Spanned: 3*pudNrPages + 1000, Present: 3*pudNrPages + 1000, Managed: 700000},
	}}}}
}

// oldDirectMap is the stateless boot computation /proc/meminfo used before
// DirectMap, the reference for the boot layout: a greedy walk of each
// mapped range (the ISA range, then the zones' present runs).
func oldDirectMap(a *Allocator) (k4, m2, g1 int64) {
	const pud, pmd = 1 << (30 - PageShift), 1 << (21 - PageShift)
	for _, r := range a.DirectMap().ranges {
		for pfn, end := r.start, r.end; pfn < end; {
			switch {
			case pfn%pud == 0 && pfn+pud <= end:
				g1++
				pfn += pud
			case pfn%pmd == 0 && pfn+pmd <= end:
				m2++
				pfn += pmd
			default:
				k4++
				pfn++
			}
		}
	}
	return k4, m2, g1
}

// dmState is everything a DirectMap call may change: the counts, the split
// events and the invalid pages among probe.
type dmState struct {
	k4, m2, g1     int64
	level2, level3 int64
	invalid        []PFN
}

func directMapState(a *Allocator, probe ...PFN) dmState {
	var s dmState
	s.k4, s.m2, s.g1 = a.DirectMap().Counts()
	s.level2, s.level3 = a.Event(VMDirectMapLevel2Splits), a.Event(VMDirectMapLevel3Splits)
	for _, pfn := range probe {
		if a.DirectMap().Invalid(pfn) {
			s.invalid = append(s.invalid, pfn)
		}
	}
	return s
}

// TestDirectMapBootMatchesTheBootWalk checks that the boot counts equal the
// old stateless walk's on several machines, that the per-page boot level
// DirectMap looks up agrees with them page by page, and that /proc/meminfo
// prints them.
//
// Reference: arch/x86/mm/init.c:init_memory_mapping() (split_mem_range),
// arch/x86/mm/pat/set_memory.c:arch_report_meminfo().
func TestDirectMapBootMatchesTheBootWalk(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{"a small machine", smallMachine()},
		{"the real machine", realMachine()},
		{"zones off every large-page boundary", oddMachine()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, err := New(tc.cfg, Options{})
			require.NoError(t, err)
			k4, m2, g1 := a.DirectMap().Counts()
			wk4, wm2, wg1 := oldDirectMap(a)
			require.Equal(t, [3]int64{wk4, wm2, wg1}, [3]int64{k4, m2, g1})

			var pages [pgLevel1G + 1]int64
			for _, r := range a.DirectMap().ranges {
				for pfn := r.start; pfn < r.end; pfn++ {
					pages[r.bootLevel(pfn)]++
				}
			}
			require.Equal(t, [3]int64{k4, m2, g1},
				[3]int64{pages[pgLevel4K], pages[pgLevel2M] / pmdNrPages, pages[pgLevel1G] / pudNrPages})

			var buf bytes.Buffer
			require.NoError(t, a.WriteMeminfo(&buf))
			require.Contains(t, buf.String(), fmt.Sprintf("DirectMap4k:    %8d kB\nDirectMap2M:    %8d kB\nDirectMap1G:    %8d kB\n",
				wk4*4, wm2*2048, wg1*1048576))
		})
	}
}

// TestDirectMapSplits walks secretmem-style invalidations through the real
// machine's direct map: the first page of a 1 GiB entry splits it and then
// its 2 MiB block, a second page of that block splits nothing, a page of
// another 2 MiB block of the split region splits only that block, and
// mapping a page again merges nothing. /proc/meminfo and /proc/vmstat show
// the new counts.
//
// Reference: arch/x86/mm/pat/set_memory.c:__change_page_attr(),
// split_large_page(), split_page_count().
func TestDirectMapSplits(t *testing.T) {
	a, err := New(realMachine(), Options{})
	require.NoError(t, err)
	d := a.DirectMap()
	const normal PFN = 1048576 // the first page of the Normal zone, at 4 GiB
	p1, p2, p3 := normal+5, normal+6, normal+pmdNrPages+7
	boot := directMapState(a)
	// The first 2 MiB in 4 KiB entries: the ISA range, mapped whole, then
	// 1-2 MiB, mapped apart from it (init_mem_mapping).
	require.Equal(t, dmState{k4: 512, m2: 511, g1: 23}, boot)

	require.NoError(t, d.SetInvalid(p1))
	require.True(t, d.Invalid(p1))
	afterFirst := dmState{k4: boot.k4 + 512, m2: boot.m2 + 511, g1: boot.g1 - 1, level2: 1, level3: 1, invalid: []PFN{p1}}
	require.Equal(t, afterFirst, directMapState(a, p1, p2, p3), "the first page splits 1G then 2M")

	require.NoError(t, d.SetInvalid(p2))
	want := afterFirst
	want.invalid = []PFN{p1, p2}
	require.Equal(t, want, directMapState(a, p1, p2, p3), "a second page of the same 2M block splits nothing")

	require.NoError(t, d.SetInvalid(p3))
	want = dmState{k4: afterFirst.k4 + 512, m2: afterFirst.m2 - 1, g1: afterFirst.g1, level2: 2, level3: 1, invalid: []PFN{p1, p2, p3}}
	require.Equal(t, want, directMapState(a, p1, p2, p3), "another 2M block of the split 1G region splits at level 2 only")

	require.NoError(t, d.SetDefault(p1))
	require.False(t, d.Invalid(p1))
	want.invalid = []PFN{p2, p3}
	require.Equal(t, want, directMapState(a, p1, p2, p3), "SetDefault merges nothing back")
	require.NoError(t, d.SetInvalid(p1), "the page can be invalidated again")
	want.invalid = []PFN{p1, p2, p3}
	require.Equal(t, want, directMapState(a, p1, p2, p3), "re-invalidating inside split entries splits nothing")

	var buf bytes.Buffer
	require.NoError(t, a.WriteMeminfo(&buf))
	require.Contains(t, buf.String(), fmt.Sprintf("DirectMap4k:    %8d kB\nDirectMap2M:    %8d kB\nDirectMap1G:    %8d kB\n",
		want.k4*4, want.m2*2048, want.g1*1048576))
	buf.Reset()
	require.NoError(t, a.WriteVmstat(&buf))
	require.Contains(t, buf.String(), "\ndirect_map_level2_splits 2\ndirect_map_level3_splits 1\n")
}

// TestDirectMapBootEntrySizes invalidates one page in a boot 2 MiB entry
// and one in a boot 4 KiB entry: the first splits at level 2 only, the
// second splits nothing.
//
// Reference: arch/x86/mm/pat/set_memory.c:should_split_large_page(),
// split_page_count().
func TestDirectMapBootEntrySizes(t *testing.T) {
	a, err := New(realMachine(), Options{})
	require.NoError(t, err)
	d := a.DirectMap()
	const in2M, in4K PFN = 4096 + 3, 100 // DMA32's first 2M entry; DMA's 4K entries
	r32, _ := d.rangeOf(in2M)
	require.Equal(t, pgLevel2M, r32.bootLevel(in2M))
	rDMA, _ := d.rangeOf(in4K)
	require.Equal(t, pgLevel4K, rDMA.bootLevel(in4K))
	boot := directMapState(a)

	require.NoError(t, d.SetInvalid(in2M))
	want := dmState{k4: boot.k4 + 512, m2: boot.m2 - 1, g1: boot.g1, level2: 1, invalid: []PFN{in2M}}
	require.Equal(t, want, directMapState(a, in2M, in4K))

	require.NoError(t, d.SetInvalid(in4K))
	want.invalid = []PFN{in2M, in4K}
	require.Equal(t, want, directMapState(a, in2M, in4K), "a boot 4K entry needs no split")
}

// TestDirectMapMisuse checks that a double invalidate and a restore of a
// mapped page are refused as BUGs, and a pfn outside present memory as
// invalid, each changing nothing.
//
// Reference: arch/x86/mm/pat/set_memory.c:set_direct_map_invalid_noflush(),
// set_direct_map_default_noflush(), __cpa_process_fault().
func TestDirectMapMisuse(t *testing.T) {
	var reports []bug.Report
	a, err := New(realMachine(), Options{Report: func(r bug.Report) { reports = append(reports, r) }})
	require.NoError(t, err)
	d := a.DirectMap()
	const normal PFN = 1048576
	invalid, mapped := normal+5, normal+6
	require.NoError(t, d.SetInvalid(invalid))
	probe := []PFN{invalid, mapped, 0, 1 << 40}
	before := directMapState(a, probe...)

	for _, tc := range []struct {
		name string
		call func() error
		want error
		bug  bool
	}{
		{"invalidating an invalid page is a BUG", func() error { return d.SetInvalid(invalid) }, ErrBug, true},
		{"restoring a mapped page is a BUG", func() error { return d.SetDefault(mapped) }, ErrBug, true},
		{"invalidating pfn 0, below the DMA zone, is invalid", func() error { return d.SetInvalid(0) }, ErrInvalid, false},
		{"invalidating a pfn past the end of memory is invalid", func() error { return d.SetInvalid(1 << 40) }, ErrInvalid, false},
		{"invalidating a pfn in the hole below 4 GiB is invalid", func() error { return d.SetInvalid(900000) }, ErrInvalid, false},
		{"restoring a pfn past the end of memory is invalid", func() error { return d.SetDefault(1 << 40) }, ErrInvalid, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reports = nil
			err := tc.call()
			require.ErrorIs(t, err, tc.want)
			require.Equal(t, before, directMapState(a, probe...), "the direct map is unchanged")
			if tc.bug {
				require.Len(t, reports, 1)
				require.Equal(t, bug.Bug, reports[0].Kind)
				require.Equal(t, err.Error(), reports[0].Text)
			} else {
				require.Empty(t, reports)
			}
		})
	}
}

// TestDirectMapConcurrent has several goroutines invalidate and restore
// pages, some in 2 MiB and 1 GiB regions they share, and checks that each
// region was split exactly once (run it under -race).
//
// Reference: arch/x86/mm/pat/set_memory.c:cpa_lock (splits are serialized).
func TestDirectMapConcurrent(t *testing.T) {
	a, err := New(realMachine(), Options{})
	require.NoError(t, err)
	d := a.DirectMap()
	boot := directMapState(a)
	const normal PFN = 1048576
	const workers, perWorker = 8, 64
	var g errgroup.Group
	var mu sync.Mutex
	touched2M, touched1G := map[PFN]bool{}, map[PFN]bool{}
	for w := range workers {
		g.Go(func() error {
			for i := range perWorker {
				// Pages interleave: worker w's i-th page shares its 2 MiB
				// block with other workers', and blocks share 1 GiB regions.
				pfn := normal + PFN(i)*(pmdNrPages*37) + PFN(w)
				mu.Lock()
				touched2M[pfn>>pmdShift], touched1G[pfn>>pudShift] = true, true
				mu.Unlock()
				if err := d.SetInvalid(pfn); err != nil {
					return err
				}
				if !d.Invalid(pfn) {
					return fmt.Errorf("pfn %#x is not invalid after SetInvalid", uint64(pfn))
				}
				if i%2 == 0 {
					if err := d.SetDefault(pfn); err != nil {
						return err
					}
				}
				d.Counts()
			}
			return nil
		})
	}
	require.NoError(t, g.Wait())
	l2, l3 := int64(len(touched2M)), int64(len(touched1G))
	k4, m2, g1 := d.Counts()
	require.Equal(t, [5]int64{boot.k4 + 512*l2, boot.m2 + 512*l3 - l2, boot.g1 - l3, l2, l3},
		[5]int64{k4, m2, g1, a.Event(VMDirectMapLevel2Splits), a.Event(VMDirectMapLevel3Splits)})
	invalid := 0
	for w := range workers {
		for i := range perWorker {
			pfn := normal + PFN(i)*(pmdNrPages*37) + PFN(w)
			require.Equal(t, i%2 == 1, d.Invalid(pfn), "pfn %#x", uint64(pfn))
			if i%2 == 1 {
				invalid++
			}
		}
	}
	require.Len(t, d.invalid, invalid)
}

// TestMeminfoDirectMapFormat checks that the DirectMap lines keep the real
// file's layout.
//
// Reference: arch/x86/mm/pat/set_memory.c:arch_report_meminfo().
func TestMeminfoDirectMapFormat(t *testing.T) {
	a, err := New(realMachine(), Options{})
	require.NoError(t, err)
	var buf bytes.Buffer
	require.NoError(t, a.WriteMeminfo(&buf))
	m := regexp.MustCompile(`(?m)^DirectMap(4k|2M|1G): +(\d+) kB$`).FindAllStringSubmatch(buf.String(), -1)
	require.Len(t, m, 3)
	k4, m2, g1 := a.DirectMap().Counts()
	for i, want := range []int64{k4 * 4, m2 * 2048, g1 * 1048576} {
		got, err := strconv.ParseInt(m[i][2], 10, 64)
		require.NoError(t, err)
		require.Equal(t, want, got, m[i][0])
	}
}
