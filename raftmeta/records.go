package raftmeta

import "fmt"

// A Record is one change to the metadata image. The active controller turns
// requests into records; every node applies committed records, in log order,
// to its image (see Image.apply). Records carry decisions, not requests: the
// controller has already chosen topic ids, replica placement and producer id
// ranges, so applying a record needs no randomness and no outside state and
// gives the same image on every node.
//
// Records are sealed to this package: the set of types is part of the on-disk
// format.
type Record interface {
	recordType() recordType
	encode(e *encoder)
}

// recordType is the first byte of an encoded record. Values are part of the
// on-disk format: never reuse or renumber them.
type recordType byte

const (
	typeRegisterBroker      recordType = 1
	typeCreateTopic         recordType = 2
	typeDeleteTopic         recordType = 3
	typeCreatePartitions    recordType = 4
	typeAlterTopicConfigs   recordType = 5
	typeAllocateProducerIDs recordType = 6
	typeChangePartition     recordType = 7
	typeAlterGroupConfigs   recordType = 8
	typeFenceBroker         recordType = 9
	typeUnfenceBroker       recordType = 10
	// Security records (security.go).
	typeCreateACL             recordType = 11
	typeDeleteACL             recordType = 12
	typeUpsertScramCredential recordType = 13
	typeDeleteScramCredential recordType = 14
	// Operations records (quotas.go, broker_configs.go).
	typeAlterClientQuota   recordType = 15
	typeAlterBrokerConfigs recordType = 16
	// Reassignment records (reassign.go).
	typeUnregisterBroker recordType = 17
)

// recordVersion is written after the type byte of every record. A record body
// is length-prefixed, so a later version may append fields that older readers
// skip; a change that older readers cannot skip needs a new version, which
// they refuse.
const recordVersion = 0

// RegisterBroker registers (or re-registers, after a restart) a broker. Apply
// sets Broker.Epoch to the raft index of the entry holding the record, so a
// new registration always yields a larger epoch, and unfences the broker.
type RegisterBroker struct {
	ID            int32
	IncarnationID [16]byte
	Endpoints     []Endpoint
	Rack          string
}

// CreateTopic creates a topic with its complete initial partition states.
type CreateTopic struct {
	Name       string
	ID         [16]byte
	Configs    map[string]string
	Partitions []PartitionState
}

// DeleteTopic removes a topic, identified by id so that a delete never hits a
// later topic that reuses the name.
type DeleteTopic struct {
	ID [16]byte
}

// CreatePartitions appends partitions to a topic; New[0] becomes partition
// len(existing).
type CreatePartitions struct {
	TopicID [16]byte
	New     []PartitionState
}

// AlterTopicConfigs changes a topic's config overrides incrementally.
type AlterTopicConfigs struct {
	TopicID [16]byte
	Set     map[string]string
	Delete  []string
}

// AlterGroupConfigs changes a consumer group's config overrides
// incrementally. Groups need not exist in the image: overrides are kept by
// group id, and a group left with no overrides is dropped.
type AlterGroupConfigs struct {
	Group  string
	Set    map[string]string
	Delete []string
}

// AllocateProducerIDs hands the block [First, First+Count) to a broker. First
// must equal the image's NextProducerID when the record is applied, which
// makes a block allocated from a stale image fail instead of overlapping.
type AllocateProducerIDs struct {
	BrokerID int32
	First    int64
	Count    int64
}

// ChangePartition replaces the leadership state of one partition (leader
// election, ISR change, reassignment). PartitionEpoch must increase, which
// fences changes decided from a stale view of the partition.
type ChangePartition struct {
	TopicID   [16]byte
	Partition int32
	// Replicas is the new replica set; nil leaves it, Adding and Removing
	// unchanged.
	Replicas       []int32
	ISR            []int32
	Leader         int32
	LeaderEpoch    int32
	PartitionEpoch int32
	// Adding and Removing are the reassignment in progress once the
	// record applies (see PartitionState), set together with Replicas:
	// a replica set change always redefines the reassignment. Kafka's
	// PartitionChangeRecord carries them the same way.
	Adding   []int32
	Removing []int32
}

// FenceBroker fences a registered broker: its session expired, or it shut
// down in a controlled way. A fenced broker gets no new replicas and is
// never elected leader. Epoch must be the broker's current epoch, so a fence
// decided before a re-registration does not hit the new incarnation.
type FenceBroker struct {
	ID    int32
	Epoch int64
}

// UnfenceBroker unfences a broker that heartbeats again with its current
// epoch.
type UnfenceBroker struct {
	ID    int32
	Epoch int64
}

