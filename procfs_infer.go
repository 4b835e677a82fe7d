package mmsim

// The inference half of ConfigFromProcfs: the sysctls a zoneinfo implies,
// and the check that the Config built reprints it.

import (
	"bytes"
	"fmt"
	"math"
	"math/bits"
	"slices"

	"github.com/mmsim/mmsim/gfp"
	"github.com/mmsim/mmsim/zone"
)

// procfsRange is a closed interval of sysctl values; lo > hi is empty.
type procfsRange struct{ lo, hi int64 }

func (r *procfsRange) clamp(lo, hi int64) { r.lo, r.hi = max(r.lo, lo), min(r.hi, hi) }
func (r procfsRange) empty() bool         { return r.lo > r.hi }
func (r procfsRange) has(v int64) bool    { return r.lo <= v && v <= r.hi }

// pick is the default when the range holds it, else the smallest value.
func (r procfsRange) pick(def int64) int64 {
	if r.has(def) {
		return def
	}
	return r.lo
}

// mulDiv returns a*b/c rounded down, and rounded up, without overflow;
// ok is false when the quotient does not fit in 63 bits.
func mulDiv(a, b, c int64) (floor, ceil int64, ok bool) {
	hi, lo := bits.Mul64(uint64(a), uint64(b))
	if hi >= uint64(c) {
		return 0, 0, false
	}
	q, rem := bits.Div64(hi, lo, uint64(c))
	if q > math.MaxInt64-1 {
		return 0, 0, false
	}
	floor, ceil = int64(q), int64(q)
	if rem != 0 {
		ceil++
	}
	return floor, ceil, true
}

// procfsIntSqrt is int_sqrt: the floor of the square root.
func procfsIntSqrt(x int64) int64 {
	r := int64(math.Sqrt(float64(x)))
	for r > 0 && r*r > x {
		r--
	}
	for (r+1)*(r+1) <= x {
		r++
	}
	return r
}

