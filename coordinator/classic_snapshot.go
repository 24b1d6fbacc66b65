package coordinator

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// Snapshot format, version 0 (all integers are varints, strings and byte
// slices are a uvarint length then the bytes):
//
//	version byte (0)
//	flags byte: bit 0 = a rebalance was in progress
//	generation, protocol type, protocol, leader
//	member count, then per member: id, instance id, client id, client host,
//	session timeout ms, rebalance timeout ms, metadata for the protocol,
//	assignment
//
// Only members of the current generation are encoded: a member still
// joining has no durable standing, and its client rejoins after a
// coordinator move anyway.
const (
	classicSnapshotV0        = 0
	classicFlagRebalancing   = 1
	classicMaxSnapshotMillis = int64(1) << 40
)

var errClassicSnapshot = errors.New("coordinator: malformed classic group snapshot")

// Snapshot encodes the durable state of the group.
func (g *ClassicGroup) Snapshot() []byte {
	b := []byte{classicSnapshotV0, 0}
	if g.state == classicPreparingRebalance || g.state == classicCompletingRebalance {
		b[1] |= classicFlagRebalancing
	}
	b = binary.AppendVarint(b, int64(g.generation))
	b = snapAppendString(b, g.protocolType)
	b = snapAppendString(b, g.protocol)
	b = snapAppendString(b, g.leader)
	var ms []*classicMember
	g.each(func(m *classicMember) {
		if m.inGeneration {
			ms = append(ms, m)
		}
	})
	b = binary.AppendUvarint(b, uint64(len(ms)))
	for _, m := range ms {
		b = snapAppendString(b, m.id)
		b = snapAppendString(b, m.instanceID)
		b = snapAppendString(b, m.clientID)
		b = snapAppendString(b, m.clientHost)
		b = binary.AppendVarint(b, m.sessionTimeout.Milliseconds())
		b = binary.AppendVarint(b, m.rebalanceTimeout.Milliseconds())
		b = snapAppendBytes(b, m.metadata(g.protocol))
		b = snapAppendBytes(b, m.assignment)
	}
	return b
}

// classicReadMillis reads a duration in milliseconds, bounded to keep a
// corrupt snapshot from producing absurd timeouts.
func classicReadMillis(d *snapDecoder) time.Duration {
	v := d.varint()
	if v < 0 || v > classicMaxSnapshotMillis {
		d.fail("milliseconds")
		return 0
	}
	return time.Duration(v) * time.Millisecond
}

// RestoreClassicGroup rebuilds a group from a Snapshot after a coordinator
// load. Members get fresh session deadlines from now. The group resumes
// Stable (Empty without members); if a rebalance was in progress when the
// snapshot was taken, a new one starts at once, so members rejoin rather
// than keep an assignment made for a membership that no longer exists.
func RestoreClassicGroup(id string, cfg ClassicConfig, b []byte, now time.Time) (*ClassicGroup, error) {
	if len(b) < 2 {
		return nil, errClassicSnapshot
	}
	if b[0] != classicSnapshotV0 {
		return nil, fmt.Errorf("coordinator: classic group snapshot version %d unknown", b[0])
	}
	flags := b[1]
	r := &snapDecoder{b: b[2:]}
	g := NewClassicGroup(id, cfg)
	gen := r.varint()
	if gen < 0 || gen > 1<<31-1 {
		r.fail("generation")
	}
	g.generation = int32(gen)
	g.protocolType = r.string()
	g.protocol = r.string()
	leader := r.string()
	n := r.count()
	for i := 0; i < n && r.err == nil; i++ {
		m := &classicMember{inGeneration: true}
		m.id = r.string()
		m.instanceID = r.string()
		m.clientID = r.string()
		m.clientHost = r.string()
		m.sessionTimeout = classicReadMillis(r)
		m.rebalanceTimeout = classicReadMillis(r)
		md := r.bytes()
		m.assignment = r.bytes()
		if r.err != nil {
			break
		}
		if m.id == "" || g.members[m.id] != nil || (m.instanceID != "" && g.static[m.instanceID] != "") {
			r.fail("member")
			break
		}
		m.protocolType = g.protocolType
		if g.protocol != "" {
			m.protocols = []classicProtocol{{name: g.protocol, metadata: md}}
		}
		m.deadline = now.Add(m.sessionTimeout)
		g.members[m.id] = m
		g.order = append(g.order, m.id)
		if m.instanceID != "" {
			g.static[m.instanceID] = m.id
		}
	}
	if r.err != nil || len(r.b) != 0 {
		return nil, errClassicSnapshot
	}
	if len(g.members) == 0 {
		g.state = classicEmpty
		g.protocol = ""
		return g, nil
	}
	if g.protocol == "" {
		return nil, errClassicSnapshot
	}
	g.leader = leader
	if g.members[leader] == nil {
		g.leader = g.order[0]
	}
	g.state = classicStable
	if flags&classicFlagRebalancing != 0 {
		g.prepareRebalance(now)
	}
	return g, nil
}
