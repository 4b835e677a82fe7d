// Package invariants tells whether the simulator's own consistency checks are
// compiled in: they are under the `invariants` build tag (make test sets it),
// as pebble's internal/invariants does, and cost nothing otherwise.
package invariants
