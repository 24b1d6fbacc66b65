package console

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"

	"github.com/shoalmq/shoal/redrive"
)

// Redrive produces selected dead letters again to the partition they came
// from, once for the cluster's lifetime, through package redrive: the same
// redrive as `shoal share dlq redrive`, so each sees the other's. Each
// redriven dead letter gets a marker on the compacted topic
// <dlq>.redriven in the same transaction as its record, with the
// transactional id shoal-redrive-<dlq>, so a restart, a second console or
// the CLI never produces it twice. The console acts as the logged-in user:
// under an authorizer that person needs the ACLs docs/operations.md lists.

type redriveReq struct {
	Topic     string  `json:"topic"` // the dead-letter topic
	Partition int32   `json:"partition"`
	Offsets   []int64 `json:"offsets"`
}

// redrive redrives the selected dead letters of one dead-letter partition
// and answers one result per selected offset.
func (c *Console) redrive(ctx context.Context, k *kafkaConn, r *http.Request, body []byte) (any, error) {
	var req redriveReq
	if err := json.Unmarshal(body, &req); err != nil || req.Topic == "" || len(req.Offsets) == 0 {
		return nil, badRequest("want {topic, partition, offsets}")
	}
	if len(req.Offsets) > maxPage {
		return nil, badRequest(fmt.Sprintf("at most %d records at once", maxPage))
	}
	lo, hi := slices.Min(req.Offsets), slices.Max(req.Offsets)
	if lo < 0 || hi-lo >= maxScan {
		return nil, badRequest(fmt.Sprintf("the selected offsets must be offsets within %d of each other", maxScan))
	}
	// One redrive at a time in this process: a second would only fence
	// the first (same transactional id).
	c.redriveMu.Lock()
	defer c.redriveMu.Unlock()

	sel := redrive.Selector{Partitions: []int32{req.Partition}, From: lo, To: hi, Offsets: req.Offsets}
	results, err := redrive.Redrive(ctx, k.opts, req.Topic, redrive.Options{Selector: sel})
	if err != nil && len(results) == 0 {
		return nil, err
	}
	found := map[int64]bool{}
	for _, res := range results {
		found[res.Offset] = true
		if res.Status == redrive.StatusRedriven {
			c.cfg.Log.Info("console: redrove dead letter", "user", k.user, "topic", req.Topic, "partition", req.Partition,
				"offset", res.Offset, "to", res.To, "remote", r.RemoteAddr)
		}
	}
	for _, o := range req.Offsets {
		if !found[o] {
			results = append(results, redrive.Result{Partition: req.Partition, Offset: o, Status: "not a dead letter"})
			found[o] = true
		}
	}
	return map[string]any{"results": results}, nil
}
