package console

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Redrive produces selected dead letters again to the partition they came
// from, once: not once per process, but once for the cluster's lifetime.
//
// Which dead letters of a dead-letter partition were redriven is recorded
// as a committed offset of the group redriveGroup on that partition: the
// offset is the first dead letter not yet redriven (everything below it
// was) and the commit's metadata lists the redriven ranges above it
// ("12-15,20"). The records and that commit are written in one Kafka
// transaction, with a transactional id per dead-letter partition, so a
// crash or restart mid-redrive leaves either both or neither, and two
// consoles redriving the same partition fence each other instead of both
// producing. Kafka's own tools show the progress
// (kafka-consumer-groups --describe --group shoal-console-redrive), and it
// survives a restart as every committed offset does. (A reader at
// read_uncommitted also sees the records of an aborted redrive, as Kafka
// defines that level.) The metadata is
// bounded by offset.metadata.max.bytes (4096 by default): a selection that
// would leave more separate ranges than fit is refused.
//
// Under an authorizer, the person redriving needs READ on the dead-letter
// topic, WRITE on the source topic, READ on the group shoal-console-redrive
// and WRITE on the transactional id shoal-console-redrive-<dlq>-<partition>
// (a PREFIXED ACL on shoal-console-redrive covers every partition).
const (
	redriveGroup = "shoal-console-redrive"
	// maxRedriveMetadata stays under Kafka's default
	// offset.metadata.max.bytes.
	maxRedriveMetadata = 4000
)

// redriveTxnID is the transactional id of one dead-letter partition's
// redrives.
func redriveTxnID(topic string, partition int32) string {
	return redriveGroup + "-" + topic + "-" + strconv.Itoa(int(partition))
}

type redriveReq struct {
	Topic     string  `json:"topic"` // the dead-letter topic
	Partition int32   `json:"partition"`
	Offsets   []int64 `json:"offsets"`
}

type redriveResult struct {
	Offset int64  `json:"offset"`
	To     string `json:"to,omitempty"`
	Status string `json:"status"` // redriven, already redriven, or why not
}

// dlqHeaderPrefix starts the headers a dead-lettered record carries about
// its origin (KIP-1191's __dlq.errors.*).
const dlqHeaderPrefix = "__dlq.errors."

// redrive produces the selected dead letters again to their source topic
// and partition (from their __dlq.errors.topic and .partition headers),
// with their key, value and their own headers, without the __dlq.errors.*
// ones; those already redriven, by this process or any before it, are
// skipped.
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
	if lo < 0 || hi-lo >= maxScan {
		return nil, badRequest(fmt.Sprintf("the selected offsets must be offsets within %d of each other", maxScan))
	}
	// One redrive at a time in this process: a second would only fence
	// the first (same transactional id).
	c.redriveMu.Lock()
	defer c.redriveMu.Unlock()

	txn, err := kgo.NewClient(append(slices.Clip(k.opts), kgo.ClientID("shoal-console-redrive"),
		kgo.TransactionalID(redriveTxnID(req.Topic, req.Partition)), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.RequestTimeoutOverhead(requestTimeout), kgo.TransactionTimeout(requestTimeout))...)
	if err != nil {
		return nil, err
	}
	defer txn.Close()
	// Fence any earlier producer of this partition's redrives and finish
	// its transaction, so the progress read next is settled.
	if _, _, err := txn.ProducerID(ctx); err != nil {
		return nil, err
	}
	logStart, _, err := k.partitionBounds(ctx, req.Topic, req.Partition)
	if err != nil {
		return nil, err
	}
	done, err := fetchRedriven(ctx, txn, req.Topic, req.Partition)
	if err != nil {
		return nil, fmt.Errorf("reading redrive progress (group %s): %w", redriveGroup, err)
	}
	done = done.from(logStart)

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
	results := []redriveResult{}
	var out []*kgo.Record
	var outIdx []int
	next := done
	for _, rec := range found {
		res := redriveResult{Offset: rec.Offset}
		o, err := redriveRecord(rec)
		switch {
		case err != nil:
			res.Status = err.Error()
		case done.has(rec.Offset):
			res.Status = "already redriven"
		default:
			res.To = o.Topic + "/" + strconv.Itoa(int(o.Partition))
			out = append(out, o)
			outIdx = append(outIdx, len(results))
			next = next.add(rec.Offset)
		}
		results = append(results, res)
	}
	if len(out) == 0 {
		return map[string]any{"results": results}, nil
	}
	meta := next.metadata()
	if len(meta) > maxRedriveMetadata {
		return nil, badRequest("redriving these would leave too many separate redriven ranges to record; redrive the dead letters between them too")
	}
	if err := redriveInTxn(ctx, txn, req, out, next.watermark, meta); err != nil {
		for _, i := range outIdx {
			results[i].Status, results[i].To = err.Error(), ""
		}
		return map[string]any{"results": results}, nil
	}
	for j, i := range outIdx {
		results[i].Status = "redriven"
		c.cfg.Log.Info("console: redrove dead letter", "user", k.user, "topic", req.Topic, "partition", req.Partition,
			"offset", results[i].Offset, "to.topic", out[j].Topic, "to.partition", out[j].Partition, "to.offset", out[j].Offset, "remote", r.RemoteAddr)
	}
	return map[string]any{"results": results}, nil
}