func (*RegisterBroker) recordType() recordType      { return typeRegisterBroker }
func (*FenceBroker) recordType() recordType         { return typeFenceBroker }
func (*UnfenceBroker) recordType() recordType       { return typeUnfenceBroker }
func (*CreateTopic) recordType() recordType         { return typeCreateTopic }
func (*DeleteTopic) recordType() recordType         { return typeDeleteTopic }
func (*CreatePartitions) recordType() recordType    { return typeCreatePartitions }
func (*AlterTopicConfigs) recordType() recordType   { return typeAlterTopicConfigs }
func (*AllocateProducerIDs) recordType() recordType { return typeAllocateProducerIDs }
func (*ChangePartition) recordType() recordType     { return typeChangePartition }
func (*AlterGroupConfigs) recordType() recordType   { return typeAlterGroupConfigs }

func (r *RegisterBroker) encode(e *encoder) {
	e.i32(r.ID)
	e.uuid(r.IncarnationID)
	encodeEndpoints(e, r.Endpoints)
	e.str(r.Rack)
}

func (r *FenceBroker) encode(e *encoder) {
	e.i32(r.ID)
	e.varint(r.Epoch)
}

func (r *UnfenceBroker) encode(e *encoder) {
	e.i32(r.ID)
	e.varint(r.Epoch)
}

func (r *CreateTopic) encode(e *encoder) {
	e.str(r.Name)
	e.uuid(r.ID)
	e.strMap(r.Configs)
	encodePartitions(e, r.Partitions)
}

func (r *DeleteTopic) encode(e *encoder) { e.uuid(r.ID) }

func (r *CreatePartitions) encode(e *encoder) {
	e.uuid(r.TopicID)
	encodePartitions(e, r.New)
}

func (r *AlterTopicConfigs) encode(e *encoder) {
	e.uuid(r.TopicID)
	e.strMap(r.Set)
	e.strs(r.Delete)
}

func (r *AlterGroupConfigs) encode(e *encoder) {
	e.str(r.Group)
	e.strMap(r.Set)
	e.strs(r.Delete)
}

func (r *AllocateProducerIDs) encode(e *encoder) {
	e.i32(r.BrokerID)
	e.varint(r.First)
	e.varint(r.Count)
}

func (r *ChangePartition) encode(e *encoder) {
	e.uuid(r.TopicID)
	e.i32(r.Partition)
	e.bool(r.Replicas != nil)
	if r.Replicas != nil {
		e.i32s(r.Replicas)
	}
	e.i32s(r.ISR)
	e.i32(r.Leader)
	e.i32(r.LeaderEpoch)
	e.i32(r.PartitionEpoch)
	// Appended after the original fields, so records written before
	// reassignments existed (which never change Replicas) still decode.
	if r.Replicas != nil {
		e.i32s(r.Adding)
		e.i32s(r.Removing)
	}
}

func encodeEndpoints(e *encoder, eps []Endpoint) {
	encodeList(e, eps, func(e *encoder, ep Endpoint) {
		e.str(ep.Listener)
		e.str(ep.Host)
		e.i32(ep.Port)
		e.str(ep.SecurityProtocol)
	})
}

func decodeEndpoints(d *decoder) []Endpoint {
	return decodeList(d, func(d *decoder) Endpoint {
		return Endpoint{Listener: d.str(), Host: d.str(), Port: d.i32(), SecurityProtocol: d.str()}
	})
}

func encodePartitions(e *encoder, ps []PartitionState) {
	encodeList(e, ps, func(e *encoder, p PartitionState) {
		e.i32s(p.Replicas)
		e.i32s(p.ISR)
		e.i32(p.Leader)
		e.i32(p.LeaderEpoch)
		e.i32(p.PartitionEpoch)
	})
}

func decodePartitions(d *decoder) []PartitionState {
	return decodeList(d, func(d *decoder) PartitionState {
		return PartitionState{Replicas: d.i32s(), ISR: d.i32s(), Leader: d.i32(), LeaderEpoch: d.i32(), PartitionEpoch: d.i32()}
	})
}

// encodeRecord writes r as frameRecord frames it.
func encodeRecord(e *encoder, r Record) {
	var body encoder
	r.encode(&body)
	frameRecord(e, r.recordType(), body.b)
}

// frameRecord writes type, version, body length and body.
func frameRecord(e *encoder, typ recordType, body []byte) {
	e.u8(byte(typ))
	e.u8(recordVersion)
	e.uvarint(uint64(len(body)))
	e.b = append(e.b, body...)
}

