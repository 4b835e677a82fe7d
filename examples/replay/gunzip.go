package main

import (
	"bytes"
	"compress/gzip"
	"io"
)

// gunzip decompresses an embedded capture.
func gunzip(b []byte) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	defer zr.Close()
	return io.ReadAll(zr)
}