// inferSysctl recovers the sysctls WithSysVM did not give from the zones'
// watermarks, protection and pcp bounds (see the comment at the top).
func inferSysctl(nodes [][]*procfsZone, cfg *Config, given procfsGiven, pcpTrusted bool) error {
	s := &cfg.Sysctl
	var lowmem int64
	for _, zs := range nodes {
		for _, z := range zs {
			if z.typ != gfp.ZoneMovable {
				lowmem += z.val[pzManaged]
			}
		}
	}
	if lowmem == 0 {
		return fmt.Errorf("%w: zoneinfo: no zone but Movable has managed pages: the kernel's watermarks divide by them", ErrInvalid)
	}
	tmpOf := func(pagesMin int64, z *procfsZone) int64 {
		t, _, _ := mulDiv(pagesMin, z.val[pzManaged], lowmem)
		return t
	}

	// min_free_kbytes: pages_min from each lowmem zone's min.
	pagesMin := procfsRange{0, math.MaxInt32 >> 2}
	if given.minFree {
		pagesMin = procfsRange{s.MinFreeKbytes >> 2, s.MinFreeKbytes >> 2}
	} else {
		for _, zs := range nodes {
			for _, z := range zs {
				m := z.val[pzManaged]
				if z.typ == gfp.ZoneMovable || m == 0 {
					continue
				}
				zmin := z.unboosted(pzMin)
				if zmin < 0 {
					return fmt.Errorf("%w: zoneinfo line %d: %s: boost %d is above min %d", ErrInvalid, z.at[pzBoost], z, z.val[pzBoost], z.val[pzMin])
				}
				// zmin <= p*m/lowmem < zmin+1
				_, lo, ok1 := mulDiv(zmin, lowmem, m)
				_, hi1, ok2 := mulDiv(zmin+1, lowmem, m)
				if !ok1 || !ok2 {
					return fmt.Errorf("%w: zoneinfo line %d: %s: min %d is out of range", ErrInvalid, z.at[pzMin], z, zmin)
				}
				pagesMin.clamp(lo, hi1-1)
				if pagesMin.empty() {
					return fmt.Errorf("%w: zoneinfo line %d: %s: min %d: no min_free_kbytes gives it and the other zones' mins",
						ErrInvalid, z.at[pzMin], z, zmin)
				}
			}
		}
	}
	bootKB := min(max(procfsIntSqrt(lowmem*(zone.PageSize>>10)*16), 128), 262144)

	// watermark_scale_factor: each zone's low-min gap, given pages_min.
	scaleRange := func(p int64) (procfsRange, *procfsZone) {
		r := procfsRange{1, 3000}
		if given.scale {
			r = procfsRange{int64(s.WatermarkScaleFactor), int64(s.WatermarkScaleFactor)}
		}
		for _, zs := range nodes {
			for _, z := range zs {
				m := z.val[pzManaged]
				gap := z.val[pzLow] - z.val[pzMin]
				quarter := tmpOf(p, z) >> 2
				switch {
				case gap < quarter:
					r = procfsRange{1, 0}
				case m == 0:
					if gap != quarter {
						r = procfsRange{1, 0}
					}
				default:
					// m*wsf/10000 <= gap+1 (exclusive), and == gap when above quarter.
					_, hi, _ := mulDiv(gap+1, 10000, m)
					r.clamp(1, hi-1)
					if gap > quarter {
						_, lo, _ := mulDiv(gap, 10000, m)
						r.clamp(lo, r.hi)
					}
				}
				if r.empty() {
					return r, z
				}
			}
		}
		return r, nil
	}
	var (
		p       int64
		scale   procfsRange
		culprit *procfsZone
	)
	candidates := []int64{pagesMin.pick(bootKB >> 2)}
	for c := pagesMin.lo; c <= pagesMin.hi && len(candidates) < 4096; c++ {
		candidates = append(candidates, c)
	}
	for _, c := range candidates {
		if scale, culprit = scaleRange(c); !scale.empty() {
			p = c
			break
		}
	}
	switch {
	case scale.empty() && (given.minFree || given.scale):
		// The sysctls given contradict the text: the check below says
		// where.
		p, scale = pagesMin.lo, procfsRange{int64(s.WatermarkScaleFactor), int64(s.WatermarkScaleFactor)}
	case scale.empty():
		return fmt.Errorf("%w: zoneinfo line %d: %s: low %d - min %d: no watermark_scale_factor gives it and the other zones' gaps",
			ErrInvalid, culprit.at[pzLow], culprit, culprit.val[pzLow], culprit.val[pzMin])
	}
	if !given.minFree {
		switch {
		case p == bootKB>>2:
			s.MinFreeKbytes = bootKB
		case p == 0:
			s.MinFreeKbytes = 1 // 0 would ask for the boot rule
		default:
			s.MinFreeKbytes = p << 2
		}
	}
	if !given.scale {
		s.WatermarkScaleFactor = int(scale.pick(int64(zone.DefaultSysctl().WatermarkScaleFactor)))
	}

	if !given.ratio {
		if err := inferLowmemReserveRatio(nodes, s); err != nil {
			return err
		}
	}
	if !given.highFraction && pcpTrusted {
		inferHighFraction(nodes, cfg)
	}
	return nil
}

// inferLowmemReserveRatio recovers lowmem_reserve_ratio from the
// protection lines.
func inferLowmemReserveRatio(nodes [][]*procfsZone, s *Sysctl) error {
	def := zone.DefaultSysctl().LowmemReserveRatio
	for i := 0; i < gfp.MaxNrZones-1; i++ {
		r := procfsRange{1, math.MaxInt32}
		constrained, zeroOK := false, true
		for _, zs := range nodes {
			z := zs[i]
			if z.val[pzManaged] == 0 {
				continue
			}
			var above int64
			for j := i + 1; j < gfp.MaxNrZones; j++ {
				above += zs[j].val[pzManaged]
				prot := z.protection[j]
				if above == 0 {
					continue
				}
				constrained = true
				if prot != 0 {
					zeroOK = false
					// prot <= above/ratio < prot+1
					r.clamp(above/(prot+1)+1, above/prot)
				} else {
					r.clamp(above+1, r.hi)
				}
			}
			if r.empty() && !zeroOK {
				return fmt.Errorf("%w: zoneinfo line %d: %s: protection %v: no lowmem_reserve_ratio gives it",
					ErrInvalid, z.protLine, z, z.protection)
			}
		}
		switch {
		case !constrained:
			s.LowmemReserveRatio[i] = def[i]
		case def[i] == 0 && zeroOK, def[i] > 0 && r.has(int64(def[i])):
			s.LowmemReserveRatio[i] = def[i]
		case zeroOK:
			s.LowmemReserveRatio[i] = 0
		default:
			s.LowmemReserveRatio[i] = int(r.lo)
		}
	}
	return nil
}

