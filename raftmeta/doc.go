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
//     producer-id allocation, consumer group config overrides, and ACLs and
//     salted SCRAM credentials (security.go). Each
//     applied entry yields a new immutable Image sharing unchanged parts
//     with the previous one; readers never lock.
//   - Records (records.go, codec.go) are the versioned binary changes an
//     entry carries; one entry's records apply atomically.
//   - TCPTransport (transport_tcp.go) carries raft messages between quorum
//     members: one outbound connection and bounded queue per peer,
//     length-prefixed frames, a hello that names the sender so frames from
//     unknown nodes are refused.
//   - Decider (decisions.go, decisions_cluster.go) turns requests into
//     records against an image, with no I/O: topics and configs, and the
//     cluster's liveness (fencing on session expiry, unfencing on heartbeat,
//     controlled shutdown, AlterPartition, leader elections, rack-aware
//     placement), partition reassignment and broker unregistration
//     (reassign.go), ACL creation and deletion, and SCRAM credential
//     changes (security.go). Controller (controller.go, controller_cluster.go,
//     controller_security.go) runs
//     decisions one at a time on the leader and proposes their records; it
//     keeps broker sessions in memory and fences expired ones (Run).
//
// Membership: voters come from controller.quorum.voters; brokers that only
// follow the log (process.roles=broker) are raft learners, never elected.
// Learners are either part of the initial membership (Config.Learners, the
// same on every node) or added later by the leader with AddLearner, a
// configuration change in the log. A leader sends its latest snapshot to a
// member whose log ends before the compacted prefix; after a membership
// change every node snapshots at once, so that snapshot includes the new
// member.
//
// A brand-new log is bootstrapped with a snapshot at index 1 holding the
// voter set (controller.quorum.voters), the configured learners, the
// cluster id and any bootstrap records (Config.Bootstrap: the SCRAM
// credentials of storage format --add-scram), so every node formatted
// alike starts from identical state.
// Every node must be given the same cluster id: a node that makes up its
// own would diverge from the others. Restart restores the image
// from the latest snapshot and re-applies the committed entries after it
// before Start returns.
//
// Raft ids are Kafka node ids plus one: raft reserves 0.
package raftmeta
