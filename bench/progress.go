package bench

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// PlainProgressEvery is how often ProgressPrinter writes a line when its
// output is not a terminal.
const PlainProgressEvery = 2 * time.Second

// ProgressPrinter returns a function for Options.Progress that writes the
// state of a run to w. On a terminal it rewrites one line in place with \r;
// otherwise (a log file, a pipe, CI) it writes a plain line every
// PlainProgressEvery. Either way the final state is written as a line of its
// own when the workload finishes.
func ProgressPrinter(w io.Writer, isTerminal bool) func(Progress) {
	var (
		mu        sync.Mutex
		lastPrint time.Duration
		prev      Progress
	)
	return func(p Progress) {
		mu.Lock()
		defer mu.Unlock()
		if p.Workload != prev.Workload || p.Elapsed < prev.Elapsed {
			prev, lastPrint = Progress{Workload: p.Workload}, 0
		}
		if !isTerminal && !p.Done && p.Elapsed-lastPrint < PlainProgressEvery {
			return
		}
		line := progressLine(p, prev)
		switch {
		case isTerminal && p.Done:
			fmt.Fprintf(w, "\r%s\x1b[K\n", line)
		case isTerminal:
			fmt.Fprintf(w, "\r%s\x1b[K", line)
		default:
			fmt.Fprintln(w, line)
		}
		lastPrint, prev = p.Elapsed, p
	}
}

// progressLine formats p; the current rate is measured since prev, and the
// average over the whole run once it is done.
func progressLine(p, prev Progress) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%-8s", p.Workload)
	if p.Target > 0 {
		fmt.Fprintf(&b, " %d/%d records (%5.1f%%)", p.Records, p.Target, 100*float64(p.Records)/float64(p.Target))
	} else {
		fmt.Fprintf(&b, " %d records", p.Records)
	}
	from, recs, bytes := prev.Elapsed, p.Records-prev.Records, p.Bytes-prev.Bytes
	if p.Done {
		from, recs, bytes = 0, p.Records, p.Bytes
	}
	if secs := (p.Elapsed - from).Seconds(); secs > 0 {
		fmt.Fprintf(&b, "  %.0f records/s  %.1f MB/s", float64(recs)/secs, float64(bytes)/MB/secs)
	}
	fmt.Fprintf(&b, "  %s", p.Elapsed.Round(100*time.Millisecond))
	if p.Total > 0 {
		fmt.Fprintf(&b, "/%s", p.Total)
	}
	if p.Done {
		b.WriteString("  done")
	}
	return b.String()
}
