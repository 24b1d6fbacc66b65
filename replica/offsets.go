package replica

import (
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/shoalmq/shoal/log"
	"github.com/shoalmq/shoal/raftmeta"
)

// Offset specs of ListOffsets: a negative timestamp names a position in
// the log rather than a time.
const (
	specLatest        = -1
	specEarliest      = -2
	specMaxTimestamp  = -3
	specEarliestLocal = -4
	specLatestTiered  = -5
	// specEarliestPendingUpload is the first offset not yet in tiered
	// storage (KIP-1023).
	specEarliestPendingUpload = -6
)

// specVersions is the first ListOffsets version each spec came with.
var specVersions = map[int64]int16{specLatest: 1, specEarliest: 1, specMaxTimestamp: 7, specEarliestLocal: 8,
	specLatestTiered: 9, specEarliestPendingUpload: 11}

// SpecSupported reports whether a ListOffsets of version may ask for
// timestamp: any time, or a spec of that version or older. Kafka answers
// any other with UNSUPPORTED_VERSION rather than looking a negative time
// up.
func SpecSupported(timestamp int64, version int16) bool {
	v, ok := specVersions[timestamp]
	return timestamp >= 0 || ok && version >= v
}

// OffsetQuery is one partition's lookup in a ListOffsets.
type OffsetQuery struct {
	// Timestamp is a time in milliseconds or one of the specs above.
	Timestamp int64
	// Client is set when a consumer asks (replica id -1). A client sees
	// what it may fetch: up to the HW, or the last stable offset with
	// ReadCommitted. Anything else (a broker, the debugging replica id)
	// sees the whole log, as in Kafka.
	Client bool
	// ReadCommitted is a client's isolation level read_committed.
	ReadCommitted bool
}

// ListOffset answers q on p, which this node leads as ps says: the offset,
// the timestamp found with it and the leader epoch it was written in, -1
// each when there is none. The latest offset comes with the leader's epoch,
// as in Kafka. A consumer positioned by the answer validates it with that
// epoch after a leader change (OffsetForLeaderEpoch), so an epoch above
// the record's would hide a truncation below it.
//
// A new leader's high watermark is the one it learnt as a follower, which
// may lie below records the previous leader already acknowledged; it
// catches up once the ISR has fetched from the start of the new epoch.
// Until then a client is told OFFSET_NOT_AVAILABLE (retriable) for the
// latest offset and for a time whose record is not below the HW, rather
// than an end offset that moved backwards (Kafka's
// Partition.fetchOffsetForTimestamp). The earliest offsets, and a time
// found below the HW, are answered meanwhile.
func (m *Manager) ListOffset(p *log.Partition, ps raftmeta.PartitionState, q OffsetQuery) (offset, timestamp int64, epoch int32, err error) {
	fetchable := p.LogEndOffset()
	var notYet error
	if q.Client {
		start := epochStart(p, ps.LeaderEpoch)
		hw := p.HighWatermark()
		if hw < start {
			notYet = kerr.OffsetNotAvailable
		}
		fetchable = hw
		if q.ReadCommitted {
			fetchable = p.LastStableOffset()
		}
	}
	var found bool
	switch q.Timestamp {
	case specLatest:
		if notYet != nil {
			return -1, -1, -1, notYet
		}
		return fetchable, -1, ps.LeaderEpoch, nil
	case specEarliest, specEarliestLocal:
		start := p.LogStartOffset()
		return start, -1, epochOf(p, ps, start), nil
	case specLatestTiered, specEarliestPendingUpload:
		// No tiered storage: nothing is uploaded, or pending.
		return -1, -1, -1, nil
	case specMaxTimestamp:
		offset, timestamp = p.MaxTimestamp()
		found = offset >= 0
	default:
		if offset, timestamp, found, err = p.OffsetForTimestamp(q.Timestamp); err != nil {
			return -1, -1, -1, err
		}
	}
	if found && offset < fetchable {
		return offset, timestamp, epochOf(p, ps, offset), nil
	}
	return -1, -1, -1, notYet
}

// epochOf is the leader epoch offset was written in, or -1. The leader's
// own epoch, until its first append records it in the history, starts at
// the log end (see EndOffsetForEpoch): an empty log's start is in it.
func epochOf(p *log.Partition, ps raftmeta.PartitionState, offset int64) int32 {
	if latest, _ := p.LatestEpoch(); latest < ps.LeaderEpoch && offset >= epochStart(p, ps.LeaderEpoch) {
		return ps.LeaderEpoch
	}
	return p.EpochForOffset(offset)
}

// EndOffsetForEpoch answers OffsetForLeaderEpoch for epoch on p, which
// this node leads as ps says: the largest epoch at or below it in the
// history and where that epoch ends (log.Partition.EndOffsetForEpoch).
//
// Kafka's leader writes its epoch into the history when elected, at its
// log end; this log records an epoch at its first append in it. Until that
// append the leader answers as Kafka's does: its own epoch ends at the log
// end, and an epoch between the last recorded one and its own ends where
// its own began. Without that, a consumer validating its position with the
// leader's epoch (which ListOffsets hands out) would be told the epoch is
// unknown, which it takes for a truncated log and resets its offset.
func (m *Manager) EndOffsetForEpoch(p *log.Partition, ps raftmeta.PartitionState, epoch int32) (leaderEpoch int32, endOffset int64) {
	latest, _ := p.LatestEpoch()
	if epoch <= latest || latest >= ps.LeaderEpoch {
		return p.EndOffsetForEpoch(epoch)
	}
	switch {
	case epoch > ps.LeaderEpoch:
		return -1, -1
	case epoch == ps.LeaderEpoch:
		return epoch, p.LogEndOffset()
	case latest < 0:
		// No older epoch either: Kafka answers the requested one.
		return epoch, epochStart(p, ps.LeaderEpoch)
	}
	return latest, epochStart(p, ps.LeaderEpoch)
}
