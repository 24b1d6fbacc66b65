package console

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
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

// recordRef names one record.
type recordRef struct {
	Topic     string
	Partition int32
	Offset    int64
}

type redriveReq struct {
	Topic     string  `json:"topic"` // the dead-letter topic
	Partition int32   `json:"partition"`
	Offsets   []int64 `json:"offsets"`
}

// dlqHeaderPrefix starts the headers a dead-lettered record carries about
// its origin (KIP-1191's __dlq.errors.*).
const dlqHeaderPrefix = "__dlq.errors."

// redrive produces the selected dead letters again to their source topic
// and partition (from their __dlq.errors.topic and .partition headers),
// with their key, value and their own headers, without the __dlq.errors.*
// ones. Each record is redriven at most once per process: a repeated
// request skips what was already sent.
func (c *Console) redrive(ctx context.Context, k *kafkaConn, r *http.Request, body []byte) (any, error) {
	var req redriveReq
	if err := json.Unmarshal(body, &req); err != nil || req.Topic == "" || len(req.Offsets) == 0 {
		return nil, badRequest("want {topic, partition, offsets}")
	}
	if len(req.Offsets) > maxPage {
		return nil, badRequest(fmt.Sprintf("at most %d records at once", maxPage))
	}
	want := map[int64]bool{}
	lo, hi := req.Offsets[0], req.Offsets[0]
	for _, o := range req.Offsets {
		want[o] = true
		lo, hi = min(lo, o), max(hi, o)
	}
	if hi-lo >= maxScan {
		return nil, badRequest(fmt.Sprintf("the selected offsets must lie within %d of each other", maxScan))
	}
	var found []*kgo.Record
	b := browse{topic: req.Topic, partition: req.Partition}
	if _, err := k.readRange(ctx, b, lo, hi+1, func(rec *kgo.Record) bool {
		if want[rec.Offset] {
			found = append(found, rec)
		}
		return true
	}); err != nil {
		return nil, err
	}
	type result struct {
		Offset int64  `json:"offset"`
		To     string `json:"to,omitempty"`
		Status string `json:"status"` // redriven, already redriven, or why not
	}
	results := []result{}
	for _, rec := range found {
		ref := recordRef{req.Topic, req.Partition, rec.Offset}
		res := result{Offset: rec.Offset}
		out, err := redriveRecord(rec)
		switch {
		case err != nil:
			res.Status = err.Error()
		case !c.claimRedrive(ref):
			res.Status = "already redriven"
		default:
			res.To = out.Topic + "/" + strconv.Itoa(int(out.Partition))
			if err := k.cl.ProduceSync(ctx, out).FirstErr(); err != nil {
				c.unclaimRedrive(ref)
				res.Status = err.Error()
			} else {
				res.Status = "redriven"
				c.cfg.Log.Info("console: redrove dead letter", "topic", req.Topic, "partition", req.Partition,
					"offset", rec.Offset, "to.topic", out.Topic, "to.partition", out.Partition, "to.offset", out.Offset, "remote", r.RemoteAddr)
			}
		}
		results = append(results, res)
	}
	return map[string]any{"results": results}, nil
}

// redriveRecord is the record to produce for a dead letter.
func redriveRecord(dl *kgo.Record) (*kgo.Record, error) {
	out := &kgo.Record{Key: dl.Key, Value: dl.Value, Partition: -1}
	for _, h := range dl.Headers {
		switch {
		case h.Key == dlqHeaderPrefix+"topic":
			out.Topic = string(h.Value)
		case h.Key == dlqHeaderPrefix+"partition":
			p, err := strconv.ParseInt(string(h.Value), 10, 32)
			if err != nil {
				return nil, fmt.Errorf("bad %s header", h.Key)
			}
			out.Partition = int32(p)
		case strings.HasPrefix(h.Key, dlqHeaderPrefix):
		default:
			out.Headers = append(out.Headers, h)
		}
	}
	if out.Topic == "" || out.Partition < 0 {
		return nil, fmt.Errorf("not a dead letter: no %stopic and %spartition headers", dlqHeaderPrefix, dlqHeaderPrefix)
	}
	return out, nil
}

func (c *Console) claimRedrive(ref recordRef) bool {
	c.redrivenMu.Lock()
	defer c.redrivenMu.Unlock()
	if c.redriven[ref] {
		return false
	}
	c.redriven[ref] = true
	return true
}

func (c *Console) unclaimRedrive(ref recordRef) {
	c.redrivenMu.Lock()
	defer c.redrivenMu.Unlock()
	delete(c.redriven, ref)
}
