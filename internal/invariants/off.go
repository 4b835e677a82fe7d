//go:build !invariants

package invariants

// Enabled is true when the build has the invariants tag: checks of the
// VM_BUG_ON class run.
const Enabled = false
