// Package log is shoal's partitioned log: per partition a directory of
// segments holding Kafka record batches (magic v2) exactly as producers sent
// them, sparse offset and time indexes, idempotent and transactional producer
// state, the last stable offset and aborted-transaction indexes, leader epoch
// history, retention, log compaction, crash recovery and group-committed
// fsync.
//
// The package works on raw batch bytes and never decodes protocol structs:
// the broker hands it one validated batch per partition (ValidateProduceBatch,
// then Partition.Append), and Fetch gets whole stored batches back
// (Partition.Read) without re-encoding. The log cleaner (cleanup.policy=compact,
// see compact.go) is the one place that rewrites batches: it drops records,
// keeping every survivor at its original offset.
//
// On-disk layout of one partition, <logdir>/<topic>-<partition>/:
//
//	00000000000000000000.log        batches back to back, named by base offset
//	00000000000000000000.index      offset index: (relative offset, position) every index.interval.bytes
//	00000000000000000000.timeindex  time index: (max timestamp so far, relative offset of its batch)
//	00000000000000000000.txnindex   aborted transactions whose abort marker is in this segment (Kafka's layout; only when there is one)
//	00000000000000001234.snapshot   producer state (sequences, open transactions, coordinator epochs) valid at offset 1234
//	leader-epoch-checkpoint         epoch -> start offset, Kafka's text format
//	offsets.checkpoint              log start offset, recovery point, high watermark
//	partition.metadata              topic id, Kafka's format
//	cleaner-offset-checkpoint       first dirty offset and pending tombstone delete horizon (compacted topics)
//	*.cleaned, *.swap               a cleaning pass in flight; Open discards or completes them
//
// Each log dir also holds a .lock file (flock) and, after a clean Close, a
// clean-shutdown marker that lets the next Open skip verification.
//
// Moving between log dirs (see alterdir.go): Manager.MovePartition copies a
// partition into <logdir>/<topic>-<partition>.<id>-future/ as a follower
// would, then swaps it in under the partition's locks (a moved-from marker
// and the rename of the future dir make the swap atomic for recovery); the
// *Partition stays the same value, its Dir changes. Manager.Futures lists
// the moves in progress for DescribeLogDirs.
//
// Durability: Append writes to the page cache. Sync (group commit across all
// partitions of a Manager), NeedsFlush (flush.messages) and FlushIfDue
// (flush.ms) decide when data is fsynced; the recovery point records how far
// it is. Everything past the recovery point is verified batch by batch after
// a crash (see recovery.go).
//
// Compaction: the broker calls Manager.Compact periodically
// (log.cleaner.backoff.ms); it cleans partitions whose dirty share reaches
// min.cleanable.dirty.ratio, whose oldest dirty record passed
// max.compaction.lag.ms, or whose cleaned tombstones reached their delete
// horizon. Partition.CompactNow forces a pass.
//
// Transactions (see txn.go): the transaction coordinator's markers go in
// through Partition.AppendMarker on the leader. Partition.LastStableOffset is
// what ListOffsets answers for read_committed, and Partition.ReadIsolated
// serves Fetch at either isolation level, with the aborted transactions a
// read_committed consumer must drop. Retention and compaction stop at the
// LSO; compaction removes aborted transactional records.
//
// Replication (see replica.go): the leader serves follower fetches with
// Partition.ReadForReplica (up to the LEO); a follower stores what it fetched
// with Partition.AppendReplicated, byte for byte, deriving indexes, leader
// epochs and producer state as the leader did, and follows the leader's HW
// with Partition.SetHighWatermarkFollower. After a leader change it truncates
// to the new leader's epoch boundary (Partition.LatestEpoch, the leader's
// Partition.EndOffsetForEpoch, then Partition.TruncateTo), or restarts its
// log at the leader's log start (Partition.TruncateFullyAndStartAt).
package log
