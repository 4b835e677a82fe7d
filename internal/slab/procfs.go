package slab

import (
	"bufio"
	"fmt"
	"io"
)

// WriteSlabinfo writes /proc/slabinfo (version 2.1): the header, then one
// line per cache, most recently created first (create_cache adds to the
// head of slab_caches). active_objs is num_objs less the free objects of
// the partial slabs (count_partial_free_approx), so the free objects of
// the CPU slabs count as active; tunables and sharedavail are 0 under
// SLUB; active_slabs equals num_slabs.
//
// Kernel: mm/slab_common.c:print_slabinfo_header(), slab_show(),
// cache_show(); mm/slub.c:get_slabinfo().
func (s *Allocator) WriteSlabinfo(w io.Writer) error {
	s.mu.Lock()
	caches := append([]*Cache(nil), s.caches...)
	s.mu.Unlock()
	bw := bufio.NewWriter(w)
	bw.WriteString("slabinfo - version: 2.1\n")
	bw.WriteString("# name            <active_objs> <num_objs> <objsize> <objperslab> <pagesperslab>")
	bw.WriteString(" : tunables <limit> <batchcount> <sharedfactor>")
	bw.WriteString(" : slabdata <active_slabs> <num_slabs> <sharedavail>\n")
	for i := len(caches) - 1; i >= 0; i-- {
		c := caches[i]
		c.mu.Lock()
		nrSlabs, nrObjs, free := c.nrSlabs, c.nrObjs, c.partialFree
		c.mu.Unlock()
		fmt.Fprintf(bw, "%-17s %6d %6d %6d %4d %4d", c.name, nrObjs-free, nrObjs, c.l.size, c.l.oo.objects, 1<<c.l.oo.order)
		fmt.Fprintf(bw, " : tunables %4d %4d %4d", 0, 0, 0)
		fmt.Fprintf(bw, " : slabdata %6d %6d %6d\n", nrSlabs, nrSlabs, 0)
	}
	return bw.Flush()
}
