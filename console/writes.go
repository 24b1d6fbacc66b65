package console

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"

	"github.com/twmb/franz-go/pkg/kadm"
)

// The write actions: each is refused unless admin.ui.allow.writes is set
// (see Console.write), confirmed in the page first, and logged at INFO
// with what was done and from where.

type deleteRecordsReq struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	// Before is the new log start: records below it are deleted (-1: the
	// end, deleting every record).
	Before int64 `json:"before"`
}

func (c *Console) deleteRecords(ctx context.Context, k *kafkaConn, r *http.Request, body []byte) (any, error) {
	var req deleteRecordsReq
	if err := json.Unmarshal(body, &req); err != nil || req.Topic == "" {
		return nil, badRequest("want {topic, partition, before}")
	}
	os := kadm.Offsets{}
	os.Add(kadm.Offset{Topic: req.Topic, Partition: req.Partition, At: req.Before, LeaderEpoch: -1})
	resp, err := k.adm.DeleteRecords(ctx, os)
	if err != nil {
		return nil, err
	}
	d, ok := resp.Lookup(req.Topic, req.Partition)
	if !ok {
		return nil, fmt.Errorf("no answer for %s/%d", req.Topic, req.Partition)
	}
	if d.Err != nil {
		return nil, &apiError{http.StatusConflict, d.Err.Error()}
	}
	c.cfg.Log.Info("console: deleted records", "topic", req.Topic, "partition", req.Partition,
		"before", req.Before, "log.start", d.LowWatermark, "remote", r.RemoteAddr)
	return map[string]int64{"logStart": d.LowWatermark}, nil
}

type resetOffsetsReq struct {
	Group     string `json:"group"`
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	// To is an offset, "earliest" or "latest".
	To string `json:"to"`
}

// resetOffsets commits a new offset for one partition of a consumer
// group, as kafka-consumer-groups.sh --reset-offsets does: the broker
// refuses it while the group has active members.
func (c *Console) resetOffsets(ctx context.Context, k *kafkaConn, r *http.Request, body []byte) (any, error) {
	var req resetOffsetsReq
	if err := json.Unmarshal(body, &req); err != nil || req.Group == "" || req.Topic == "" {
		return nil, badRequest("want {group, topic, partition, to}")
	}
	start, end, err := k.partitionBounds(ctx, req.Topic, req.Partition)
	if err != nil {
		return nil, err
	}
	var at int64
	switch req.To {
	case "earliest":
		at = start
	case "latest":
		at = end
	default:
		if at, err = strconv.ParseInt(req.To, 10, 64); err != nil || at < start || at > end {
			return nil, badRequest(fmt.Sprintf("to: want earliest, latest or an offset in [%d, %d]", start, end))
		}
	}
	os := kadm.Offsets{}
	os.Add(kadm.Offset{Topic: req.Topic, Partition: req.Partition, At: at, LeaderEpoch: -1})
	resp, err := k.adm.CommitOffsets(ctx, req.Group, os)
	if err != nil {
		return nil, err
	}
	if err := resp.Error(); err != nil {
		return nil, &apiError{http.StatusConflict, err.Error()}
	}
	c.cfg.Log.Info("console: reset group offset", "group", req.Group, "topic", req.Topic,
		"partition", req.Partition, "offset", at, "remote", r.RemoteAddr)
	return map[string]int64{"offset": at}, nil
}
