// Package bug holds what every layer of the simulator above gfp shares for
// simulated kernel BUGs: the ErrBug sentinel that errors of the BUG class wrap
// (scope misuse now; double free, a bad zone combination refused by the
// allocator, once the zone layer exists), so that one errors.Is test finds
// them whichever layer reported them. The root package is to re-export it.
// gfp stays a leaf: its ErrBadZone is a plain value error, which the
// allocator will wrap together with ErrBug when it refuses a request.
//
// A simulated BUG is the caller's mistake and leaves the simulated machine as
// it was; a broken invariant of mmsim itself is not a simulated BUG but a
// panic (see internal/invariants).
package bug

import "errors"

// ErrBug is wrapped by every error that reports what the kernel would answer
// with BUG() or VM_BUG_ON(): misuse the simulator detects and refuses, or, for
// scope misuse, records while keeping the kernel's arithmetic.
var ErrBug = errors.New("mmsim: kernel BUG")
