package log

import "math"

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
	FileDeleteDelayMs    int64  // file.delete.delay.ms: accepted, segments are deleted at once (readers never see a removed segment)
}

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
		FileDeleteDelayMs:    60000,
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
	return c
}
