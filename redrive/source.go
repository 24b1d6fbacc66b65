package redrive

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// SourceGoneError says that the source record of a header-only dead letter
// can no longer be read, so the dead letter has nothing to redrive.
type SourceGoneError struct {
	Topic     string
	Partition int32
	Offset    int64
	Why       string
}

func (e *SourceGoneError) Error() string {
	return fmt.Sprintf("the dead letter holds no copy of its record (errors.deadletterqueue.copy.record.enable=false) and the source record %s/%d@%d is gone: %s",
		e.Topic, e.Partition, e.Offset, e.Why)
}

// sourceLookupTimeout bounds reading one source record: a record that
// does not arrive by then (its offset compacted away with nothing after
// it) counts as gone.
const sourceLookupTimeout = 10 * time.Second

// sourceFetchBytes bounds what one source read buffers.
const sourceFetchBytes = 1 << 20

// sourceReader reads the source records of header-only dead letters. It
// keeps the records of its last read of one partition, because a redrive
// asks for the source offsets of a partition mostly in ascending order,
// and one fetch returns many of them.
type sourceReader struct {
	base []kgo.Opt
	// The records read last: from offset lo to hi of topic/partition.
	topic     string
	partition int32
	lo, hi    int64
	records   map[int64]*kgo.Record
}

// read returns the record at offset of topic/partition as it was
// produced (read_uncommitted: what a share group delivered), or a
// *SourceGoneError when retention or compaction removed it.
func (s *sourceReader) read(ctx context.Context, topic string, partition int32, offset int64) (*kgo.Record, error) {
	gone := func(why string) error {
		return &SourceGoneError{Topic: topic, Partition: partition, Offset: offset, Why: why}
	}
	if offset < 0 {
		return nil, gone("the dead letter has no " + headerOffset + " header")
	}
	if s.records != nil && s.topic == topic && s.partition == partition && offset >= s.lo && offset <= s.hi {
		if r := s.records[offset]; r != nil {
			return r, nil
		}
		return nil, gone("no record at that offset (compacted away)")
	}
	cl, err := kgo.NewClient(append(append([]kgo.Opt(nil), s.base...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {partition: kgo.NewOffset().At(offset)}}),
		kgo.FetchMaxBytes(sourceFetchBytes), kgo.FetchMaxPartitionBytes(sourceFetchBytes))...)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	starts, err := adm.ListStartOffsets(ctx, topic)
	if err != nil {
		return nil, err
	}
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return nil, err
	}
	start, ok := starts.Lookup(topic, partition)
	end, ok2 := ends.Lookup(topic, partition)
	switch {
	case !ok || !ok2:
		return nil, gone("the partition does not exist")
	case start.Err != nil:
		return nil, start.Err
	case end.Err != nil:
		return nil, end.Err
	case offset < start.Offset:
		return nil, gone(fmt.Sprintf("retention removed it (the partition's log starts at offset %d)", start.Offset))
	case offset >= end.Offset:
		return nil, gone(fmt.Sprintf("the partition ends at offset %d", end.Offset))
	}

	lctx, cancel := context.WithTimeout(ctx, sourceLookupTimeout)
	defer cancel()
	records := map[int64]*kgo.Record{}
	hi := offset - 1
	for hi < offset {
		fs := cl.PollFetches(lctx)
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if lctx.Err() != nil {
			return nil, gone(fmt.Sprintf("nothing readable at or after that offset within %s", sourceLookupTimeout))
		}
		for _, fe := range fs.Errors() {
			return nil, fe.Err
		}
		fs.EachRecord(func(r *kgo.Record) {
			if r.Topic == topic && r.Partition == partition && r.Offset >= offset {
				records[r.Offset] = r
				hi = max(hi, r.Offset)
			}
		})
	}
	s.topic, s.partition, s.lo, s.hi, s.records = topic, partition, offset, hi, records
	if r := records[offset]; r != nil {
		return r, nil
	}
	return nil, gone("no record at that offset (compacted away)")
}
