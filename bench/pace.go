package bench

import (
	"context"
	"time"
)

// maxSleepChunk bounds a single sleep so that a cancelled context is noticed
// at low send rates.
const maxSleepChunk = 50 * time.Millisecond

// sleepUntil blocks until t or until ctx ends. The runtime's timers wake
// goroutines with up to a millisecond of delay when the process is idle (the
// network poller waits in whole milliseconds), which at 5,000 records/s is
// five send intervals: the schedule would turn into bursts and every
// measured latency would carry the pacer's own lateness. So the pacer sleeps
// with a precise, platform-specific timer where one exists (see pacer).
func (p *pacer) sleepUntil(ctx context.Context, t time.Time) error {
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		wait := time.Until(t)
		if wait <= 0 {
			return nil
		}
		p.sleep(min(wait, maxSleepChunk))
	}
}
