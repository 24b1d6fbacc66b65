package coordinator

import (
	"encoding/binary"
	"fmt"
	"time"
)

// Snapshot encoding of a share group (integers are varints unless noted):
//
//	magic 'S', version byte 1
//	group epoch, assignment epoch, metadata fingerprint (8 bytes big endian)
//	member count, then per member:
//	  id, rack?, client id, client host, epoch, previous epoch,
//	  subscribed names, assigned, target
//
// rack? is a presence byte (0/1) followed by the string; a string is a length
// and its bytes; names are a count and strings; an assignment is a topic count
// and per topic 16 id bytes, a partition count and the partitions.
//
// Session timers and per-group overrides are not part of it: a restored
// group starts every session afresh and the caller re-applies overrides.
const (
	sgSnapMagic   = 'S'
	sgSnapVersion = 1
)

// Snapshot encodes the group's durable state.
func (g *ShareGroup) Snapshot() []byte {
	b := []byte{sgSnapMagic, sgSnapVersion}
	b = binary.AppendVarint(b, int64(g.groupEpoch))
	b = binary.AppendVarint(b, int64(g.assignmentEpoch))
	b = binary.BigEndian.AppendUint64(b, g.metaHash)
	ids := sortedKeys(g.members)
	b = binary.AppendUvarint(b, uint64(len(ids)))
	for _, id := range ids {
		m := g.members[id]
		b = snapAppendString(b, m.id)
		b = snapAppendOptString(b, m.rackID)
		b = snapAppendString(b, m.clientID)
		b = snapAppendString(b, m.clientHost)
		b = binary.AppendVarint(b, int64(m.epoch))
		b = binary.AppendVarint(b, int64(m.prevEpoch))
		b = snapAppendStrings(b, m.names)
		b = snapAppendAssignment(b, m.assigned)
		b = snapAppendAssignment(b, g.target[id])
	}
	return b
}

// RestoreShareGroup rebuilds a group from Snapshot output. Every member's
// session starts at now. Decoding is bounded by the input: a corrupt input
// yields an error, never a large allocation.
func RestoreShareGroup(id string, cfg ShareConfig, b []byte, now time.Time) (*ShareGroup, error) {
	if _, err := snapVersion(b, sgSnapMagic, "share group snapshot", sgSnapVersion); err != nil {
		return nil, err
	}
	d := &snapDecoder{b: b[2:]}
	g := NewShareGroup(id, cfg)
	g.groupEpoch = d.int32()
	g.assignmentEpoch = d.int32()
	g.metaHash = d.uint64()
	if d.err == nil && (g.groupEpoch < 0 || g.assignmentEpoch < 0 || g.assignmentEpoch > g.groupEpoch) {
		return nil, fmt.Errorf("share group snapshot: bad epochs %d/%d", g.groupEpoch, g.assignmentEpoch)
	}
	n := d.count()
	for i := 0; i < n && d.err == nil; i++ {
		m := &sgMember{}
		m.id = d.string()
		m.rackID = d.optString()
		m.clientID = d.string()
		m.clientHost = d.string()
		m.epoch = d.int32()
		m.prevEpoch = d.int32()
		names := d.strings()
		m.assigned = d.assignment()
		target := d.assignment()
		if d.err != nil {
			break
		}
		if _, dup := g.members[m.id]; dup || m.id == "" {
			return nil, fmt.Errorf("share group snapshot: bad or duplicate member id %q", m.id)
		}
		if m.epoch < 0 || m.prevEpoch < 0 {
			return nil, fmt.Errorf("share group snapshot: member %s has a negative epoch", m.id)
		}
		g.members[m.id] = m
		g.sgSetNames(m, sortedUniqueStrings(names))
		g.target[m.id] = target
		m.lastSeen = now
	}
	if err := d.end("share group snapshot"); err != nil {
		return nil, err
	}
	g.dirty = false
	return g, nil
}
