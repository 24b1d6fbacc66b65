// Package commalist reads the comma-separated values of list settings and
// flags (log.dirs, ssl.cipher.suites, a bootstrap server list).
package commalist

import "strings"

// Split returns the items of s, each trimmed of white space, leaving out
// the empty ones: "a, b,,c " is [a b c], and "" or " , " is nil.
func Split(s string) []string {
	var out []string
	for _, e := range strings.Split(s, ",") {
		if e = strings.TrimSpace(e); e != "" {
			out = append(out, e)
		}
	}
	return out
}
