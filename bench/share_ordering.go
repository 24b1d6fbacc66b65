package bench

import (
	"context"
	"fmt"
)

// DefaultOrderingKeys is how many distinct keys ShareOrdering produces when
// Options.Keys is not set.
const DefaultOrderingKeys = 1000

// OrderingRun is the outcome of ShareOrdering: the same records drained
// with share.delivery.ordering=none and then =key.
type OrderingRun struct {
	None Result `json:"none"`
	Key  Result `json:"key"`
	// Ratio is key records/s over none records/s.
	Ratio float64 `json:"ratio"`
}

// ShareOrdering measures what key-ordered share delivery costs: the topic is
// filled with records of o.Keys distinct keys (default DefaultOrderingKeys),
// then drained by a fresh share group without ordering and by another with
// share.delivery.ordering=key, one after the other on the same records, so
// the two figures come from the same run and machine.
func ShareOrdering(ctx context.Context, o Options) (OrderingRun, error) {
	if o.Keys <= 0 {
		o.Keys = DefaultOrderingKeys
	}
	var run OrderingRun
	var err error
	o.Ordering = "none"
	if run.None, err = Share(ctx, o); err != nil {
		return run, fmt.Errorf("ordering none: %w", err)
	}
	o.Ordering = "key"
	if run.Key, err = Share(ctx, o); err != nil {
		return run, fmt.Errorf("ordering key: %w", err)
	}
	run.None.Workload, run.Key.Workload = "share ordering=none", "share ordering=key"
	if run.None.RecordsPerSec > 0 {
		run.Ratio = run.Key.RecordsPerSec / run.None.RecordsPerSec
	}
	return run, nil
}
