package raftmeta

import (
	"fmt"

	"maps"
	"slices"

	"github.com/shoalmq/shoal/acl"
	"github.com/shoalmq/shoal/quota"

	"github.com/twmb/franz-go/pkg/kerr"
)

// Image is the metadata state machine: the result of applying every
// committed record up to Applied.
//
// An Image is immutable once published. Applying records builds a new Image
// that shares every unchanged Broker and Topic (and every unchanged map) with
// its predecessor, so readers hold an *Image without locks and a change
// costs a copy of the maps it touches, not of the whole image. Callers must
// not modify an Image or anything reachable from it.
type Image struct {
	ClusterID string
	// Applied is the raft index of the last entry applied.
	Applied uint64
	Brokers map[int32]*Broker
	// Topics holds live topics by name; deleted topics are removed at once.
	Topics   map[string]*Topic
	TopicIDs map[[16]byte]string
	// NextProducerID is the first producer id not yet handed out.
	NextProducerID int64
	// GroupConfigs holds consumer groups' config overrides by group id. A
	// group without overrides has no entry, so no inner map is empty.
	GroupConfigs map[string]map[string]string
	// ACLs holds the ACL bindings by id.
	ACLs map[[16]byte]acl.Binding
	// Scram holds SCRAM credentials by user and mechanism.
	Scram map[ScramKey]ScramCredential
	// ClientQuotas holds client quotas by entity; an entity without keys
	// has no entry.
	ClientQuotas quota.Quotas
	// BrokerConfigs holds dynamic broker config overrides by BROKER
	// resource name: a broker id, or "" for the cluster default. A
	// resource without overrides has no entry.
	BrokerConfigs map[string]map[string]string
}

// Endpoint is one advertised listener of a broker.
type Endpoint struct {
	Listener         string
	Host             string
	Port             int32
	SecurityProtocol string
}

// Broker is a registered broker.
type Broker struct {
	ID            int32
	IncarnationID [16]byte
	Endpoints     []Endpoint
	Rack          string
	// Epoch is the raft index of the broker's latest registration.
	Epoch  int64
	Fenced bool
}

// Topic is a live topic.
type Topic struct {
	Name string
	ID   [16]byte
	// Configs holds only the topic's overrides; never nil.
	Configs map[string]string
	// Partitions is indexed by partition id.
	Partitions []PartitionState
}

// HasPartition reports whether the topic has partition p. A nil topic has
// none, so a missing topic and a missing partition are one case, as Kafka
// answers both with UNKNOWN_TOPIC_OR_PARTITION.
func (t *Topic) HasPartition(p int32) bool {
	return t != nil && p >= 0 && int(p) < len(t.Partitions)
}

// PartitionState is the replication state of one partition.
type PartitionState struct {
	// Replicas is every replica, in preference order. While a
	// reassignment is in progress it is the union of the target replicas
	// (first, in the target's order) and Removing, so every replica that
	// holds or is receiving the data is fetched for and may be elected.
	Replicas       []int32
	ISR            []int32
	Leader         int32
	LeaderEpoch    int32
	PartitionEpoch int32
	// Adding are the replicas a reassignment adds and Removing those it
	// takes away (Kafka's AddingReplicas and RemovingReplicas); both are
	// empty when no reassignment is in progress. The target replicas are
	// Replicas without Removing.
	Adding   []int32
	Removing []int32
}

// Reassigning reports whether a reassignment of the partition is in
// progress.
func (p PartitionState) Reassigning() bool { return len(p.Adding) > 0 || len(p.Removing) > 0 }

// TargetReplicas is the replica set the partition has once its
// reassignment, if any, completes.
func (p PartitionState) TargetReplicas() []int32 { return without(p.Replicas, p.Removing) }

// OriginalReplicas is the replica set the partition had before its
// reassignment, if any, began: what cancelling it returns to.
func (p PartitionState) OriginalReplicas() []int32 { return without(p.Replicas, p.Adding) }

