package testutil

import (
	"regexp"
	"strings"
)

// zoneinfoLayoutLine matches the /proc/zoneinfo lines that describe the
// machine's layout rather than its activity: zone headers, watermarks,
// sizes, protection, pcp batch and high bounds, stat thresholds,
// start_pfn.
var zoneinfoLayoutLine = regexp.MustCompile(`^(Node \d+, zone|\s+(min|low|high|promo|spanned|present|managed|cma|protection:|batch:|high_min:|high_max:)\s|\s+vm stats threshold|\s+start_pfn)`)

// ZoneinfoLayout returns the layout lines of a /proc/zoneinfo text, in
// order: what a machine built from the same description must reprint
// exactly.
func ZoneinfoLayout(zoneinfo string) []string {
	var out []string
	for _, l := range strings.Split(zoneinfo, "\n") {
		if IsZoneinfoLayoutLine(l) {
			out = append(out, l)
		}
	}
	return out
}

// IsZoneinfoLayoutLine reports whether a /proc/zoneinfo line is one of the
// layout lines ZoneinfoLayout keeps.
func IsZoneinfoLayoutLine(l string) bool { return zoneinfoLayoutLine.MatchString(l) }
