package mmsim

import (
	"fmt"

	"github.com/mmsim/mmsim/zone"
)

// MemLimit returns the machine booted with mem=bytes: only the first bytes
// of its present memory, in physical address order, are kept. A zone past
// the limit is left empty; the zone the limit cuts ends at the limit, its
// boot reservations (Present - Managed) kept first, as memblock leaves
// them. Every other field is unchanged, so min_free_kbytes 0 recomputes
// the watermarks for the smaller machine. It is how a replay studies a
// real workload under pressure: the same trace on less memory.
//
// Kernel: mm/memblock.c:memblock_enforce_memory_limit() (the mem= boot
// parameter).
func (c Config) MemLimit(bytes int64) (Config, error) {
	if bytes < zone.PageSize {
		return c, fmt.Errorf("%w: mem=%d: less than a page", ErrInvalid, bytes)
	}
	budget := bytes / zone.PageSize
	out := c
	out.Nodes = make([]NodeConfig, len(c.Nodes))
	for i, n := range c.Nodes {
		nn := NodeConfig{CPUs: append([]int(nil), n.CPUs...)}
		for _, z := range n.Zones {
			if budget <= 0 {
				break
			}
			if z.Present > budget {
				reserved := z.Present - z.Managed
				z.Present, z.Spanned = budget, budget
				z.Managed = max(budget-reserved, 0)
			}
			budget -= z.Present
			nn.Zones = append(nn.Zones, z)
		}
		if len(nn.Zones) == 0 {
			return c, fmt.Errorf("%w: mem=%d leaves node %d without memory", ErrInvalid, bytes, i)
		}
		out.Nodes[i] = nn
	}
	return out, nil
}