// without returns replicas less those in drop (replicas itself when drop
// is empty).
func without(replicas, drop []int32) []int32 {
	if len(drop) == 0 {
		return replicas
	}
	var out []int32
	for _, r := range replicas {
		if !slices.Contains(drop, r) {
			out = append(out, r)
		}
	}
	return out
}

// NoLeader is PartitionState.Leader for a partition without a leader.
const NoLeader int32 = -1

func newImage(clusterID string) *Image {
	return &Image{
		ClusterID:     clusterID,
		Brokers:       map[int32]*Broker{},
		Topics:        map[string]*Topic{},
		TopicIDs:      map[[16]byte]string{},
		GroupConfigs:  map[string]map[string]string{},
		ACLs:          map[[16]byte]acl.Binding{},
		Scram:         map[ScramKey]ScramCredential{},
		ClientQuotas:  quota.Quotas{},
		BrokerConfigs: map[string]map[string]string{},
	}
}

// Topic returns the live topic named name, or nil.
func (img *Image) Topic(name string) *Topic { return img.Topics[name] }

// TopicID returns the id of the live topic named name, or the zero id.
func (img *Image) TopicID(name string) [16]byte {
	if t := img.Topics[name]; t != nil {
		return t.ID
	}
	return [16]byte{}
}

// TopicByID returns the live topic with id, or nil.
func (img *Image) TopicByID(id [16]byte) *Topic {
	name, ok := img.TopicIDs[id]
	if !ok {
		return nil
	}
	return img.Topics[name]
}

// GroupConfig returns the config overrides of a consumer group, or nil if
// it has none. Callers must not modify the map.
func (img *Image) GroupConfig(group string) map[string]string { return img.GroupConfigs[group] }

