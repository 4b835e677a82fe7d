// Package testutil holds what the project's tests share: golden files with an
// -update flag (as go/printer's tests have), and a reader for the real
// `perf script` captures kept under testdata/.
//
// It is imported by tests only, never by library code.
package testutil
