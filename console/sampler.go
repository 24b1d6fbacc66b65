package console

import (
	"context"
	"sync"
	"time"
)

// historyPoints is how many samples each series keeps (at the default 2s
// period, three minutes), so memory stays fixed whatever runs for how long.
const historyPoints = 90

// lagIdle is how long after the last API call lag sampling continues.
const lagIdle = 5 * time.Minute

// maxSeries bounds the number of series (topics and groups) kept, so a
// cluster with very many topics cannot grow the history without limit.
const maxSeries = 2000

// point is one sample of a series.
type point struct {
	T int64   `json:"t"` // unix milliseconds
	V float64 `json:"v"`
}

// history holds fixed-size rings of samples by series name
// ("in:<topic>", "out:<topic>", "lag:<group>").
type history struct {
	mu     sync.Mutex
	size   int
	series map[string][]point
	// counters are the previous raw counter values, to turn counters into
	// rates.
	counters map[string]point
}

func newHistory(size int) *history {
	return &history{size: size, series: map[string][]point{}, counters: map[string]point{}}
}

// add appends a sample to a series, dropping the oldest beyond size.
func (h *history) add(name string, p point) {
	h.mu.Lock()
	defer h.mu.Unlock()
	s, ok := h.series[name]
	if !ok && len(h.series) >= maxSeries {
		return
	}
	if len(s) == h.size {
		copy(s, s[1:])
		s = s[:len(s)-1]
	}
	h.series[name] = append(s, p)
}

// addCounter records a counter's value and appends its per-second rate
// since the previous value (nothing on the first value).
func (h *history) addCounter(name string, p point) {
	h.mu.Lock()
	prev, ok := h.counters[name]
	if ok || len(h.counters) < maxSeries {
		h.counters[name] = p
	}
	h.mu.Unlock()
	if !ok || p.T <= prev.T {
		return
	}
	rate := (p.V - prev.V) / (float64(p.T-prev.T) / 1000)
	if rate < 0 { // a counter reset
		rate = 0
	}
	h.add(name, point{T: p.T, V: rate})
}

// get returns a copy of a series.
func (h *history) get(name string) []point {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]point{}, h.series[name]...)
}

// last returns the latest sample of a series, if any.
func (h *history) last(name string) (point, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := h.series[name]
	if len(s) == 0 {
		return point{}, false
	}
	return s[len(s)-1], true
}

// Rates are sampled from these counters of the broker's registry.
var rateCounters = map[string]string{
	"shoal_topic_records_in_total":  "in:",
	"shoal_topic_records_out_total": "out:",
}

// sample runs until Close: every period it samples the topic counters
// and, while someone is looking, every consumer group's total lag.
func (c *Console) sample() {
	defer c.wg.Done()
	t := time.NewTicker(c.cfg.SampleEvery)
	defer t.Stop()
	for {
		c.sampleRates(time.Now().UnixMilli())
		if time.Since(time.Unix(c.lastSeen.Load(), 0)) < lagIdle {
			ctx, cancel := context.WithTimeout(c.ctx, requestTimeout)
			c.sampleLag(ctx)
			cancel()
		}
		select {
		case <-c.ctx.Done():
			return
		case <-t.C:
		}
	}
}

// sampleRates records the topic counters' values at now (unix ms).
func (c *Console) sampleRates(now int64) {
	if c.cfg.Metrics == nil {
		return
	}
	fams, err := c.cfg.Metrics.Gather()
	if err != nil {
		c.cfg.Log.Debug("console: gathering metrics", "err", err)
		return
	}
	for _, f := range fams {
		prefix, ok := rateCounters[f.GetName()]
		if !ok {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "topic" {
					c.hist.addCounter(prefix+l.GetValue(), point{T: now, V: m.GetCounter().GetValue()})
				}
			}
		}
	}
}

// maxLagGroups bounds the consumer groups whose lag one sample reads
// (three Kafka requests each): the first ones by name.
const maxLagGroups = 100

// sampleLag records the total lag of the consumer groups. With logins it
// reads as the person who used the console last, so it samples the groups
// that person may describe; a page shows a group's samples only to whom
// the broker lets describe the group.
func (c *Console) sampleLag(ctx context.Context) {
	k := c.shared
	if k == nil {
		if k = c.sessions.latest(); k == nil {
			return
		}
	}
	groups, err := k.adm.ListGroupsByType(ctx, []string{"consumer", "classic"})
	if err != nil {
		return
	}
	now := time.Now().UnixMilli()
	listed := groups.Sorted()
	for _, g := range listed[:min(len(listed), maxLagGroups)] {
		name := g.Group
		lags, err := k.groupLag(ctx, name)
		if err != nil {
			continue
		}
		var total int64
		for _, l := range lags {
			if l.Lag > 0 {
				total += l.Lag
			}
		}
		c.hist.add("lag:"+name, point{T: now, V: float64(total)})
	}
}
