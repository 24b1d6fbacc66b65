package coordinator

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sort"
	"time"
)

// Snapshot encoding of a consumer group (all integers varint unless noted):
//
//	magic 'C', version byte 1
//	group epoch, assignment epoch, metadata fingerprint (8 bytes big endian)
//	regex count, then per regex: regex, resolved name count, names
//	member count, then per member:
//	  id, instance?, rack?, client id, client host, rebalance timeout,
//	  epoch, previous epoch, state byte, names?, regex?, assignor?,
//	  assigned, pending, target
//
// x? is a presence byte (0/1) followed by x; a string is a length and bytes;
// an assignment is a topic count and per topic 16 id bytes, a partition count
// and the partitions.
const (
	consumerSnapMagic   = 'C'
	consumerSnapVersion = 1
	consumerSnapMaxList = 1 << 20
)

// Snapshot encodes the group's durable state.
func (g *ConsumerGroup) Snapshot() []byte {
	b := []byte{consumerSnapMagic, consumerSnapVersion}
	b = binary.AppendVarint(b, int64(g.groupEpoch))
	b = binary.AppendVarint(b, int64(g.assignmentEpoch))
	b = binary.BigEndian.AppendUint64(b, g.metaHash)

	res := make([]string, 0, len(g.regexes))
	for re := range g.regexes {
		res = append(res, re)
	}
	sort.Strings(res)
	b = binary.AppendUvarint(b, uint64(len(res)))
	for _, re := range res {
		b = consumerAppendString(b, re)
		b = consumerAppendStrings(b, g.regexes[re])
	}

	ids := g.consumerMemberIDs()
	b = binary.AppendUvarint(b, uint64(len(ids)))
	for _, id := range ids {
		m := g.members[id]
		b = consumerAppendString(b, m.id)
		b = consumerAppendOptString(b, m.instanceID)
		b = consumerAppendOptString(b, m.rackID)
		b = consumerAppendString(b, m.clientID)
		b = consumerAppendString(b, m.clientHost)
		b = binary.AppendVarint(b, int64(m.rebalanceTimeout))
		b = binary.AppendVarint(b, int64(m.epoch))
		b = binary.AppendVarint(b, int64(m.prevEpoch))
		b = append(b, byte(m.state))
		if m.names == nil {
			b = append(b, 0)
		} else {
			b = append(b, 1)
			b = consumerAppendStrings(b, m.names)
		}
		b = consumerAppendOptString(b, m.regex)
		b = consumerAppendOptString(b, m.assignor)
		b = consumerAppendAssignment(b, m.assigned)
		b = consumerAppendAssignment(b, m.pending)
		b = consumerAppendAssignment(b, g.target[id])
	}
	return b
}

