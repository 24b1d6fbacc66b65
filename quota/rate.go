package quota

import (
	"math"
	"time"
)

// Window is the sampling of a rate, Kafka's quota.window.num samples of
// quota.window.size.seconds each.
type Window struct {
	Samples int
	Size    time.Duration
}

// DefaultWindow is Kafka's: 11 one-second samples (ten whole windows and
// the current one).
var DefaultWindow = Window{Samples: 11, Size: time.Second}

// Rate is a windowed rate, as Kafka's Rate over a SampledStat: values are
// summed into the current sample, samples older than the whole window are
// forgotten, and the rate is the sum over the elapsed time since the oldest
// sample began, but never over less than Samples-1 whole windows, so a
// fresh client cannot burst far past its quota before a full window
// exists. Not safe for concurrent use; the owner serializes it.
type Rate struct {
	w       Window
	samples []sample // oldest first
}

type sample struct {
	start time.Time
	total float64
}

// NewRate returns an empty rate over w.
func NewRate(w Window) *Rate {
	if w.Samples < 2 {
		w.Samples = 2
	}
	if w.Size <= 0 {
		w.Size = time.Second
	}
	return &Rate{w: w}
}

// Record adds v at now.
func (r *Rate) Record(v float64, now time.Time) {
	r.purge(now)
	if n := len(r.samples); n == 0 || !now.Before(r.samples[n-1].start.Add(r.w.Size)) {
		r.samples = append(r.samples, sample{start: now})
		if len(r.samples) > r.w.Samples {
			r.samples = r.samples[1:]
		}
	}
	r.samples[len(r.samples)-1].total += v
}

// purge forgets samples that ended a whole window ago.
func (r *Rate) purge(now time.Time) {
	horizon := now.Add(-time.Duration(r.w.Samples) * r.w.Size)
	i := 0
	for i < len(r.samples) && !r.samples[i].start.After(horizon) {
		i++
	}
	r.samples = r.samples[i:]
}

// Measure is the rate per second at now.
func (r *Rate) Measure(now time.Time) float64 {
	r.purge(now)
	var total float64
	for _, s := range r.samples {
		total += s.total
	}
	return total / r.windowSize(now).Seconds()
}

// windowSize is the span the rate divides by: from the oldest sample's
// start to now, at least Samples-1 whole windows.
func (r *Rate) windowSize(now time.Time) time.Duration {
	var elapsed time.Duration
	if len(r.samples) > 0 {
		elapsed = now.Sub(r.samples[0].start)
	}
	return max(elapsed, time.Duration(r.w.Samples-1)*r.w.Size)
}

// ThrottleTime records v at now and returns how long the client must back
// off for the rate to come back to bound, as Kafka's QuotaUtils: the
// excess over the bound, as a share of it, times the window the rate is
// measured over; capped at one sample's size as Kafka caps it, so one
// large request never silences a client for longer than a window (and a
// zero bound, which nothing is within, throttles by that much).
func (r *Rate) ThrottleTime(v, bound float64, now time.Time) time.Duration {
	r.Record(v, now)
	rate := r.Measure(now)
	if rate <= bound {
		return 0
	}
	if bound <= 0 {
		// Nothing may pass: the longest throttle, as Kafka's bounded
		// throttle of an infinite excess.
		return r.w.Size
	}
	ms := math.Round((rate - bound) / bound * float64(r.windowSize(now).Milliseconds()))
	return min(time.Duration(ms)*time.Millisecond, r.w.Size)
}
