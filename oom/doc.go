// Package oom is the OOM killer: oom_badness and /proc/PID/oom_score,
// out_of_memory's decision list, victim selection with the kernel's tie
// rule, the kill, the OOM reaper, and the OOM report in the kernel's words.
// It implements zone.OOMKiller for the global OOM; memory cgroups come with
// their own issue.
//
// Deliberate differences: the report has no "CPU:" line and no stack (a
// simulator has no kernel stack to print); the oom-kill line's cgroup
// fields are the root's ("/"), as on a machine whose tasks all sit in the
// root cgroup; a simulated panic (panic_on_oom, or no killable task) is
// reported and the request fails, where the kernel would stop.
//
// Kernel: mm/oom_kill.c, fs/proc/base.c.
package oom