// RestoreConsumerGroup rebuilds a group from Snapshot output. Every member
// gets a fresh session deadline (and, if it is revoking, a fresh rebalance
// deadline) counted from now.
func RestoreConsumerGroup(id string, cfg ConsumerConfig, b []byte, now time.Time) (*ConsumerGroup, error) {
	if len(b) < 2 || b[0] != consumerSnapMagic {
		return nil, errors.New("consumer group snapshot: bad magic")
	}
	if b[1] != consumerSnapVersion {
		return nil, fmt.Errorf("consumer group snapshot: unsupported version %d", b[1])
	}
	d := &consumerDecoder{b: b[2:]}
	g := NewConsumerGroup(id, cfg)
	g.groupEpoch = d.int32()
	g.assignmentEpoch = d.int32()
	g.metaHash = d.uint64()
	nre := d.count()
	for i := 0; i < nre && d.err == nil; i++ {
		re := d.string()
		g.regexes[re] = d.strings()
	}
	nm := d.count()
	for i := 0; i < nm && d.err == nil; i++ {
		m := &consumerMember{}
		m.id = d.string()
		m.instanceID = d.optString()
		m.rackID = d.optString()
		m.clientID = d.string()
		m.clientHost = d.string()
		m.rebalanceTimeout = d.int32()
		m.epoch = d.int32()
		m.prevEpoch = d.int32()
		m.state = consumerMemberState(d.byte())
		if d.flag() {
			m.names = d.strings()
		}
		m.regex = d.optString()
		m.assignor = d.optString()
		m.assigned = d.assignment()
		m.pending = d.assignment()
		target := d.assignment()
		if d.err != nil {
			break
		}
		if _, dup := g.members[m.id]; dup || m.id == "" {
			return nil, fmt.Errorf("consumer group snapshot: bad or duplicate member id %q", m.id)
		}
		if m.state != consumerStable && m.state != consumerUnrevoked && m.state != consumerUnreleased {
			return nil, fmt.Errorf("consumer group snapshot: member %s has unknown state %d", m.id, m.state)
		}
		if m.instanceID != nil {
			if _, dup := g.static[*m.instanceID]; dup {
				return nil, fmt.Errorf("consumer group snapshot: instance id %q held twice", *m.instanceID)
			}
			g.static[*m.instanceID] = m.id
		}
		m.sessionDeadline = now.Add(g.cfg.SessionTimeout)
		if m.state == consumerUnrevoked {
			m.rebalanceDeadline = now.Add(time.Duration(m.rebalanceTimeout) * time.Millisecond)
		}
		assigned, pending := m.assigned, m.pending
		m.assigned, m.pending = nil, nil
		g.members[m.id] = m
		g.consumerSetHoldings(m, assigned, pending)
		g.target[m.id] = target
	}
	if d.err != nil {
		return nil, fmt.Errorf("consumer group snapshot: %w", d.err)
	}
	if len(d.b) != 0 {
		return nil, fmt.Errorf("consumer group snapshot: %d trailing bytes", len(d.b))
	}
	g.dirty = false
	return g, nil
}

func consumerAppendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func consumerAppendOptString(b []byte, s *string) []byte {
	if s == nil {
		return append(b, 0)
	}
	return consumerAppendString(append(b, 1), *s)
}

func consumerAppendStrings(b []byte, ss []string) []byte {
	b = binary.AppendUvarint(b, uint64(len(ss)))
	for _, s := range ss {
		b = consumerAppendString(b, s)
	}
	return b
}

func consumerAppendAssignment(b []byte, a consumerAssignment) []byte {
	ts := consumerSortedTopics(a)
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

// consumerDecoder reads the snapshot encoding. Every length is checked against
// the bytes left, so a corrupt input cannot make it allocate more than the
// input's size; the first error sticks.
type consumerDecoder struct {
	b   []byte
	err error
}

func (d *consumerDecoder) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("truncated or invalid %s", what)
	}
}

func (d *consumerDecoder) uvarint() uint64 {
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

func (d *consumerDecoder) int32() int32 {
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

func (d *consumerDecoder) uint64() uint64 {
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

func (d *consumerDecoder) byte() byte {
	if d.err != nil {
		return 0
	}
	if len(d.b) < 1 {
		d.fail("byte")
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

func (d *consumerDecoder) flag() bool {
	switch d.byte() {
	case 0:
		return false
	case 1:
		return true
	}
	d.fail("presence flag")
	return false
}

// count reads a list length; each element takes at least one byte.
func (d *consumerDecoder) count() int {
	n := d.uvarint()
	if d.err == nil && (n > uint64(len(d.b)) || n > consumerSnapMaxList) {
		d.fail("list length")
		return 0
	}
	return int(n)
}

func (d *consumerDecoder) string() string {
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

func (d *consumerDecoder) optString() *string {
	if !d.flag() {
		return nil
	}
	s := d.string()
	return &s
}

func (d *consumerDecoder) strings() []string {
	n := d.count()
	out := make([]string, 0, n)
	for i := 0; i < n && d.err == nil; i++ {
		out = append(out, d.string())
	}
	return out
}

func (d *consumerDecoder) assignment() consumerAssignment {
	n := d.count()
	out := make(consumerAssignment, n)
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
			out[t] = ps
		}
	}
	return consumerNormalize(out)
}
