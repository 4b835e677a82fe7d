package zone

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mmsim/mmsim/gfp"
	"github.com/mmsim/mmsim/memalloc"
)

// recordingHooks records the hook calls and fails every failEvery-th request.
type recordingHooks struct {
	might, fail, post, free int
	failEvery               int
	masks                   []gfp.Mask
}

func (h *recordingHooks) MightAlloc(_ *memalloc.Task, m gfp.Mask) {
	h.might++
	h.masks = append(h.masks, m)
}
func (h *recordingHooks) ShouldFailAlloc(*memalloc.Task, gfp.Mask, Order) bool {
	h.fail++
	return h.failEvery > 0 && h.fail%h.failEvery == 0
}
func (h *recordingHooks) PostAlloc(*memalloc.Task, Page, Order, gfp.Mask) { h.post++ }
func (h *recordingHooks) FreePrepare(*memalloc.Task, Page, Order)         { h.free++ }

// TestHooks checks the one hook interface: might_alloc sees the mask after
// the task's scope, should_fail_alloc_page fails a request outright (no
// slow path, no mm_page_alloc), post_alloc_hook and free_pages_prepare run
// on every page handed out and freed.
//
// Reference: mm/page_alloc.c:prepare_alloc_pages(), post_alloc_hook(),
// free_pages_prepare().
func TestHooks(t *testing.T) {
	h := &recordingHooks{failEvery: 3}
	a, err := New(smallMachine(), Options{Hooks: h})
	require.NoError(t, err)
	var events []Event
	a.Subscribe(func(e Event) { events = append(events, e) })
	tk := memalloc.NewTask("t")
	defer tk.Restore(tk.SaveNoFS())
	var got []Page
	for range 6 {
		p, err := a.AllocPages(tk, gfp.Kernel, 0)
		if err != nil {
			require.ErrorIs(t, err, ErrNoMemory)
			require.ErrorContains(t, err, "fault injection")
			continue
		}
		got = append(got, p)
	}
	require.Len(t, got, 4, "every third request fails")
	require.Equal(t, 6, h.might)
	require.Equal(t, gfp.NoFS, h.masks[0], "the hooks see the mask after the NOFS scope")
	require.Equal(t, 4, h.post)
	allocs := 0
	for _, e := range events {
		if e.Kind == EvPageAlloc {
			allocs++
		}
	}
	require.Equal(t, 4, allocs, "a fault-injected failure fires no mm_page_alloc")
	for _, p := range got {
		require.NoError(t, a.FreePages(tk, p, 0))
	}
	require.Equal(t, 4, h.free)
	require.NoError(t, a.CheckInvariants())
}
