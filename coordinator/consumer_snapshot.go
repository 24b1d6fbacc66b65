package coordinator

import (
	"encoding/binary"
	"fmt"
	"time"
)

// Durable state of a consumer group: one group record and one record per
// member, so that a heartbeat that changes one member rewrites that member
// only (Kafka splits its KIP-848 state the same way).
//
// Group record, key groupKey(keyConsumerGroup, group) (integers varint
// unless noted):
//
//	magic 'C', version byte 2
//	group epoch, assignment epoch, metadata fingerprint (8 bytes big endian)
//	regex count, then per regex: regex, resolved name count, names
//
// Version 1 was the whole group in one record: the version 2 fields, then a
// member count and that many member bodies. It is still read, so a log
// written before the split loads.
//
// Member record, key memberKey(group, member); a tombstone when the member
// left:
//
//	magic 'M', version byte 1, member body
//
// Member body:
//
//	id, instance?, rack?, client id, client host, rebalance timeout,
//	epoch, previous epoch, state byte, names?, regex?, assignor?,
//	assigned, pending, target
//
// x? is a presence byte (0/1) followed by x; a string is a length and bytes;
// an assignment is a topic count and per topic 16 id bytes, a partition count
// and the partitions.
const (
	consumerSnapMagic         = 'C'
	consumerSnapVersion       = 2
	consumerSnapVersionWhole  = 1
	consumerMemberMagic       = 'M'
	consumerMemberVersion     = 1
	consumerSnapMaxList       = 1 << 20
	consumerMemberHeaderBytes = 2
)

// takeRecords appends the records of what changed since the last call:
// the group record if the group's own fields changed, and a record (or a
// tombstone) for every changed member, in member id order.
func (g *ConsumerGroup) takeRecords(out []Record) []Record {
	if g.dirtyHeader {
		out = append(out, Record{Key: groupKey(keyConsumerGroup, g.id), Value: g.encodeHeader()})
		g.dirtyHeader = false
	}
	for _, id := range sortedKeys(g.dirtyMembers) {
		r := Record{Key: memberKey(g.id, id)}
		if m, ok := g.members[id]; ok {
			r.Value = g.appendMember([]byte{consumerMemberMagic, consumerMemberVersion}, m)
		}
		out = append(out, r)
	}
	g.clearDirtyMembers()
	return out
}

// clearDirtyMembers empties dirtyMembers. A cleared Go map keeps its
// buckets and iterating it stays proportional to them, so the map a new
// target assignment filled with every member is replaced rather than
// cleared: otherwise every later heartbeat would walk 10,000 empty slots.
func (g *ConsumerGroup) clearDirtyMembers() {
	if len(g.dirtyMembers) > 64 {
		g.dirtyMembers = make(map[string]bool)
		return
	}
	clear(g.dirtyMembers)
}

func (g *ConsumerGroup) encodeHeader() []byte {
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
	return b
}

func (g *ConsumerGroup) appendMember(b []byte, m *consumerMember) []byte {
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
	return snapAppendAssignment(b, g.target[m.id])
}

// restoreConsumerGroupRecord applies a group record to g, which is nil when
// the shard has no consumer group of that id yet (its members' records may
// come first: a compacted log keeps each key's latest record in the order
// they were written, and the store loads in key order). It returns the
// group.
func restoreConsumerGroupRecord(g *ConsumerGroup, id string, cfg ConsumerConfig, b []byte, now time.Time) (*ConsumerGroup, error) {
	version, err := snapVersion(b, consumerSnapMagic, "consumer group record", consumerSnapVersion, consumerSnapVersionWhole)
	if err != nil {
		return nil, err
	}
	d := &snapDecoder{b: b[2:], maxCount: consumerSnapMaxList}
	groupEpoch := d.int32()
	assignmentEpoch := d.int32()
	metaHash := d.uint64()
	regexes := map[string][]string{}
	nre := d.count()
	for i := 0; i < nre && d.err == nil; i++ {
		re := d.string()
		regexes[re] = d.strings()
	}
	if d.err != nil {
		return nil, fmt.Errorf("consumer group record: %w", d.err)
	}
	if g == nil || version == consumerSnapVersionWhole {
		g = NewConsumerGroup(id, cfg)
	}
	g.groupEpoch, g.assignmentEpoch, g.metaHash, g.regexes = groupEpoch, assignmentEpoch, metaHash, regexes
	if version == consumerSnapVersionWhole {
		nm := d.count()
		for i := 0; i < nm && d.err == nil; i++ {
			if err := g.restoreMember(d, "", now); err != nil {
				return nil, err
			}
		}
		// Rewrite the group in today's format (a group record and one
		// record per member) at the next Drain: until then the whole
		// record stays the latest value of the group's key, and once
		// compaction drops the tombstones of members who left since, a
		// load would bring them back from it.
		g.dirtyHeader = true
		for id := range g.members {
			g.markMember(id)
		}
	}
	if err := d.end("consumer group record"); err != nil {
		return nil, err
	}
	return g, nil
}

// restoreMemberRecord applies member memberID's record (nil: the member
// left) to g.
func (g *ConsumerGroup) restoreMemberRecord(memberID string, b []byte, now time.Time) error {
	if b == nil {
		if m, ok := g.members[memberID]; ok {
			g.consumerRemove(m)
		}
		g.clearDirtyMembers()
		return nil
	}
	if _, err := snapVersion(b, consumerMemberMagic, "consumer member record", consumerMemberVersion); err != nil {
		return err
	}
	d := &snapDecoder{b: b[consumerMemberHeaderBytes:], maxCount: consumerSnapMaxList}
	if err := g.restoreMember(d, memberID, now); err != nil {
		return err
	}
	return d.end("consumer member record")
}

// restoreMember decodes one member body and puts the member in g,
// replacing a member of the same id. A non-empty want is the id the
// record's key names, which the body must match. The member gets a fresh
// session deadline (and, if it is revoking, a fresh rebalance deadline)
// counted from now.
func (g *ConsumerGroup) restoreMember(d *snapDecoder, want string, now time.Time) error {
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
	assigned := d.assignment()
	pending := d.assignment()
	target := d.assignment()
	if d.err != nil {
		return fmt.Errorf("consumer member record: %w", d.err)
	}
	if m.id == "" || (want != "" && m.id != want) {
		return fmt.Errorf("consumer member record: member id %q under key %q", m.id, want)
	}
	if m.state != consumerStable && m.state != consumerUnrevoked && m.state != consumerUnreleased {
		return fmt.Errorf("consumer member record: member %s has unknown state %d", m.id, m.state)
	}
	if old, ok := g.members[m.id]; ok {
		g.consumerRemove(old)
	}
	if m.instanceID != nil {
		// A static member that replaced another may be restored before
		// the tombstone of the one it replaced.
		g.static[*m.instanceID] = m.id
	}
	m.sessionDeadline = now.Add(g.cfg.SessionTimeout)
	if m.state == consumerUnrevoked {
		m.rebalanceDeadline = now.Add(time.Duration(m.rebalanceTimeout) * time.Millisecond)
	}
	g.members[m.id] = m
	g.consumerSetHoldings(m, assigned, pending)
	g.target[m.id] = target
	g.armTimer(m)
	g.clearDirtyMembers()
	return nil
}
