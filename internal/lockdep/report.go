package lockdep

import (
	"fmt"
	"runtime"
	"strings"

	"github.com/mmsim/mmsim/internal/bug"
	"github.com/mmsim/mmsim/memalloc"
)

// kernelIdent is what print_kernel_ident prints: release, build, taint.
const kernelIdent = "7.2.0-mmsim #1 Not tainted"

// stackDepth is how many frames a trace keeps, outside this package.
const stackDepth = 8

// pkgPrefix is the function-name prefix of this package's frames, which
// the traces leave out (lockdep's own frames are noise to its reader).
var pkgPrefix = func() string {
	pc, _, _, _ := runtime.Caller(0)
	name := runtime.FuncForPC(pc).Name() // ".../internal/lockdep.init.func1" or similar
	if i := strings.LastIndex(name, "/"); i >= 0 {
		if j := strings.Index(name[i:], "."); j >= 0 {
			return name[:i+j+1]
		}
	}
	return "github.com/mmsim/mmsim/internal/lockdep."
}()

// stack captures the caller's Go stack, without this package's frames,
// when Options.Stacks is set.
//
// Kernel: kernel/locking/lockdep.c:save_trace().
func (c *Checker) stack() []uintptr {
	if !c.opts.Stacks {
		return nil
	}
	var pcs [64]uintptr
	n := runtime.Callers(2, pcs[:])
	frames := runtime.CallersFrames(pcs[:n])
	var out []uintptr
	for {
		f, more := frames.Next()
		if !strings.HasPrefix(f.Function, pkgPrefix) {
			if f.Function == "runtime.goexit" || f.Function == "testing.tRunner" {
				break
			}
			out = append(out, f.PC)
			if len(out) == stackDepth {
				break
			}
		}
		if !more {
			break
		}
	}
	return out
}

// callerPC returns the pc of the first frame outside this package: where
// a lock is taken or released (0 without Options.Stacks).
func (c *Checker) callerPC() uintptr {
	if !c.opts.Stacks {
		return 0
	}
	var pcs [16]uintptr
	n := runtime.Callers(2, pcs[:])
	frames := runtime.CallersFrames(pcs[:n])
	for {
		f, more := frames.Next()
		if !strings.HasPrefix(f.Function, pkgPrefix) {
			return f.PC
		}
		if !more {
			return 0
		}
	}
}

// symbol prints pc as %pS does: "function+0xoff", with the module path
// left out; "0x0" for no pc.
func symbol(pc uintptr) string {
	if pc == 0 {
		return "0x0"
	}
	f := runtime.FuncForPC(pc)
	if f == nil {
		return fmt.Sprintf("0x%x", pc)
	}
	name := f.Name()
	if i := strings.LastIndex(name, "/"); i >= 0 {
		name = name[i+1:]
	}
	return fmt.Sprintf("%s+0x%x", name, pc-f.Entry())
}

// writeTrace prints a trace as stack_trace_print does with 6 spaces of
// indent, adding file:line for the Go reader.
//
// Kernel: kernel/locking/lockdep.c:print_lock_trace().
func writeTrace(b *strings.Builder, trace []uintptr) {
	for _, pc := range trace {
		line := ""
		if f := runtime.FuncForPC(pc); f != nil {
			file, n := f.FileLine(pc)
			if i := strings.LastIndex(file, "/"); i >= 0 {
				file = file[i+1:]
			}
			line = fmt.Sprintf(" %s:%d", file, n)
		}
		fmt.Fprintf(b, "       %s%s\n", symbol(pc), line)
	}
}

// lockName prints a class as print_lock_name does: " (name){+.+.}-{w:w}".
// Every class is used with interrupts enabled in process context, never
// in an interrupt: "+.+." for the hardirq and softirq usage.
//
// Kernel: kernel/locking/lockdep.c:print_lock_name().
func lockName(k *Class) string {
	return fmt.Sprintf(" (%s){+.+.}-{%d:%d}", k.Name(), k.wait, k.wait)
}

// printLock prints a held lock as print_lock does.
//
// Kernel: kernel/locking/lockdep.c:print_lock().
func printLock(h heldLock) string {
	return fmt.Sprintf("%016x%s, at: %s\n", h.m.addr, lockName(h.m.class), symbol(h.ip))
}

// heldLocksLocked prints t's held locks as lockdep_print_held_locks does.
//
// Kernel: kernel/locking/lockdep.c:lockdep_print_held_locks().
func (c *Checker) heldLocksLocked(b *strings.Builder, t *memalloc.Task) {
	hs := c.held[t]
	switch len(hs) {
	case 0:
		fmt.Fprintf(b, "no locks held by %s.\n", taskName(t))
		return
	case 1:
		fmt.Fprintf(b, "1 lock held by %s:\n", taskName(t))
	default:
		fmt.Fprintf(b, "%d locks held by %s:\n", len(hs), taskName(t))
	}
	for i, h := range hs {
		fmt.Fprintf(b, " #%d: %s", i, printLock(h))
	}
}

// turnOffLocked is debug_locks_off: after a report lockdep stops, unless
// Options.KeepReporting.
//
// Kernel: lib/debug_locks.c:debug_locks_off().
func (c *Checker) turnOffLocked() {
	c.reports++
	if !c.opts.KeepReporting {
		c.off = true
	}
}

func (c *Checker) report(t *memalloc.Task, site, text string) bug.Report {
	return bug.Report{Kind: bug.Warn, Site: site, Text: text, Comm: t.Comm(), PID: t.PID(), Time: c.now()}
}

