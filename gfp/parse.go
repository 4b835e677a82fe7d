package gfp

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Errors Parse returns, wrapped with the offending token.
var (
	// ErrUnknownFlag means a token names no GFP flag of the modelled kernel.
	ErrUnknownFlag = errors.New("gfp: unknown flag")
	// ErrSyntax means the text is not a "|"-joined list of flag names and
	// hex numbers: an empty token, a malformed or oversized number, or
	// "none" mixed with flags.
	ErrSyntax = errors.New("gfp: invalid mask syntax")
)

// Parse reads a mask in any form the kernel prints or its source writes: what
// String prints (so Parse(m.String()) == m for every m), any "|"-joined mix of
// composite and single-bit names ("GFP_KERNEL|__GFP_ZERO", "__GFP_IO|__GFP_FS",
// "__GFP_RECLAIM"), hex tokens ("0x200", "GFP_KERNEL|0x4000000"), and "none"
// for 0. Blanks around a token are ignored, so "GFP_NOFS | __GFP_NOFAIL" parses
// too. An unknown name, an empty token or a bad number is an error that names
// the token.
//
// Kernel: the inverse of include/trace/events/mmflags.h:show_gfp_flags().
func Parse(s string) (Mask, error) {
	m, _, err := parse(s, false)
	return m, err
}

// ParseKnown is Parse for text another kernel printed: a flag name the
// modelled kernel lacks (a "__GFP_" or "GFP_" name added or renamed
// since, or one this configuration compiles to 0, such as
// __GFP_SKIP_KASAN) does not fail the parse but is returned in unknown,
// in the order met, and the mask holds the bits of the tokens it knows.
// A token not shaped like a flag name, or a syntax error, is an error.
//
// Kernel: the inverse of include/trace/events/mmflags.h:show_gfp_flags().
func ParseKnown(s string) (m Mask, unknown []string, err error) {
	return parse(s, true)
}

// parse is Parse, collecting unknown names in unknown when lenient.
func parse(s string, lenient bool) (Mask, []string, error) {
	if strings.TrimSpace(s) == "none" {
		return 0, nil, nil
	}
	var (
		m       Mask
		unknown []string
	)
	for rest := s; ; {
		tok, tail, more := strings.Cut(rest, "|")
		tok = strings.TrimSpace(tok)
		v, err := parseToken(tok)
		switch {
		case lenient && errors.Is(err, ErrUnknownFlag) && (strings.HasPrefix(tok, "__GFP_") || strings.HasPrefix(tok, "GFP_")):
			unknown = append(unknown, tok)
		case err != nil:
			return 0, nil, fmt.Errorf("parsing gfp mask %q: %w", s, err)
		}
		m |= v
		if !more {
			return m, unknown, nil
		}
		rest = tail
	}
}

// parseToken returns the value of one name or hex number.
func parseToken(tok string) (Mask, error) {
	if v, ok := byName[tok]; ok {
		return v, nil
	}
	switch {
	case tok == "":
		return 0, fmt.Errorf("%w: empty token", ErrSyntax)
	case tok == "none":
		return 0, fmt.Errorf(`%w: "none" stands for 0 and cannot be combined with flags`, ErrSyntax)
	case strings.HasPrefix(tok, "0x") || strings.HasPrefix(tok, "0X"):
		v, err := strconv.ParseUint(tok[2:], 16, 32)
		if err != nil {
			return 0, fmt.Errorf("%w: %q is not a 32-bit hex number", ErrSyntax, tok)
		}
		return Mask(v), nil
	}
	if why, ok := unconfigured[tok]; ok {
		return 0, fmt.Errorf("%w: %s exists only with %s", ErrUnknownFlag, tok, why)
	}
	return 0, fmt.Errorf("%w: %q", ErrUnknownFlag, tok)
}