func decodeRecord(d *decoder) (Record, error) {
	typ := recordType(d.u8())
	version := d.u8()
	body := d.raw(d.count())
	if err := d.done(); err != nil {
		return nil, err
	}
	if version > recordVersion {
		return nil, fmt.Errorf("raftmeta: record type %d version %d is newer than this software understands (%d)", typ, version, recordVersion)
	}
	bd := &decoder{b: body}
	var r Record
	switch typ {
	case typeRegisterBroker:
		r = &RegisterBroker{ID: bd.i32(), IncarnationID: bd.uuid(), Endpoints: decodeEndpoints(bd), Rack: bd.str()}
	case typeCreateTopic:
		r = &CreateTopic{Name: bd.str(), ID: bd.uuid(), Configs: bd.strMap(), Partitions: decodePartitions(bd)}
	case typeDeleteTopic:
		r = &DeleteTopic{ID: bd.uuid()}
	case typeCreatePartitions:
		r = &CreatePartitions{TopicID: bd.uuid(), New: decodePartitions(bd)}
	case typeAlterTopicConfigs:
		r = &AlterTopicConfigs{TopicID: bd.uuid(), Set: bd.strMap(), Delete: bd.strs()}
	case typeAllocateProducerIDs:
		r = &AllocateProducerIDs{BrokerID: bd.i32(), First: bd.varint(), Count: bd.varint()}
	case typeChangePartition:
		cp := &ChangePartition{TopicID: bd.uuid(), Partition: bd.i32()}
		if bd.bool() {
			cp.Replicas = bd.i32s()
			if cp.Replicas == nil {
				cp.Replicas = []int32{}
			}
		}
		cp.ISR = bd.i32s()
		cp.Leader = bd.i32()
		cp.LeaderEpoch = bd.i32()
		cp.PartitionEpoch = bd.i32()
		if cp.Replicas != nil && len(bd.b) > 0 {
			cp.Adding = bd.i32s()
			cp.Removing = bd.i32s()
		}
		r = cp
	case typeAlterGroupConfigs:
		r = &AlterGroupConfigs{Group: bd.str(), Set: bd.strMap(), Delete: bd.strs()}
	case typeFenceBroker:
		r = &FenceBroker{ID: bd.i32(), Epoch: bd.varint()}
	case typeUnfenceBroker:
		r = &UnfenceBroker{ID: bd.i32(), Epoch: bd.varint()}
	case typeAlterClientQuota:
		r = decodeAlterClientQuota(bd)
	case typeAlterBrokerConfigs:
		r = &AlterBrokerConfigs{Broker: bd.str(), Set: bd.strMap(), Delete: bd.strs()}
	case typeUnregisterBroker:
		r = &UnregisterBroker{ID: bd.i32(), Epoch: bd.varint()}
	default:
		var ok bool
		if r, ok = decodeSecurityRecord(typ, bd); !ok {
			return nil, corruptf("unknown record type %d", typ)
		}
	}
	// Trailing bytes in bd are fields from a later compatible writer; they
	// are ignored on purpose.
	if err := bd.done(); err != nil {
		return nil, err
	}
	return r, nil
}

// An entry is the payload of one raft log entry: the records of one proposal,
// applied atomically, plus the proposal's identity so the proposing node can
// find its waiter when the entry is applied.
//
//	version    byte (entryVersion)
//	proposer   uint64, big endian: random per Node instance
//	seq        uvarint: per proposer, increasing
//	count      uvarint
//	records    count × (type byte, version byte, uvarint length, body)
type entry struct {
	proposer uint64
	seq      uint64
	records  []Record
}

const entryVersion = 1

func encodeEntry(en entry) []byte {
	e := &encoder{}
	e.u8(entryVersion)
	e.u64(en.proposer)
	e.uvarint(en.seq)
	e.uvarint(uint64(len(en.records)))
	for _, r := range en.records {
		encodeRecord(e, r)
	}
	return e.b
}

func decodeEntry(b []byte) (entry, error) {
	d := &decoder{b: b}
	if v := d.u8(); v != entryVersion {
		if d.err != nil {
			return entry{}, d.err
		}
		return entry{}, fmt.Errorf("raftmeta: unknown entry version %d", v)
	}
	en := entry{proposer: d.u64(), seq: d.uvarint()}
	n := d.count()
	if err := d.done(); err != nil {
		return entry{}, err
	}
	en.records = make([]Record, 0, n)
	for range n {
		r, err := decodeRecord(d)
		if err != nil {
			return entry{}, err
		}
		en.records = append(en.records, r)
	}
	if len(d.b) != 0 {
		return entry{}, corruptf("%d trailing bytes after entry", len(d.b))
	}
	return en, nil
}
