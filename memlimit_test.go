package mmsim_test

import (
	"bytes"
	"errors"
	"regexp"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mmsim/mmsim"
	"github.com/mmsim/mmsim/gfp"
)

// TestMemLimit boots DefaultConfig with mem=4G: DMA whole, DMA32 whole
// (its present pages end below 4 GiB), Normal cut to what is left, and
// the watermarks recomputed for the smaller machine.
func TestMemLimit(t *testing.T) {
	cfg := mmsim.DefaultConfig()
	half, err := cfg.MemLimit(4 << 30)
	require.NoError(t, err)
	zs := half.Nodes[0].Zones
	require.Len(t, zs, 3)
	require.Equal(t, cfg.Nodes[0].Zones[0], zs[0])
	require.Equal(t, cfg.Nodes[0].Zones[1], zs[1])
	left := int64(1<<20) - zs[0].Present - zs[1].Present
	require.Equal(t, gfp.ZoneNormal, zs[2].Type)
	require.Equal(t, left, zs[2].Present)
	require.Equal(t, left-(cfg.Nodes[0].Zones[2].Present-cfg.Nodes[0].Zones[2].Managed), zs[2].Managed)
	require.Equal(t, cfg.Nodes[0].Zones, mmsim.DefaultConfig().Nodes[0].Zones, "the original is unchanged")

	s := newSystem(t, half)
	var zi bytes.Buffer
	require.NoError(t, s.WriteZoneinfo(&zi))
	require.Regexp(t, regexp.MustCompile(`zone   Normal\n(?:.*\n)*?\s+present  `+itoa(left)+`\n`), zi.String())

	small, err := cfg.MemLimit(8 << 20)
	require.NoError(t, err)
	require.Len(t, small.Nodes[0].Zones, 1)
	_, err = mmsim.New(small)
	require.NoError(t, err)

	_, err = cfg.MemLimit(100)
	require.True(t, errors.Is(err, mmsim.ErrInvalid))
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
