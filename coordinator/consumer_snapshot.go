package coordinator

import (
	"encoding/binary"
	"errors"
	"fmt"
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

	res := sortedKeys(g.regexes)
	b = binary.AppendUvarint(b, uint64(len(res)))
	for _, re := range res {
		b = snapAppendString(b, re)
		b = snapAppendStrings(b, g.regexes[re])
	}

	ids := sortedKeys(g.members)
	b = binary.AppendUvarint(b, uint64(len(ids)))
	for _, id := range ids {
		m := g.members[id]
		b = snapAppendString(b, m.id)
		b = snapAppendOptString(b, m.instanceID)
		b = snapAppendOptString(b, m.rackID)
		b = snapAppendString(b, m.clientID)
		b = snapAppendString(b, m.clientHost)
		b = binary.AppendVarint(b, int64(m.rebalanceTimeout))
		b = binary.AppendVarint(b, int64(m.epoch))
		b = binary.AppendVarint(b, int64(m.prevEpoch))
		b = append(b, byte(m.state))
		if m.names == nil {
			b = append(b, 0)
		} else {
			b = append(b, 1)
			b = snapAppendStrings(b, m.names)
		}
		b = snapAppendOptString(b, m.regex)
		b = snapAppendOptString(b, m.assignor)
		b = snapAppendAssignment(b, m.assigned)
		b = snapAppendAssignment(b, m.pending)
		b = snapAppendAssignment(b, g.target[id])
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
	d := &snapDecoder{b: b[2:], maxCount: consumerSnapMaxList}
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
