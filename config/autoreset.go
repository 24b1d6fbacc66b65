package config

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Kinds returned by ParseShareAutoOffsetReset.
const (
	ResetLatest     = "latest"
	ResetEarliest   = "earliest"
	ResetByDuration = "by_duration"
)

// ParseShareAutoOffsetReset parses share.auto.offset.reset: "latest",
// "earliest" or "by_duration:<ISO-8601 duration>" (PnDTnHnMn.nS, as Java's
// Duration.parse reads it; negative durations are refused, as Kafka does),
// case-insensitively. d is only set for by_duration; a share partition then
// starts at the first offset whose timestamp is at or after now-d (latest if
// there is none).
func ParseShareAutoOffsetReset(v string) (kind string, d time.Duration, err error) {
	s := strings.TrimSpace(v)
	switch strings.ToLower(s) {
	case ResetLatest:
		return ResetLatest, 0, nil
	case ResetEarliest:
		return ResetEarliest, 0, nil
	}
	const prefix = ResetByDuration + ":"
	if len(s) < len(prefix) || !strings.EqualFold(s[:len(prefix)], prefix) {
		return "", 0, fmt.Errorf("share.auto.offset.reset %q: want latest, earliest or by_duration:<ISO-8601 duration>", v)
	}
	d, err = parseISODuration(strings.TrimSpace(s[len(prefix):]))
	if err != nil {
		return "", 0, fmt.Errorf("share.auto.offset.reset %q: %w", v, err)
	}
	return ResetByDuration, d, nil
}

// parseISODuration reads [+]P[nD][T[nH][nM][n[.f]S]] (case-insensitive), at
// least one component, no negative values.
func parseISODuration(s string) (time.Duration, error) {
	bad := func(why string) (time.Duration, error) {
		return 0, fmt.Errorf("invalid ISO-8601 duration %q: %s", s, why)
	}
	u := strings.ToUpper(s)
	u = strings.TrimPrefix(u, "+")
	if strings.Contains(u, "-") {
		return bad("negative durations are not allowed")
	}
	if !strings.HasPrefix(u, "P") {
		return bad("must start with P")
	}
	u = u[1:]
	datePart, timePart, hasT := strings.Cut(u, "T")
	if hasT && timePart == "" {
		return bad("T without a time component")
	}
	if datePart == "" && !hasT {
		return bad("no component")
	}
	var total float64 // seconds
	parts := 0
	// each part is a sequence of <number><unit> with units in strictly
	// increasing order of position in allowed.
	parse := func(part, allowed string, unit map[byte]float64) error {
		pos := 0
		for part != "" {
			i := 0
			for i < len(part) && (part[i] >= '0' && part[i] <= '9' || part[i] == '.' || part[i] == ',') {
				i++
			}
			if i == 0 || i == len(part) {
				return fmt.Errorf("expected <number><unit> at %q", part)
			}
			num, u := strings.ReplaceAll(part[:i], ",", "."), part[i]
			idx := strings.IndexByte(allowed[pos:], u)
			if idx < 0 {
				return fmt.Errorf("unexpected unit %q", string(u))
			}
			pos += idx + 1
			if strings.Contains(num, ".") && u != 'S' {
				return fmt.Errorf("fraction only allowed in seconds")
			}
			f, err := strconv.ParseFloat(num, 64)
			if err != nil {
				return err
			}
			total += f * unit[u]
			parts++
			part = part[i+1:]
		}
		return nil
	}
	if err := parse(datePart, "D", map[byte]float64{'D': 86400}); err != nil {
		return bad(err.Error())
	}
	if err := parse(timePart, "HMS", map[byte]float64{'H': 3600, 'M': 60, 'S': 1}); err != nil {
		return bad(err.Error())
	}
	if parts == 0 {
		return bad("no component")
	}
	if total*1e9 > math.MaxInt64 {
		return bad("too long")
	}
	return time.Duration(math.Round(total * 1e9)), nil
}
