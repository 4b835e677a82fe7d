package gfp

import "strconv"

// String returns the mask as the kernel's tracepoints print it
// (show_gfp_flags, as in `perf script` output of kmem:mm_page_alloc): the
// name table walked greedily in order, "|"-joined, every leftover bit as one
// lowercase hex token at the end, and "none" for 0.
//
// Leftover bits (0x200 and bits at or above BitsShift) can only come from a
// corrupt or invalid mask. They print as one hex token, as `perf script`
// (libtraceevent) and printk's %pGg print them. The in-kernel ftrace output
// differs on that edge: __print_flags passes the table with its {0, NULL}
// sentinel included, which trace_print_flags_seq would reach with bits left.
//
// Kernel: include/trace/events/mmflags.h:show_gfp_flags(),
// kernel/trace/trace_output.c:trace_print_flags_seq().
func (m Mask) String() string {
	if m == 0 {
		return "none"
	}
	var buf [128]byte // the masks real traces print fit; longer ones grow
	return string(m.appendNames(buf[:0]))
}

// Names returns the mask as printk's %pGg prints it: the same greedy walk as
// String, but the empty string for 0 (so warn_alloc shows "mode:0x0()").
//
// Kernel: lib/vsprintf.c:flags_string() ('g'), mm/debug.c:format_flags().
func (m Mask) Names() string {
	return string(m.appendNames(nil))
}

// Mode returns the mask as warn_alloc and the OOM report embed it,
// "%#x(%pGg)": "0xcc0(GFP_KERNEL)" for GFP_KERNEL, "0x0()" for 0. The kernel's
// %#x prints "0x0" for zero, unlike C's printf.
//
// Kernel: mm/page_alloc.c:warn_alloc() ("mode:%#x(%pGg)").
func (m Mask) Mode() string {
	var buf [128]byte
	b := append(buf[:0], "0x"...)
	b = strconv.AppendUint(b, uint64(m), 16)
	b = append(b, '(')
	b = m.appendNames(b)
	return string(append(b, ')'))
}

// appendNames appends the greedy table walk of m to b. It appends nothing for 0.
//
// Kernel: mm/debug.c:format_flags(), kernel/trace/trace_output.c:trace_print_flags_seq().
func (m Mask) appendNames(b []byte) []byte {
	rest := m
	first := true
	for i := 0; i < len(names) && rest != 0; i++ {
		n := &names[i]
		if rest&n.mask != n.mask {
			continue
		}
		if !first {
			b = append(b, '|')
		}
		b = append(b, n.name...)
		first = false
		rest &^= n.mask
	}
	if rest != 0 {
		if !first {
			b = append(b, '|')
		}
		b = append(b, "0x"...)
		b = strconv.AppendUint(b, uint64(rest), 16)
	}
	return b
}
