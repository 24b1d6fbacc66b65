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
	b = classicAppendString(b, g.protocolType)
	b = classicAppendString(b, g.protocol)
	b = classicAppendString(b, g.leader)
	var ms []*classicMember
	g.each(func(m *classicMember) {
		if m.inGeneration {
			ms = append(ms, m)
		}
	})
	b = binary.AppendUvarint(b, uint64(len(ms)))
	for _, m := range ms {
		b = classicAppendString(b, m.id)
		b = classicAppendString(b, m.instanceID)
		b = classicAppendString(b, m.clientID)
		b = classicAppendString(b, m.clientHost)
		b = binary.AppendVarint(b, m.sessionTimeout.Milliseconds())
		b = binary.AppendVarint(b, m.rebalanceTimeout.Milliseconds())
		b = classicAppendBytes(b, m.metadata(g.protocol))
		b = classicAppendBytes(b, m.assignment)
	}
	return b
}

func classicAppendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func classicAppendBytes(b, v []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
}

// classicReader decodes a snapshot; every length is checked against what
// is left, so a corrupt snapshot cannot make it allocate more than its own
// size.
type classicReader struct {
	b   []byte
	err error
}

func (r *classicReader) fail() {
	if r.err == nil {
		r.err = errClassicSnapshot
	}
}

func (r *classicReader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail()
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *classicReader) varint() int64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail()
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *classicReader) bytes() []byte {
	n := r.uvarint()
	if r.err != nil {
		return nil
	}
	if n > uint64(len(r.b)) {
		r.fail()
		return nil
	}
	v := append([]byte(nil), r.b[:n]...)
	r.b = r.b[n:]
	return v
}

func (r *classicReader) string() string { return string(r.bytes()) }

func (r *classicReader) millis() time.Duration {
	v := r.varint()
	if v < 0 || v > classicMaxSnapshotMillis {
		r.fail()
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
	r := &classicReader{b: b[2:]}
	g := NewClassicGroup(id, cfg)
	gen := r.varint()
	if gen < 0 || gen > 1<<31-1 {
		r.fail()
	}
	g.generation = int32(gen)
	g.protocolType = r.string()
	g.protocol = r.string()
	leader := r.string()
	n := r.uvarint()
	if n > uint64(len(r.b)) {
		r.fail()
	}
	for i := uint64(0); i < n && r.err == nil; i++ {
		m := &classicMember{inGeneration: true}
		m.id = r.string()
		m.instanceID = r.string()
		m.clientID = r.string()
		m.clientHost = r.string()
		m.sessionTimeout = r.millis()
		m.rebalanceTimeout = r.millis()
		md := r.bytes()
		m.assignment = r.bytes()
		if r.err != nil {
			break
		}
		if m.id == "" || g.members[m.id] != nil || (m.instanceID != "" && g.static[m.instanceID] != "") {
			r.fail()
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
	if r.err == nil && len(r.b) != 0 {
		r.fail()
	}
	if r.err != nil {
		return nil, r.err
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
