package broker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/shoalmq/shoal/coordinator"
	"github.com/shoalmq/shoal/log"
	"github.com/shoalmq/shoal/raftmeta"
)

// internalPartition is one partition of an internal, compacted topic whose
// records a coordinator keeps materialized in a pebble store
// (__consumer_offsets, __share_group_state): the log is the source of
// truth, the store the fast path to load from.
type internalPartition struct {
	srv   *Server
	topic string
	part  int32
	p     *log.Partition
	store *coordinator.Store
}

// load replays the partition's state into apply: first what the store has
// materialized, then the log records above the store's applied offset
// (which it then materializes too).
func (ip *internalPartition) load(reset func(), apply func(coordinator.Record) error) error {
	applied, err := ip.store.Load(ip.part, apply)
	if err != nil {
		return err
	}
	p := ip.p
	if applied >= p.HighWatermark() {
		// The store is ahead of the log (the log lost its tail): start
		// over from the log alone.
		if err := ip.store.Drop(ip.part); err != nil {
			return err
		}
		reset()
		applied = -1
	}
	from := max(applied+1, p.LogStartOffset())
	var tail []coordinator.Record
	last := applied
	for from < p.HighWatermark() {
		res, err := p.Read(from, 1<<20, p.HighWatermark(), true)
		if err != nil {
			return fmt.Errorf("replaying %s-%d at %d: %w", ip.topic, ip.part, from, err)
		}
		if len(res.Data) == 0 {
			break
		}
		for b := res.Data; len(b) > 0; {
			h, recs, err := log.DecodeRecords(b)
			if err != nil {
				return fmt.Errorf("replaying %s-%d: %w", ip.topic, ip.part, err)
			}
			for _, r := range recs {
				cr := coordinator.Record{Key: r.Key, Value: r.Value}
				if err := apply(cr); err != nil {
					ip.srv.log.Warn("skipping undecodable record", "topic", ip.topic, "partition", ip.part, "offset", r.Offset, "err", err)
					continue
				}
				tail = append(tail, cr)
			}
			last = h.LastOffset()
			from = last + 1
			b = b[h.Size():]
		}
	}
	if len(tail) > 0 {
		return ip.store.Apply(ip.part, last, tail)
	}
	return nil
}

// internalWriteTimeout bounds how long a coordinator write waits for the
// ISR, like offsets.commit.timeout.ms.
const internalWriteTimeout = 5 * time.Second

// append writes records as one batch, waits until it is committed (and
// fsynced where the durability settings ask), then materializes them.
func (ip *internalPartition) append(recs []coordinator.Record) error {
	if len(recs) == 0 {
		return nil
	}
	t := ip.srv.meta.Image().Topics[ip.topic]
	if t == nil || int(ip.part) >= len(t.Partitions) || t.ID != ip.p.TopicID() {
		return kerr.NotCoordinator
	}
	ps := t.Partitions[ip.part]
	now := ip.srv.now()
	brs := make([]batchRecord, len(recs))
	for i, r := range recs {
		brs[i] = batchRecord{Key: r.Key, Value: r.Value}
	}
	batch := encodeBatch(brs, now)
	h, err := log.ParseBatchHeader(batch)
	if err != nil {
		return err
	}
	res, err := ip.p.Append(batch, h, ps.LeaderEpoch, now)
	if err != nil {
		return err
	}
	ip.srv.notifyAppend(ip.p)
	ip.srv.advanceHighWatermark(ip.p, ps)
	if ip.p.HighWatermark() <= res.LastOffset {
		// Written with acks=all: the state is kept only once the ISR has it.
		ctx, cancel := context.WithTimeout(ip.srv.ctx, internalWriteTimeout)
		err := ip.srv.waitReplicated(ctx, ip.p, ip.topic, ip.part, res.LastOffset)
		cancel()
		if err != nil {
			return err
		}
	}
	if ip.p.NeedsFlush() {
		if err := ip.p.Sync(res.LastOffset); err != nil {
			return err
		}
	}
	return ip.store.Apply(ip.part, res.LastOffset, recs)
}

// ensureInternalTopic creates an internal compacted topic the first time it
// is needed, as Kafka does for __consumer_offsets and __share_group_state.
func (s *Server) ensureInternalTopic(ctx context.Context, mu interface {
	Lock()
	Unlock()
}, name string, partitions int32, rf int16, segmentBytes int64) error {
	if s.meta.Image().Topics[name] != nil {
		return nil
	}
	mu.Lock()
	defer mu.Unlock()
	img := s.meta.Image()
	if img.Topics[name] != nil {
		return nil
	}
	rf = min(rf, int16(len(img.UnfencedBrokers())))
	cfgs := map[string]*string{
		"cleanup.policy":   strPtr("compact"),
		"compression.type": strPtr("producer"),
		"segment.bytes":    strPtr(fmt.Sprint(segmentBytes)),
	}
	res := s.createTopicsViaController(ctx, []raftmeta.CreateTopicRequest{{
		Name: name, NumPartitions: partitions, ReplicationFactor: max(rf, 1), Configs: cfgs,
	}})
	if err := res[0].Err; err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return err
	}
	s.applyImage()
	return nil
}