// inferHighFraction recovers percpu_pagelist_high_fraction from the pcp
// high_min and high_max the zones print: 0 (high_min from the low
// watermark, high_max from an eighth of managed) if that fits, else the
// smallest fraction giving every zone's high_min = high_max. What fits
// nothing stays 0, for the check to report.
func inferHighFraction(nodes [][]*procfsZone, cfg *Config) {
	const minFraction = 8 // MIN_PERCPU_PAGELIST_HIGH_FRACTION
	zeroOK := true
	r := procfsRange{minFraction, math.MaxInt32}
	for n, zs := range nodes {
		split := int64(len(cfg.Nodes[n].CPUs))
		if split == 0 {
			split = int64(cfg.CPUs)
		}
		for _, z := range zs {
			if len(z.pcp) == 0 || z.pcp[0].highMin < 0 || z.pcp[0].highMax < 0 {
				continue
			}
			pc := z.pcp[0]
			floor := pc.batch << 2
			m := z.val[pzManaged]
			if pc.highMin != max(z.unboosted(pzLow)/split, floor) || pc.highMax != max(m/minFraction/split, floor) {
				zeroOK = false
			}
			switch {
			case pc.highMin != pc.highMax || pc.highMin < floor:
				r = procfsRange{1, 0}
			case pc.highMin == floor:
				// m/(f*split) <= floor
				r.clamp(m/(split*(floor+1))+1, r.hi)
			default:
				// m/(f*split) == highMin
				r.clamp(m/(split*(pc.highMin+1))+1, m/(split*pc.highMin))
			}
		}
	}
	if !zeroOK && !r.empty() {
		cfg.Sysctl.PercpuPagelistHighFraction = int(r.lo)
	}
}

// verifyProcfs builds the zones cfg describes and checks that they print
// the watermarks, protection and (when the CPUs' nodes are known) pcp
// bounds of the text.
func verifyProcfs(nodes [][]*procfsZone, cfg Config, pcpTrusted bool) error {
	a, err := zone.New(cfg.zoneConfig(), zone.Options{})
	if err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	var buf bytes.Buffer
	if err := a.WriteZoneinfo(&buf); err != nil {
		return err
	}
	sim, err := parseZoneinfo(&buf)
	if err != nil {
		return fmt.Errorf("mmsim: ConfigFromProcfs cannot read back the simulated zoneinfo: %w", err)
	}
	s := cfg.Sysctl
	wm := fmt.Sprintf("min_free_kbytes %d and watermark_scale_factor %d", s.MinFreeKbytes, s.WatermarkScaleFactor)
	differ := func(line int, z *procfsZone, field string, real, got any, cause string) error {
		return fmt.Errorf("%w: zoneinfo line %d: %s: %s %v, but %s give %v", ErrInvalid, line, z, field, real, cause, got)
	}
	for n, zs := range nodes {
		for i, z := range zs {
			y := sim[n][i]
			for _, f := range []int{pzMin, pzLow, pzHigh, pzPromo} {
				if z.val[f] < 0 {
					continue
				}
				if want := z.unboosted(f); want != y.val[f] {
					cause := wm
					if f == pzMin && z.typ == gfp.ZoneMovable {
						cause = "ZONE_MOVABLE's clamp(managed/1024, 32, 128)"
					}
					return differ(z.at[f], z, pzNames[f], want, y.val[f], cause)
				}
			}
			if !slices.Equal(z.protection, y.protection) {
				return differ(z.protLine, z, "protection", z.protection, y.protection,
					fmt.Sprintf("lowmem_reserve_ratio %v", s.LowmemReserveRatio))
			}
			if !pcpTrusted || len(z.pcp) == 0 {
				continue
			}
			cause := fmt.Sprintf("%d CPUs and percpu_pagelist_high_fraction %d", cfg.CPUs, s.PercpuPagelistHighFraction)
			if len(y.pcp) != len(z.pcp) {
				return differ(z.line, z, "CPUs", len(z.pcp), len(y.pcp), "the simulated machine's pagesets")
			}
			for k, p := range z.pcp {
				q := y.pcp[k]
				for _, c := range []struct {
					name      string
					real, got int64
				}{{"batch", p.batch, q.batch}, {"high_min", p.highMin, q.highMin}, {"high_max", p.highMax, q.highMax}} {
					if c.real >= 0 && c.real != c.got {
						return differ(p.line, z, fmt.Sprintf("cpu %d %s", p.cpu, c.name), c.real, c.got, cause)
					}
				}
			}
		}
	}
	return nil
}
