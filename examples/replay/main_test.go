package main

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mmsim/mmsim/internal/testutil"
)

// TestOutput compares the program's output with its golden file (make
// golden rewrites it; review the diff), and checks that the SVG pictures
// it writes are well-formed XML.
func TestOutput(t *testing.T) {
	dir := t.TempDir()
	var out bytes.Buffer
	require.NoError(t, run(&out, dir))
	testutil.Golden(t, "output", out.Bytes())
	files, err := filepath.Glob(filepath.Join(dir, "*.svg"))
	require.NoError(t, err)
	require.Len(t, files, 8)
	for _, f := range files {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		d := xml.NewDecoder(bytes.NewReader(b))
		for {
			_, err := d.Token()
			if errors.Is(err, io.EOF) {
				break
			}
			require.NoError(t, err, f)
		}
	}
}
