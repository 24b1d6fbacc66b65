package bench

import (
	"fmt"
	"slices"
	"sync"
	"time"
)

// Percentiles summarises a latency distribution.
type Percentiles struct {
	Count int64         `json:"count"`
	Mean  time.Duration `json:"mean_ns"`
	P50   time.Duration `json:"p50_ns"`
	P90   time.Duration `json:"p90_ns"`
	P99   time.Duration `json:"p99_ns"`
	P999  time.Duration `json:"p999_ns"`
	Max   time.Duration `json:"max_ns"`
}

// String formats the percentiles in milliseconds.
func (p Percentiles) String() string {
	if p.Count == 0 {
		return "no samples"
	}
	return fmt.Sprintf("p50 %s  p90 %s  p99 %s  p99.9 %s  max %s",
		fmtMillis(p.P50), fmtMillis(p.P90), fmtMillis(p.P99), fmtMillis(p.P999), fmtMillis(p.Max))
}

func fmtMillis(d time.Duration) string {
	return fmt.Sprintf("%.3fms", float64(d)/float64(time.Millisecond))
}

// recorder keeps every sample so the percentiles are exact. Runs are bounded
// (a million produce acks, or Rate×Duration end-to-end samples), so the
// memory is modest: 8 bytes a sample.
type recorder struct {
	mu      sync.Mutex
	samples []time.Duration
}

func newRecorder(capacity int) *recorder {
	return &recorder{samples: make([]time.Duration, 0, capacity)}
}

func (r *recorder) record(d time.Duration) {
	r.mu.Lock()
	r.samples = append(r.samples, d)
	r.mu.Unlock()
}

func (r *recorder) percentiles() Percentiles {
	r.mu.Lock()
	s := slices.Clone(r.samples)
	r.mu.Unlock()
	return computePercentiles(s)
}

// computePercentiles sorts s in place and returns its summary, using the
// nearest-rank definition (the smallest sample with at least q of the
// samples at or below it).
func computePercentiles(s []time.Duration) Percentiles {
	if len(s) == 0 {
		return Percentiles{}
	}
	slices.Sort(s)
	var sum float64
	for _, d := range s {
		sum += float64(d)
	}
	// rank returns the sample at quantile perMille/1000.
	rank := func(perMille int) time.Duration {
		n := len(s)
		i := (n*perMille+999)/1000 - 1
		return s[max(0, min(i, n-1))]
	}
	return Percentiles{
		Count: int64(len(s)),
		Mean:  time.Duration(sum / float64(len(s))),
		P50:   rank(500),
		P90:   rank(900),
		P99:   rank(990),
		P999:  rank(999),
		Max:   s[len(s)-1],
	}
}