// redriveInTxn produces the records and commits the new progress in one
// transaction, aborting it on any error.
func redriveInTxn(ctx context.Context, txn *kgo.Client, req redriveReq, out []*kgo.Record, watermark int64, meta string) (err error) {
	if err := txn.BeginTransaction(); err != nil {
		return err
	}
	defer func() {
		if err != nil {
			actx, cancel := context.WithTimeout(context.Background(), requestTimeout)
			defer cancel()
			txn.AbortBufferedRecords(actx)
			txn.EndTransaction(actx, kgo.TryAbort)
		}
	}()
	if err := txn.ProduceSync(ctx, out...).FirstErr(); err != nil {
		return err
	}
	pid, epoch, err := txn.ProducerID(ctx)
	if err != nil {
		return err
	}
	add := kmsg.NewPtrAddOffsetsToTxnRequest()
	add.TransactionalID, add.ProducerID, add.ProducerEpoch, add.Group = redriveTxnID(req.Topic, req.Partition), pid, epoch, redriveGroup
	addResp, err := add.RequestWith(ctx, txn)
	if err != nil {
		return err
	}
	if err := kerr.ErrorForCode(addResp.ErrorCode); err != nil {
		return err
	}
	commit := kmsg.NewPtrTxnOffsetCommitRequest()
	commit.TransactionalID, commit.Group, commit.ProducerID, commit.ProducerEpoch = add.TransactionalID, redriveGroup, pid, epoch
	commit.Generation = -1
	ct := kmsg.NewTxnOffsetCommitRequestTopic()
	ct.Topic = req.Topic
	cp := kmsg.NewTxnOffsetCommitRequestTopicPartition()
	cp.Partition, cp.Offset, cp.LeaderEpoch, cp.Metadata = req.Partition, watermark, -1, &meta
	ct.Partitions = append(ct.Partitions, cp)
	commit.Topics = append(commit.Topics, ct)
	commitResp, err := commit.RequestWith(ctx, txn)
	if err != nil {
		return err
	}
	for _, t := range commitResp.Topics {
		for _, p := range t.Partitions {
			if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
				return err
			}
		}
	}
	return txn.EndTransaction(ctx, kgo.TryCommit)
}

