package broker

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoalmq/shoal/queue"
	"github.com/shoalmq/shoal/share"
)

// A share fetch whose first pass finds a share partition still loading its
// state, and whose long poll then acquires from it, answers the records
// without the first pass's error: a client skips the records of a partition
// that carries an error, and records acquired under a stale error stayed
// locked until their acquisition lock ran out (a drain stalled for the lock
// duration).
func TestShareFetchRecordsSupersedeEarlierPassError(t *testing.T) {
	resp := kmsg.NewPtrShareFetchRequest().ResponseKind().(*kmsg.ShareFetchResponse)
	out := newShareFetchOut(resp)
	tp := share.TopicPart{ID: [16]byte{7}, Partition: 2}
	other := share.TopicPart{ID: [16]byte{7}, Partition: 3}

	// First pass: neither partition's state is loaded yet.
	out.Failed(tp, kerr.CoordinatorLoadInProgress.Code)
	out.Failed(other, kerr.CoordinatorLoadInProgress.Code)
	// A later pass acquires from one of them.
	out.Acquired(tp, []byte{1, 2, 3}, []queue.AcquiredRange{{First: 10, Last: 12, DeliveryCount: 1}})

	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 2 {
		t.Fatalf("response topics %+v, want one topic with two partitions", resp.Topics)
	}
	for _, p := range resp.Topics[0].Partitions {
		switch p.Partition {
		case tp.Partition:
			if p.ErrorCode != 0 {
				t.Errorf("partition %d carries error %d with %d acquired ranges; want no error", p.Partition, p.ErrorCode, len(p.AcquiredRecords))
			}
			if len(p.AcquiredRecords) != 1 || p.AcquiredRecords[0].FirstOffset != 10 || p.AcquiredRecords[0].LastOffset != 12 || len(p.Records) != 3 {
				t.Errorf("partition %d: acquired %+v, %d record bytes; want 10-12 and 3 bytes", p.Partition, p.AcquiredRecords, len(p.Records))
			}
		case other.Partition:
			if p.ErrorCode != kerr.CoordinatorLoadInProgress.Code {
				t.Errorf("partition %d error %d, want COORDINATOR_LOAD_IN_PROGRESS (%d): it acquired nothing", p.Partition, p.ErrorCode, kerr.CoordinatorLoadInProgress.Code)
			}
		}
	}
}
