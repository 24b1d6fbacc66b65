//go:build !linux

package bench

import "time"

// pacer sleeps with the runtime's timers, which may wake up to about a
// millisecond late on an idle process.
type pacer struct{}

func newPacer() *pacer { return &pacer{} }

func (p *pacer) sleep(d time.Duration) { time.Sleep(d) }

func (p *pacer) close() {}
