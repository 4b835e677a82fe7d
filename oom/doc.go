// Package oom will hold the OOM killer: oom_badness and /proc/PID/oom_score,
// victim selection, the kill, the OOM reaper and the OOM report, implementing
// the interface package zone defines.
//
// Nothing is implemented yet: this package is filled in by the slow-path and
// OOM issue.
//
// Kernel: mm/oom_kill.c, fs/proc/base.c.
package oom