// fetchRedriven reads the redrive progress of a dead-letter partition,
// waiting out a transaction still settling (UNSTABLE_OFFSET_COMMIT).
func fetchRedriven(ctx context.Context, cl *kgo.Client, topic string, partition int32) (redriven, error) {
	for {
		req := kmsg.NewPtrOffsetFetchRequest()
		req.RequireStable = true
		g := kmsg.NewOffsetFetchRequestGroup()
		g.Group = redriveGroup
		rt := kmsg.NewOffsetFetchRequestGroupTopic()
		rt.Topic, rt.Partitions = topic, []int32{partition}
		g.Topics = append(g.Topics, rt)
		req.Groups = append(req.Groups, g)
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			return redriven{}, err
		}
		var perr error
		got := redriven{}
		for _, rg := range resp.Groups {
			if perr = kerr.ErrorForCode(rg.ErrorCode); perr != nil {
				break
			}
			for _, t := range rg.Topics {
				for _, p := range t.Partitions {
					if perr = kerr.ErrorForCode(p.ErrorCode); perr != nil {
						break
					}
					if p.Offset >= 0 {
						meta := ""
						if p.Metadata != nil {
							meta = *p.Metadata
						}
						if got, perr = parseRedriven(p.Offset, meta); perr != nil {
							perr = fmt.Errorf("committed metadata %q: %w", meta, perr)
						}
					}
				}
			}
		}
		if !errors.Is(perr, kerr.UnstableOffsetCommit) {
			return got, perr
		}
		select {
		case <-ctx.Done():
			return redriven{}, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// redriven is the set of redriven offsets of one dead-letter partition:
// everything below watermark, and the ranges above it (sorted, disjoint,
// not touching each other or the watermark).
type redriven struct {
	watermark int64
	ranges    [][2]int64 // inclusive
}

func (d redriven) has(o int64) bool {
	if o < d.watermark {
		return true
	}
	for _, r := range d.ranges {
		if o >= r[0] && o <= r[1] {
			return true
		}
	}
	return false
}

// add returns the set with o in it, ranges merged and the watermark
// raised over a range that reaches it.
func (d redriven) add(o int64) redriven {
	if d.has(o) {
		return d
	}
	rs := append(slices.Clone(d.ranges), [2]int64{o, o})
	return redriven{watermark: d.watermark}.withRanges(rs)
}

// from returns the set with every offset below logStart counted as done:
// those dead letters are gone, and their ranges need no more room.
func (d redriven) from(logStart int64) redriven {
	if logStart <= d.watermark {
		return d
	}
	return redriven{watermark: logStart}.withRanges(d.ranges)
}

// withRanges normalizes ranges onto d's watermark.
func (d redriven) withRanges(rs [][2]int64) redriven {
	slices.SortFunc(rs, func(a, b [2]int64) int { return cmp.Compare(a[0], b[0]) })
	out := redriven{watermark: d.watermark}
	for _, r := range rs {
		if r[1] < out.watermark {
			continue
		}
		r[0] = max(r[0], out.watermark)
		if r[0] == out.watermark {
			out.watermark = r[1] + 1
			continue
		}
		if n := len(out.ranges); n > 0 && r[0] <= out.ranges[n-1][1]+1 {
			out.ranges[n-1][1] = max(out.ranges[n-1][1], r[1])
			continue
		}
		out.ranges = append(out.ranges, r)
	}
	// A range may now touch the raised watermark.
	for len(out.ranges) > 0 && out.ranges[0][0] <= out.watermark {
		out.watermark = max(out.watermark, out.ranges[0][1]+1)
		out.ranges = out.ranges[1:]
	}
	return out
}

// metadata is the ranges as the commit's metadata: "12-15,20".
func (d redriven) metadata() string {
	var b strings.Builder
	for i, r := range d.ranges {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.FormatInt(r[0], 10))
		if r[1] != r[0] {
			b.WriteByte('-')
			b.WriteString(strconv.FormatInt(r[1], 10))
		}
	}
	return b.String()
}

// parseRedriven reads a committed progress back.
func parseRedriven(watermark int64, meta string) (redriven, error) {
	var rs [][2]int64
	if meta != "" {
		for _, part := range strings.Split(meta, ",") {
			a, b, isRange := strings.Cut(part, "-")
			lo, err := strconv.ParseInt(a, 10, 64)
			if err != nil || lo < 0 {
				return redriven{}, errors.New("not a list of offsets and ranges")
			}
			hi := lo
			if isRange {
				if hi, err = strconv.ParseInt(b, 10, 64); err != nil || hi < lo {
					return redriven{}, errors.New("not a list of offsets and ranges")
				}
			}
			rs = append(rs, [2]int64{lo, hi})
		}
	}
	return redriven{watermark: watermark}.withRanges(rs), nil
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
