package main

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mmsim/mmsim/internal/testutil"
)

// TestOutput compares the program's output with its golden file (make
// golden rewrites it; review the diff).
func TestOutput(t *testing.T) {
	var out bytes.Buffer
	require.NoError(t, run(&out))
	testutil.Golden(t, "output", out.Bytes())
}
