//go:build invariants

package memalloc

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestOwnerCheck shows the invariants build catching a task used by two
// goroutines at once: a second caller inside an owner-only method panics.
// (The test plays the first goroutine by entering by hand.)
func TestOwnerCheck(t *testing.T) {
	tk := NewTask("shared")
	tk.enter()
	require.PanicsWithValue(t,
		"memalloc: task shared[0] used by two goroutines at once: a Task belongs to one goroutine at a time",
		func() { tk.SaveNoFS() })
	tk.exit() // the first goroutine leaves; the panic left the count as it was
	require.NotPanics(t, func() { tk.Restore(tk.SaveNoFS()) })
}
