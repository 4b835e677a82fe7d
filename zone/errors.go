package zone

import (
	"errors"
	"fmt"

	"github.com/mmsim/mmsim/gfp"
	"github.com/mmsim/mmsim/internal/bug"
)

// Sentinels of the page allocator. The root package re-exports them.
var (
	// ErrNoMemory is wrapped by the error of an allocation that failed:
	// the kernel returned NULL.
	ErrNoMemory = errors.New("zone: out of memory")
	// ErrInvalid is wrapped by the error of a request the kernel refuses as
	// invalid, such as an order above MAX_PAGE_ORDER (with a WARN).
	ErrInvalid = errors.New("zone: invalid request")
	// ErrBug is the simulator-wide BUG sentinel (internal/bug.ErrBug): a
	// request the kernel would answer with BUG(), such as a double free.
	ErrBug = bug.ErrBug
)

// AllocError is the error of a failed allocation. Its text is warn_alloc's,
// from "page allocation failure" to the nodemask.
//
// Kernel: mm/page_alloc.c:warn_alloc().
type AllocError struct {
	Order  Order
	Mask   gfp.Mask // the mask after the task's scope (what warn_alloc prints)
	Reason string   // why the allocator gave up, in the allocator's terms
}

func (e *AllocError) Error() string {
	s := fmt.Sprintf("page allocation failure: order:%d, mode:%s, nodemask=(null)", e.Order, e.Mask.Mode())
	if e.Reason != "" {
		s += " (" + e.Reason + ")"
	}
	return s
}

// Unwrap returns ErrNoMemory.
func (e *AllocError) Unwrap() error { return ErrNoMemory }

// bugError returns an error wrapping ErrBug that says what the kernel would
// have hit.
func bugError(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrBug}, args...)...)
}

// invalidError returns an error wrapping ErrInvalid.
func invalidError(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalid}, args...)...)
}
