package testutil

import (
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// update is set by `go test -update` (make golden): golden files are
// rewritten from what the test produced instead of compared with it. Review
// the diff before committing.
var update = flag.Bool("update", false, "rewrite golden files under testdata/golden with the output the tests produce")

// Golden compares got with the file testdata/golden/<name>.golden, or writes
// that file when the test runs with -update.
func Golden(t testing.TB, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", "golden", name+".golden")
	if *update {
		require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
		require.NoError(t, os.WriteFile(path, got, 0o644))
		return
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "no golden file: run `make golden` and review the diff")
	require.Equal(t, string(want), string(got), "output differs from %s (run `make golden` to accept it)", path)
}
