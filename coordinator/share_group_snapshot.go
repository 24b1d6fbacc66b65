package coordinator

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
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
	ids := g.sgMemberIDs()
	b = binary.AppendUvarint(b, uint64(len(ids)))
	for _, id := range ids {
		m := g.members[id]
		b = sgAppendString(b, m.id)
		if m.rackID == nil {
			b = append(b, 0)
		} else {
			b = sgAppendString(append(b, 1), *m.rackID)
		}
		b = sgAppendString(b, m.clientID)
		b = sgAppendString(b, m.clientHost)
		b = binary.AppendVarint(b, int64(m.epoch))
		b = binary.AppendVarint(b, int64(m.prevEpoch))
		b = binary.AppendUvarint(b, uint64(len(m.names)))
		for _, n := range m.names {
			b = sgAppendString(b, n)
		}
		b = sgAppendAssignment(b, m.assigned)
		b = sgAppendAssignment(b, g.target[id])
	}
	return b
}

// RestoreShareGroup rebuilds a group from Snapshot output. Every member's
// session starts at now. Decoding is bounded by the input: a corrupt input
// yields an error, never a large allocation.
func RestoreShareGroup(id string, cfg ShareConfig, b []byte, now time.Time) (*ShareGroup, error) {
	if len(b) < 2 || b[0] != sgSnapMagic {
		return nil, errors.New("share group snapshot: bad magic")
	}
	if b[1] != sgSnapVersion {
		return nil, fmt.Errorf("share group snapshot: unsupported version %d", b[1])
	}
	d := &sgDecoder{b: b[2:]}
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
		if d.flag() {
			r := d.string()
			m.rackID = &r
		}
		m.clientID = d.string()
		m.clientHost = d.string()
		m.epoch = d.int32()
		m.prevEpoch = d.int32()
		nn := d.count()
		names := make([]string, 0, nn)
		for j := 0; j < nn && d.err == nil; j++ {
			names = append(names, d.string())
		}
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
		g.sgSetNames(m, sgSortedUnique(names))
		g.target[m.id] = target
		m.lastSeen = now
	}
	if d.err != nil {
		return nil, fmt.Errorf("share group snapshot: %w", d.err)
	}
	if len(d.b) != 0 {
		return nil, fmt.Errorf("share group snapshot: %d trailing bytes", len(d.b))
	}
	g.dirty = false
	return g, nil
}

func sgAppendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func sgAppendAssignment(b []byte, a sgAssignment) []byte {
	ts := sgSortedTopics(a)
	b = binary.AppendUvarint(b, uint64(len(ts)))
	for _, t := range ts {
		b = append(b, t[:]...)
		b = binary.AppendUvarint(b, uint64(len(a[t])))
		for _, p := range a[t] {
			b = binary.AppendVarint(b, int64(p))
		}
	}
	return b
}

// sgDecoder reads the snapshot encoding. Every length is checked against the
// bytes left (each element takes at least one byte), so the input's size
// bounds every allocation; the first error sticks.
type sgDecoder struct {
	b   []byte
	err error
}

func (d *sgDecoder) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("truncated or invalid %s", what)
	}
}

func (d *sgDecoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail("varint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *sgDecoder) int32() int32 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 || v < math.MinInt32 || v > math.MaxInt32 {
		d.fail("int32")
		return 0
	}
	d.b = d.b[n:]
	return int32(v)
}

func (d *sgDecoder) uint64() uint64 {
	if d.err != nil {
		return 0
	}
	if len(d.b) < 8 {
		d.fail("uint64")
		return 0
	}
	v := binary.BigEndian.Uint64(d.b)
	d.b = d.b[8:]
	return v
}

func (d *sgDecoder) flag() bool {
	if d.err != nil {
		return false
	}
	if len(d.b) < 1 || d.b[0] > 1 {
		d.fail("presence flag")
		return false
	}
	v := d.b[0] == 1
	d.b = d.b[1:]
	return v
}

func (d *sgDecoder) count() int {
	n := d.uvarint()
	if d.err == nil && n > uint64(len(d.b)) {
		d.fail("list length")
		return 0
	}
	return int(n)
}

func (d *sgDecoder) string() string {
	n := d.uvarint()
	if d.err != nil {
		return ""
	}
	if n > uint64(len(d.b)) {
		d.fail("string")
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}

func (d *sgDecoder) assignment() sgAssignment {
	n := d.count()
	out := make(sgAssignment, n)
	for i := 0; i < n && d.err == nil; i++ {
		if len(d.b) < 16 {
			d.fail("topic id")
			break
		}
		var t [16]byte
		copy(t[:], d.b[:16])
		d.b = d.b[16:]
		np := d.count()
		ps := make([]int32, 0, np)
		for j := 0; j < np && d.err == nil; j++ {
			p := d.int32()
			if p < 0 {
				d.fail("partition")
			}
			ps = append(ps, p)
		}
		if np > 0 {
			out[t] = sgSortedUniqueParts(ps)
		}
	}
	return out
}
