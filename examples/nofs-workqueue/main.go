// This program runs the deadlock of the PF_MEMALLOC_NOFS hand-off debate
// (seed 002): a filesystem operation in a NOFS scope holds an inode lock,
// queues work and waits for it (flush_work). The worker is a task of its
// own: the submitter's scope does not travel with the work, so the work's
// GFP_KERNEL allocation may enter filesystem reclaim, where the
// filesystem's shrinker needs the inode lock the submitter holds. Each
// waits for the other.
//
// lockdep sees it the first time the lock order appears — the inode lock
// before the work (flush_work under the lock), the work before fs_reclaim
// (a GFP_KERNEL allocation in the work), fs_reclaim before the inode lock
// (the shrinker) — and the actual wait is reported as a deadlock instead
// of hanging. Then the two fixes: the work carries the submitter's scope
// (the opt-in the kernel does not have: there, the work opens its own
// memalloc_nofs_save()), or the work goes to its own workqueue and is
// flushed after the lock is dropped.
package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"strings"

	"github.com/mmsim/mmsim"
	"github.com/mmsim/mmsim/gfp"
	"github.com/mmsim/mmsim/memalloc"
)

func main() {
	if err := run(os.Stdout); err != nil {
		log.Fatalf("nofs-workqueue: %v", err)
	}
}

// inodeShrinker is the filesystem's inode cache shrinker: it needs the
// inode lock to evict, and, as super_cache_scan does, stops at once for a
// reclaim without __GFP_FS.
//
// Kernel: fs/super.c:super_cache_scan().
type inodeShrinker struct {
	ilock *mmsim.Lock
	err   error // the first failed lock (a deadlock)
}

func (sh *inodeShrinker) Count(*mmsim.ShrinkControl) uint64 { return 4096 }
func (sh *inodeShrinker) Seeks() int                        { return 2 }

func (sh *inodeShrinker) Scan(sc *mmsim.ShrinkControl) uint64 {
	if sc.GFPMask&gfp.FS == 0 || sh.err != nil {
		// No fs reclaim without __GFP_FS; and after a deadlock the
		// task would never come back: it stops here.
		return mmsim.ShrinkStop
	}
	if err := sh.ilock.Lock(sc.Task); err != nil {
		if sh.err == nil {
			sh.err = err
		}
		return mmsim.ShrinkStop
	}
	// The inodes are all in use: nothing to evict, but the lock was
	// taken in reclaim.
	_ = sh.ilock.Unlock(sc.Task)
	return 0
}

type variant struct {
	name     string
	carry    bool // queue with CarryScope
	separate bool // own workqueue, flushed after the lock is dropped
}

func run(w io.Writer) error {
	bw := bufio.NewWriter(w)
	defer bw.Flush()
	fmt.Fprintln(bw, "xfs_fsop (NOFS scope) holds the inode lock, queues work and flushes it;")
	fmt.Fprintln(bw, "the work allocates with GFP_KERNEL|__GFP_NORETRY on a machine at its min watermark;")
	fmt.Fprintln(bw, "the inode shrinker takes the inode lock in reclaim. lockdep is on.")
	for _, v := range []variant{
		{name: "the scope does not travel to the worker (the kernel's behaviour)"},
		{name: "fix 1: the work carries the submitter's NOFS scope", carry: true},
		{name: "fix 2: its own workqueue, flushed after unlocking", separate: true},
	} {
		fmt.Fprintf(bw, "\n=== %s\n", v.name)
		if err := runOne(bw, v); err != nil {
			return fmt.Errorf("%s: %w", v.name, err)
		}
	}
	return nil
}

