package broker

import (
	"testing"
	"time"
)

// TestLogLimiterBoundsCloseLines: a burst of closed connections writes at
// most closeLogBurst lines per window, and the next line written reports
// how many were dropped.
func TestLogLimiterBoundsCloseLines(t *testing.T) {
	var l logLimiter
	start := time.Unix(1000, 0)
	written := 0
	for i := 0; i < 1000; i++ {
		if _, ok := l.allow(start.Add(time.Duration(i) * time.Millisecond)); ok {
			written++
		}
	}
	if written != closeLogBurst {
		t.Fatalf("%d lines written in one window, want %d", written, closeLogBurst)
	}
	suppressed, ok := l.allow(start.Add(closeLogWindow))
	if !ok || suppressed != 1000-closeLogBurst {
		t.Fatalf("next window: ok=%v suppressed=%d, want true %d", ok, suppressed, 1000-closeLogBurst)
	}
}
