// Package testclock is a clock tests move by hand, for the code that takes
// its time from an injected Now (session and lock deadlines, throttles,
// broker liveness). One type serves every package's tests, so a test reads
// the same whichever runtime it drives.
package testclock

import (
	"sync/atomic"
	"time"
)

// Clock reads a time that moves only when Advance moves it. It is safe for
// concurrent use: the code under test reads it from its own goroutines.
// The zero Clock reads the Unix epoch.
type Clock struct{ ns atomic.Int64 }

// New returns a clock reading start.
func New(start time.Time) *Clock {
	c := &Clock{}
	c.ns.Store(start.UnixNano())
	return c
}

// Now is the clock's time.
func (c *Clock) Now() time.Time { return time.Unix(0, c.ns.Load()) }

// Advance moves the clock on by d.
func (c *Clock) Advance(d time.Duration) { c.ns.Add(int64(d)) }