func runOne(w io.Writer, v variant) error {
	cfg := mmsim.SmallConfig(8192, 8192)
	cfg.Lockdep = true
	s, err := mmsim.New(cfg)
	if err != nil {
		return err
	}
	defer s.Close()

	sh := &inodeShrinker{ilock: s.NewLock("&xfs_nondir_ilock_class")}
	s.RegisterShrinker(sh)
	// Fill memory: the hog's last allocations reclaim, and lockdep learns
	// fs_reclaim --> inode lock from the shrinker.
	hog := s.NewTask("hog")
	for {
		if _, err := s.AllocPages(hog, gfp.Kernel|gfp.NoRetry|gfp.NoWarn, 0); err != nil {
			break
		}
	}

	events := s.NewWorkqueue("events", 0)
	inodegc := s.NewWorkqueue("xfs-inodegc", mmsim.WQUnbound|mmsim.WQMemReclaim)
	var worker *memalloc.Task
	var allocErr error
	work := mmsim.NewWork("(work_completion)(&ip->i_ioend_work)", func(t *memalloc.Task) error {
		worker = t
		_, allocErr = s.AllocPages(t, gfp.Kernel|gfp.NoRetry|gfp.NoWarn, 0)
		return sh.err
	})

	fsop := s.NewTask("xfs_fsop")
	cookie := fsop.SaveNoFS()
	if err := sh.ilock.Lock(fsop); err != nil {
		return err
	}
	var opts []mmsim.QueueOption
	if v.carry {
		opts = append(opts, mmsim.CarryScope())
	}
	var flushErr error
	if v.separate {
		inodegc.Queue(fsop, work, opts...)
		if err := sh.ilock.Unlock(fsop); err != nil {
			return err
		}
		flushErr = inodegc.Flush(fsop)
	} else {
		events.Queue(fsop, work, opts...)
		flushErr = events.FlushWork(fsop, work)
		if err := sh.ilock.Unlock(fsop); err != nil {
			return err
		}
	}
	fsop.Restore(cookie)

	fmt.Fprintf(w, "the work ran on %s (flags %s)\n", worker.Comm(), worker.Flags())
	for _, r := range s.Reports() {
		switch {
		case r.Kind == mmsim.ReportWarn && strings.Contains(r.Text, "circular locking"):
			fmt.Fprintln(w, "lockdep:")
			printLockdep(w, r.Text)
		case r.Kind == mmsim.ReportBug:
			fmt.Fprintf(w, "BUG (%s): %s\n", r.Site, r.Text)
		}
	}
	switch {
	case flushErr == nil:
		fmt.Fprintln(w, "flush: done, no report; the work's allocation:", outcome(allocErr))
	case errors.Is(flushErr, mmsim.ErrDeadlock):
		fmt.Fprintln(w, "flush: ErrDeadlock; the work's allocation:", outcome(allocErr))
	default:
		return flushErr
	}
	return nil
}

// printLockdep prints the lines of lockdep's report that do not depend on
// the Go call stacks: the header, the two locks, the chain, the scenario.
func printLockdep(w io.Writer, text string) {
	keep, lockLine := false, false
	for _, line := range strings.Split(text, "\n") {
		if lockLine {
			// "<address> (name){usage}-{wait}, at: <symbol>": the
			// lock, without the address and the Go symbol.
			if i := strings.IndexByte(line, '('); i >= 0 {
				line = line[i:]
			}
			line, _, _ = strings.Cut(line, ", at:")
			fmt.Fprintln(w, "   "+line)
			lockLine = false
			continue
		}
		switch {
		case strings.HasPrefix(line, "WARNING:"),
			strings.HasSuffix(line, "is trying to acquire lock:"),
			strings.HasPrefix(line, "but task is already holding lock:"),
			strings.HasPrefix(line, "which lock already depends"):
			fmt.Fprintln(w, "  "+line)
			lockLine = !strings.HasPrefix(line, "which") && !strings.HasPrefix(line, "WARNING")
		case strings.HasPrefix(line, "Chain exists of:"), strings.HasPrefix(line, " Possible unsafe"):
			keep = true
		case strings.HasPrefix(line, " *** DEADLOCK ***"):
			fmt.Fprintln(w, "  "+line)
			keep = false
		}
		if keep && strings.TrimSpace(line) != "" {
			fmt.Fprintln(w, "  "+line)
		}
	}
}

func outcome(err error) string {
	if err == nil {
		return "got its page"
	}
	if errors.Is(err, mmsim.ErrNoMemory) {
		return "failed (ErrNoMemory)"
	}
	return err.Error()
}
