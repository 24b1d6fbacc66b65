// Package raftmeta is shoal's metadata quorum: a KRaft-style replicated log
// of metadata records, built on etcd raft, and the state machine and
// controller logic on top of it.
//
// The pieces, from the disk up:
//
//   - storage (storage.go) implements raft.Storage over pebble: entries, hard
//     state, membership and the latest snapshot, all written with pebble.Sync
//     before raft is told they are durable, and mirrored in memory.
//   - Node (node.go, ready.go) owns a raft.RawNode driven by one goroutine,
//     the Ready loop. It persists each Ready, hands messages to a Transport,
//     applies committed entries to the image and answers proposals. Every
//     SnapshotEvery entries it snapshots the image and compacts the log.
//   - Image (image.go) is the state machine: brokers, topics, partitions,
//     producer-id allocation and consumer group config overrides. Each
//     applied entry yields a new immutable Image sharing unchanged parts
//     with the previous one; readers never lock.
//   - Records (records.go, codec.go) are the versioned binary changes an
//     entry carries; one entry's records apply atomically.
//   - Decider (decisions.go) turns requests into records against an image,
//     with no I/O; Controller (controller.go) runs decisions one at a time
//     on the leader and proposes their records.
//
// A brand-new log is bootstrapped with a snapshot at index 1 holding the
// voter set (controller.quorum.voters) and the cluster id, so every voter
// formatted alike starts from identical state. Restart restores the image
// from the latest snapshot and re-applies the committed entries after it
// before Start returns.
//
// Raft ids are Kafka node ids plus one: raft reserves 0.
package raftmeta