// UnfencedBrokers returns the ids of unfenced brokers in increasing order.
func (img *Image) UnfencedBrokers() []int32 {
	var ids []int32
	for id, b := range img.Brokers {
		if !b.Fenced {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

// ReplicationFactor returns the number of replicas of partition 0, which all
// partitions share unless reassigned.
func (t *Topic) ReplicationFactor() int16 {
	if len(t.Partitions) == 0 {
		return 0
	}
	return int16(len(t.Partitions[0].Replicas))
}

// apply returns the image after applying the records of the entry at index.
// The records of an entry apply atomically: if one is invalid against the
// image, none is applied and the returned image differs from img only in
// Applied. The validation here is a second line of defence; the controller
// only proposes records it decided against the latest image, so a rejection
// means two decisions raced. apply never modifies img.
func (img *Image) apply(index uint64, recs []Record) (*Image, error) {
	b := imageBuilder{next: *img}
	b.next.Applied = index
	for _, r := range recs {
		if err := b.apply(index, r); err != nil {
			unchanged := *img
			unchanged.Applied = index
			return &unchanged, err
		}
	}
	return &b.next, nil
}

// imageBuilder applies records to a shallow copy of an image, copying each
// map the first time it is written so the source image stays untouched.
type imageBuilder struct {
	next                                                 Image
	ownBrokers, ownTopics, ownTopicIDs, ownGroupConfigs  bool
	ownACLs, ownScram, ownClientQuotas, ownBrokerConfigs bool
}

// own returns the builder's own copy of the image map *m, cloned the first
// time it is asked for (*owned records that). A nil map becomes an empty
// one, ready to be written.
func own[M ~map[K]V, K comparable, V any](m *M, owned *bool) M {
	if !*owned {
		*m = maps.Clone(*m)
		if *m == nil {
			*m = M{}
		}
		*owned = true
	}
	return *m
}

func (b *imageBuilder) brokers() map[int32]*Broker {
	return own(&b.next.Brokers, &b.ownBrokers)
}

func (b *imageBuilder) topics() map[string]*Topic {
	return own(&b.next.Topics, &b.ownTopics)
}

func (b *imageBuilder) topicIDs() map[[16]byte]string {
	return own(&b.next.TopicIDs, &b.ownTopicIDs)
}

func (b *imageBuilder) groupConfigs() map[string]map[string]string {
	return own(&b.next.GroupConfigs, &b.ownGroupConfigs)
}

// topicForUpdate returns a copy of the topic with id that replaces it in the
// image being built; the copy shares Configs and Partitions with the old
// topic until the caller replaces them.
func (b *imageBuilder) topicForUpdate(id [16]byte) (*Topic, error) {
	t := b.next.TopicByID(id)
	if t == nil {
		return nil, errorf(kerr.UnknownTopicID, "no topic with id %x", id)
	}
	c := *t
	b.topics()[c.Name] = &c
	return &c, nil
}

func (b *imageBuilder) apply(index uint64, r Record) error {
	switch r := r.(type) {
	case *RegisterBroker:
		if r.ID < 0 {
			return errorf(kerr.InvalidRequest, "invalid broker id %d", r.ID)
		}
		b.brokers()[r.ID] = &Broker{
			ID:            r.ID,
			IncarnationID: r.IncarnationID,
			Endpoints:     slices.Clone(r.Endpoints),
			Rack:          r.Rack,
			Epoch:         int64(index),
		}

	case *FenceBroker:
		if err := b.setFenced(r.ID, r.Epoch, true); err != nil {
			return err
		}

	case *UnfenceBroker:
		if err := b.setFenced(r.ID, r.Epoch, false); err != nil {
			return err
		}

	case *CreateTopic:
		if r.ID == ([16]byte{}) {
			return errorf(kerr.InvalidRequest, "topic %q has the zero id", r.Name)
		}
		if _, ok := b.next.Topics[r.Name]; ok {
			return errorf(kerr.TopicAlreadyExists, "topic %q already exists", r.Name)
		}
		if _, ok := b.next.TopicIDs[r.ID]; ok {
			return errorf(kerr.TopicAlreadyExists, "topic id %x is in use", r.ID)
		}
		if len(r.Partitions) == 0 {
			return errorf(kerr.InvalidPartitions, "topic %q has no partitions", r.Name)
		}
		b.topics()[r.Name] = &Topic{
			Name:       r.Name,
			ID:         r.ID,
			Configs:    cloneConfigs(r.Configs),
			Partitions: clonePartitions(r.Partitions),
		}
		b.topicIDs()[r.ID] = r.Name

	case *DeleteTopic:
		t := b.next.TopicByID(r.ID)
		if t == nil {
			return errorf(kerr.UnknownTopicID, "no topic with id %x", r.ID)
		}
		delete(b.topics(), t.Name)
		delete(b.topicIDs(), t.ID)

	case *CreatePartitions:
		t, err := b.topicForUpdate(r.TopicID)
		if err != nil {
			return err
		}
		ps := make([]PartitionState, 0, len(t.Partitions)+len(r.New))
		ps = append(ps, t.Partitions...)
		t.Partitions = append(ps, clonePartitions(r.New)...)

	case *AlterTopicConfigs:
		t, err := b.topicForUpdate(r.TopicID)
		if err != nil {
			return err
		}
		t.Configs = applyOverrides(t.Configs, r.Set, r.Delete)

	case *AlterGroupConfigs:
		if r.Group == "" {
			return errorf(kerr.InvalidRequest, "group id can't be empty")
		}
		if c := applyOverrides(b.next.GroupConfigs[r.Group], r.Set, r.Delete); len(c) == 0 {
			delete(b.groupConfigs(), r.Group)
		} else {
			b.groupConfigs()[r.Group] = c
		}

	case *AllocateProducerIDs:
		if r.First != b.next.NextProducerID {
			return errorf(kerr.UnknownServerError, "producer id block starts at %d, expected %d", r.First, b.next.NextProducerID)
		}
		if r.Count <= 0 || r.First+r.Count < r.First {
			return errorf(kerr.InvalidRequest, "invalid producer id block [%d, +%d)", r.First, r.Count)
		}
		b.next.NextProducerID = r.First + r.Count

	case *ChangePartition:
		t, err := b.topicForUpdate(r.TopicID)
		if err != nil {
			return err
		}
		if !t.HasPartition(r.Partition) {
			return errorf(kerr.UnknownTopicOrPartition, "topic %q has no partition %d", t.Name, r.Partition)
		}
		old := t.Partitions[r.Partition]
		if r.PartitionEpoch <= old.PartitionEpoch || r.LeaderEpoch < old.LeaderEpoch {
			return errorf(kerr.FencedLeaderEpoch, "stale change of %s-%d: partition epoch %d (have %d), leader epoch %d (have %d)",
				t.Name, r.Partition, r.PartitionEpoch, old.PartitionEpoch, r.LeaderEpoch, old.LeaderEpoch)
		}
		np := PartitionState{
			Replicas:       old.Replicas,
			ISR:            slices.Clone(r.ISR),
			Leader:         r.Leader,
			LeaderEpoch:    r.LeaderEpoch,
			PartitionEpoch: r.PartitionEpoch,
		}
		if r.Replicas != nil {
			np.Replicas = slices.Clone(r.Replicas)
			np.Adding, np.Removing = cloneInt32s(r.Adding), cloneInt32s(r.Removing)
		} else {
			np.Adding, np.Removing = old.Adding, old.Removing
		}
		ps := slices.Clone(t.Partitions)
		ps[r.Partition] = np
		t.Partitions = ps

	case *AlterClientQuota:
		return b.applyClientQuota(r)

	case *AlterBrokerConfigs:
		return b.applyBrokerConfigs(r)

	case *UnregisterBroker:
		br, ok := b.next.Brokers[r.ID]
		if !ok {
			return errorf(kerr.BrokerIDNotRegistered, "broker %d is not registered", r.ID)
		}
		if br.Epoch != r.Epoch {
			return errorf(kerr.StaleBrokerEpoch, "broker %d has epoch %d, not %d", r.ID, br.Epoch, r.Epoch)
		}
		delete(b.brokers(), r.ID)

	default:
		if ok, err := b.applySecurity(r); ok {
			return err
		}
		return fmt.Errorf("raftmeta: cannot apply record %T", r)
	}
	return nil
}

func (b *imageBuilder) setFenced(id int32, epoch int64, fenced bool) error {
	br, ok := b.next.Brokers[id]
	if !ok {
		return errorf(kerr.BrokerIDNotRegistered, "broker %d is not registered", id)
	}
	if br.Epoch != epoch {
		return errorf(kerr.StaleBrokerEpoch, "broker %d has epoch %d, not %d", id, br.Epoch, epoch)
	}
	c := *br
	c.Fenced = fenced
	b.brokers()[id] = &c
	return nil
}

// cloneConfigs returns a copy that is never nil, the form Topic.Configs uses.
func cloneConfigs(m map[string]string) map[string]string {
	c := make(map[string]string, len(m))
	maps.Copy(c, m)
	return c
}

// clonePartitions deep-copies partition states, normalising empty replica
// and ISR lists to nil as decoding does.
func clonePartitions(ps []PartitionState) []PartitionState {
	if len(ps) == 0 {
		return nil
	}
	c := make([]PartitionState, len(ps))
	for i, p := range ps {
		c[i] = PartitionState{
			Replicas:       cloneInt32s(p.Replicas),
			ISR:            cloneInt32s(p.ISR),
			Leader:         p.Leader,
			LeaderEpoch:    p.LeaderEpoch,
			PartitionEpoch: p.PartitionEpoch,
			Adding:         cloneInt32s(p.Adding),
			Removing:       cloneInt32s(p.Removing),
		}
	}
	return c
}

func cloneInt32s(v []int32) []int32 {
	if len(v) == 0 {
		return nil
	}
	return slices.Clone(v)
}

// Snapshot encoding. A snapshot is the whole image, written in a fixed order
// (brokers by id, topics by name, groups by id) so equal images encode to
// equal bytes.
//
//	version         byte (snapshotVersion)
//	clusterID       string
//	applied         uvarint
//	nextProducerID  varint
//	brokers         uvarint count × (id, incarnation, endpoints, rack, epoch, fenced)
//	topics          uvarint count × (name, id, configs, partitions)
//	groupConfigs    uvarint count × (group, configs)   since version 2
//	acls            uvarint count × (id, binding)      since version 3
//	scram           uvarint count × (user, credential) since version 3
//	clientQuotas    uvarint count × (entity, values)   since version 4
//	brokerConfigs   uvarint count × (resource, configs) since version 4
//	reassignments   uvarint count × (topic id, partition, adding, removing)
//	                since version 5: the partitions being reassigned
//
// Versions 1 to 4 are still read: they lack what later versions added.
const snapshotVersion = 5

func encodeImage(img *Image) []byte {
	e := &encoder{}
	e.u8(snapshotVersion)
	e.str(img.ClusterID)
	e.uvarint(img.Applied)
	e.varint(img.NextProducerID)

	encodeList(e, slices.Sorted(maps.Keys(img.Brokers)), func(e *encoder, id int32) {
		br := img.Brokers[id]
		e.i32(br.ID)
		e.uuid(br.IncarnationID)
		encodeEndpoints(e, br.Endpoints)
		e.str(br.Rack)
		e.varint(br.Epoch)
		e.bool(br.Fenced)
	})
	encodeList(e, slices.Sorted(maps.Keys(img.Topics)), func(e *encoder, name string) {
		t := img.Topics[name]
		e.str(t.Name)
		e.uuid(t.ID)
		e.strMap(t.Configs)
		encodePartitions(e, t.Partitions)
	})
	encodeOverrides(e, img.GroupConfigs)
	encodeSecurity(e, img)
	encodeClientQuotas(e, img.ClientQuotas)
	encodeOverrides(e, img.BrokerConfigs)
	encodeReassignments(e, img)
	return e.b
}

// encodeOverrides writes config override maps (of groups or broker
// resources) by name, in name order.
func encodeOverrides(e *encoder, overrides map[string]map[string]string) {
	encodeList(e, slices.Sorted(maps.Keys(overrides)), func(e *encoder, name string) {
		e.str(name)
		e.strMap(overrides[name])
	})
}

// decodeOverrides reads what encodeOverrides wrote into into; what names
// the owner in the error. An empty map is corruption: applying records
// never leaves one.
func decodeOverrides(d *decoder, into map[string]map[string]string, what string) error {
	for range d.count() {
		name, c := d.str(), d.strMap()
		if len(c) == 0 {
			return corruptf("%s %q has an empty config override map", what, name)
		}
		into[name] = c
	}
	return nil
}

func decodeImage(b []byte) (*Image, error) {
	d := &decoder{b: b}
	v := d.u8()
	if v < 1 || v > snapshotVersion {
		if d.err != nil {
			return nil, d.err
		}
		return nil, fmt.Errorf("raftmeta: unknown snapshot version %d", v)
	}
	img := newImage(d.str())
	img.Applied = d.uvarint()
	img.NextProducerID = d.varint()
	for range d.count() {
		br := &Broker{ID: d.i32(), IncarnationID: d.uuid(), Endpoints: decodeEndpoints(d), Rack: d.str(), Epoch: d.varint(), Fenced: d.bool()}
		img.Brokers[br.ID] = br
	}
	for range d.count() {
		t := &Topic{Name: d.str(), ID: d.uuid(), Configs: d.strMap(), Partitions: decodePartitions(d)}
		img.Topics[t.Name] = t
		img.TopicIDs[t.ID] = t.Name
	}
	if v >= 2 {
		if err := decodeOverrides(d, img.GroupConfigs, "group"); err != nil {
			return nil, err
		}
	}
	if v >= 3 {
		decodeSecurity(d, img)
	}
	if v >= 4 {
		if err := decodeClientQuotas(d, img); err != nil {
			return nil, err
		}
		if err := decodeOverrides(d, img.BrokerConfigs, "broker resource"); err != nil {
			return nil, err
		}
	}
	if v >= 5 {
		if err := decodeReassignments(d, img); err != nil {
			return nil, err
		}
	}
	if err := d.done(); err != nil {
		return nil, err
	}
	if len(d.b) != 0 {
		return nil, corruptf("%d trailing bytes after snapshot", len(d.b))
	}
	return img, nil
}
