package log

import (
	"math"
	"strings"
)

// PartitionConfig holds the topic configs the log honours, with Kafka's names
// in the comments. Every field is a real value: zero means zero (a retention
// of 0 ms deletes every inactive segment), so callers start from
// DefaultPartitionConfig and override what the topic sets.
type PartitionConfig struct {
	SegmentBytes         int64  // segment.bytes
	SegmentMs            int64  // segment.ms
	SegmentIndexBytes    int32  // segment.index.bytes: bounds each index file; roll when full
	IndexIntervalBytes   int32  // index.interval.bytes
	RetentionMs          int64  // retention.ms, -1 = forever
	RetentionBytes       int64  // retention.bytes, -1 = unbounded
	FlushMessages        int64  // flush.messages: NeedsFlush once this many records are unflushed
	FlushMs              int64  // flush.ms: FlushIfDue syncs partitions unflushed this long
	MaxMessageBytes      int32  // max.message.bytes: largest batch accepted
	MessageTimestampType string // message.timestamp.type: "CreateTime" or "LogAppendTime"
	// message.timestamp.before.max.ms and message.timestamp.after.max.ms:
	// how far a CreateTime record's timestamp may lie before or after the
	// broker's clock.
	MessageTimestampBeforeMaxMs int64
	MessageTimestampAfterMaxMs  int64
	FileDeleteDelayMs           int64 // file.delete.delay.ms: accepted, segments are deleted at once (readers never see a removed segment)

	// Log compaction (see compact.go).
	CleanupPolicy          string  // cleanup.policy: "delete", "compact" or "compact,delete"; empty means "delete"
	DeleteRetentionMs      int64   // delete.retention.ms: how long a cleaned tombstone stays readable
	MinCompactionLagMs     int64   // min.compaction.lag.ms: records younger than this are not compacted
	MaxCompactionLagMs     int64   // max.compaction.lag.ms: a dirty record older than this forces a pass
	MinCleanableDirtyRatio float64 // min.cleanable.dirty.ratio: dirty share of the cleanable bytes that triggers a pass
}

// Cleanup policies.
const (
	CleanupDelete        = "delete"
	CleanupCompact       = "compact"
	CleanupCompactDelete = "compact,delete"
)

// Timestamp types.
const (
	TimestampCreateTime    = "CreateTime"
	TimestampLogAppendTime = "LogAppendTime"
)

// DefaultPartitionConfig returns Kafka's defaults.
func DefaultPartitionConfig() PartitionConfig {
	return PartitionConfig{
		SegmentBytes:         1 << 30,
		SegmentMs:            7 * 24 * 3600 * 1000,
		SegmentIndexBytes:    10 << 20,
		IndexIntervalBytes:   4096,
		RetentionMs:          7 * 24 * 3600 * 1000,
		RetentionBytes:       -1,
		FlushMessages:        math.MaxInt64,
		FlushMs:              math.MaxInt64,
		MaxMessageBytes:      1048588,
		MessageTimestampType: TimestampCreateTime,
		// Kafka 4's defaults: no bound in the past, an hour ahead.
		MessageTimestampBeforeMaxMs: math.MaxInt64,
		MessageTimestampAfterMaxMs:  3600000,
		FileDeleteDelayMs:           60000,

		CleanupPolicy:          CleanupDelete,
		DeleteRetentionMs:      24 * 3600 * 1000,
		MinCompactionLagMs:     0,
		MaxCompactionLagMs:     math.MaxInt64,
		MinCleanableDirtyRatio: 0.5,
	}
}

// sanitized guards the log against values that would break its invariants
// (a segment must hold at least one batch, an index at least one entry).
func (c PartitionConfig) sanitized() PartitionConfig {
	if c.SegmentBytes < 14 {
		c.SegmentBytes = 14 // Kafka's minimum
	}
	if c.SegmentIndexBytes < timeEntrySize*2 {
		c.SegmentIndexBytes = timeEntrySize * 2
	}
	if c.IndexIntervalBytes < 0 {
		c.IndexIntervalBytes = 0
	}
	if c.SegmentMs <= 0 {
		c.SegmentMs = 1
	}
	c.CleanupPolicy = normalizePolicy(c.CleanupPolicy)
	if c.MaxCompactionLagMs <= 0 {
		c.MaxCompactionLagMs = math.MaxInt64
	}
	if c.MinCompactionLagMs < 0 {
		c.MinCompactionLagMs = 0
	}
	return c
}

// normalizePolicy turns a cleanup.policy list in any order and spacing into
// one of the three canonical values. Unknown entries are ignored (the config
// layer rejects them); a list naming neither policy means "delete".
func normalizePolicy(s string) string {
	var del, compact bool
	for _, f := range strings.Split(s, ",") {
		switch strings.ToLower(strings.TrimSpace(f)) {
		case CleanupDelete:
			del = true
		case CleanupCompact:
			compact = true
		}
	}
	switch {
	case compact && del:
		return CleanupCompactDelete
	case compact:
		return CleanupCompact
	default:
		return CleanupDelete
	}
}

// compact reports whether the log cleaner works on the partition.
func (c *PartitionConfig) compact() bool {
	return c.CleanupPolicy == CleanupCompact || c.CleanupPolicy == CleanupCompactDelete
}

// deletes reports whether retention.ms and retention.bytes delete segments.
// With "compact" alone they do not (Kafka applies retention only when the
// policy names delete).
func (c *PartitionConfig) deletes() bool {
	return c.CleanupPolicy != CleanupCompact
}

// rollMs is how old the active segment may get before it rolls: segment.ms,
// or max.compaction.lag.ms if smaller on a compacted topic, so that a dirty
// record never waits in the active segment (which is never cleaned) longer
// than the lag allows. Kafka's LogConfig.maxSegmentMs does the same.
func (c *PartitionConfig) rollMs() int64 {
	if c.compact() && c.MaxCompactionLagMs > 0 && c.MaxCompactionLagMs < c.SegmentMs {
		return c.MaxCompactionLagMs
	}
	return c.SegmentMs
}