// writeHeader writes the opening both dependency reports share: the
// WARNING between rules as long as its line, the kernel's ident, the task
// and the two locks.
//
// Kernel: kernel/locking/lockdep.c:print_circular_bug_header(),
// print_deadlock_bug().
func writeHeader(b *strings.Builder, title string, t *memalloc.Task, prev, next heldLock) {
	warning := "WARNING: " + title
	b.WriteString(strings.Repeat("=", len(warning)) + "\n")
	b.WriteString(warning + "\n")
	b.WriteString(kernelIdent + "\n")
	b.WriteString(strings.Repeat("-", len(warning)) + "\n")
	fmt.Fprintf(b, "%s is trying to acquire lock:\n", taskName(t))
	b.WriteString(printLock(next))
	b.WriteString("\nbut task is already holding lock:\n")
	b.WriteString(printLock(prev))
}

// circularReportLocked prints the circular dependency that prev→next would
// close: path leads from next's class to prev's; trace is the current
// stack, printed for the new dependency (#0).
//
// Kernel: kernel/locking/lockdep.c:print_circular_bug(),
// print_circular_bug_header(), print_circular_bug_entry(),
// print_circular_lock_scenario().
func (c *Checker) circularReportLocked(t *memalloc.Task, prev, next heldLock, path []*dependency, trace []uintptr) bug.Report {
	c.turnOffLocked()
	var b strings.Builder
	writeHeader(&b, "possible circular locking dependency detected", t, prev, next)
	b.WriteString("\nwhich lock already depends on the new lock.\n\n")
	b.WriteString("\nthe existing dependency chain (in reverse order) is:\n")
	for i := len(path) - 1; i >= 0; i-- {
		fmt.Fprintf(&b, "\n-> #%d%s:\n", i+1, lockName(path[i].to))
		writeTrace(&b, path[i].trace)
	}
	fmt.Fprintf(&b, "\n-> #0%s:\n", lockName(next.m.class))
	writeTrace(&b, trace)
	b.WriteString("\nother info that might help us debug this:\n\n")
	source, target := next.m.class, prev.m.class
	parent := source // the class before target on the path
	if len(path) > 1 {
		parent = path[len(path)-2].to
	}
	if parent != source {
		fmt.Fprintf(&b, "Chain exists of:\n  %s --> %s --> %s\n\n", source.Name(), parent.Name(), target.Name())
	}
	b.WriteString(" Possible unsafe locking scenario:\n\n")
	b.WriteString("       CPU0                    CPU1\n")
	b.WriteString("       ----                    ----\n")
	fmt.Fprintf(&b, "  lock(%s);\n", target.Name())
	fmt.Fprintf(&b, "                               lock(%s);\n", parent.Name())
	fmt.Fprintf(&b, "                               lock(%s);\n", target.Name())
	fmt.Fprintf(&b, "  lock(%s);\n", source.Name())
	b.WriteString("\n *** DEADLOCK ***\n\n")
	c.heldLocksLocked(&b, t)
	b.WriteString("\nstack backtrace:\n")
	writeTrace(&b, trace)
	return c.report(t, "kernel/locking/lockdep.c:print_circular_bug", b.String())
}

// recursiveReportLocked prints t taking next while it holds prev, a lock
// of the same class.
//
// Kernel: kernel/locking/lockdep.c:print_deadlock_bug(),
// print_deadlock_scenario().
func (c *Checker) recursiveReportLocked(t *memalloc.Task, prev, next heldLock) bug.Report {
	c.turnOffLocked()
	var b strings.Builder
	writeHeader(&b, "possible recursive locking detected", t, prev, next)
	b.WriteString("\nother info that might help us debug this:\n")
	b.WriteString(" Possible unsafe locking scenario:\n\n")
	b.WriteString("       CPU0\n")
	b.WriteString("       ----\n")
	fmt.Fprintf(&b, "  lock(%s);\n", prev.m.class.Name())
	fmt.Fprintf(&b, "  lock(%s);\n", next.m.class.Name())
	b.WriteString("\n *** DEADLOCK ***\n\n")
	b.WriteString(" May be due to missing lock nesting notation\n\n")
	c.heldLocksLocked(&b, t)
	b.WriteString("\nstack backtrace:\n")
	writeTrace(&b, c.stack())
	return c.report(t, "kernel/locking/lockdep.c:print_deadlock_bug", b.String())
}

// unlockImbalanceReportLocked prints t releasing m, which it does not
// hold.
//
// Kernel: kernel/locking/lockdep.c:print_unlock_imbalance_bug().
func (c *Checker) unlockImbalanceReportLocked(t *memalloc.Task, m *lockMap, ip uintptr) bug.Report {
	c.turnOffLocked()
	var b strings.Builder
	b.WriteString("=====================================\n")
	b.WriteString("WARNING: bad unlock balance detected!\n")
	b.WriteString(kernelIdent + "\n")
	b.WriteString("-------------------------------------\n")
	fmt.Fprintf(&b, "%s is trying to release lock (%s) at:\n", taskName(t), m.class.name)
	b.WriteString(symbol(ip) + "\n")
	b.WriteString("but there are no more locks to release!\n")
	b.WriteString("\nother info that might help us debug this:\n")
	c.heldLocksLocked(&b, t)
	b.WriteString("\nstack backtrace:\n")
	writeTrace(&b, c.stack())
	return c.report(t, "kernel/locking/lockdep.c:print_unlock_imbalance_bug", b.String())
}
