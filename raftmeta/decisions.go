package raftmeta

import (
	"errors"
	"maps"
	"math"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
)

// The active controller's decisions. Each is a pure function of the current
// image and a request: it returns the records to propose and a per-item
// outcome, and it performs no I/O. Controller runs them against the latest
// image and proposes the records; tests run them directly.
//
// Messages follow Kafka's wording where clients or operators are likely to
// match on them.

// MaxPartitions bounds the partition count of one topic.
const MaxPartitions = 100000

// MaxPartitionsPerRequest bounds the partitions one CreateTopics or
// CreatePartitions request may add, across all its topics: Kafka 4's
// MAX_PARTITIONS_PER_BATCH. A request over it fails as a whole with
// POLICY_VIOLATION before any placement work.
const MaxPartitionsPerRequest = 10000

// IsInternalTopic reports whether name is one of Kafka's internal topics,
// which only the brokers write, grow or delete.
func IsInternalTopic(name string) bool {
	return name == "__consumer_offsets" || name == "__share_group_state" || name == "__transaction_state"
}

// MetadataTopic is the name Kafka gives its metadata log; no client may
// create a topic of that name.
const MetadataTopic = "__cluster_metadata"

// maxTopicNameLen is Kafka's limit: 255 minus room for a partition suffix
// in directory names.
const maxTopicNameLen = 249

// Decider holds what decisions need besides the image: config validation
// supplied by the broker, and the sources of randomness, injected so tests
// are deterministic.
type Decider struct {
	// ValidateConfig checks one topic config override; value nil means the
	// key is being deleted. nil accepts everything.
	ValidateConfig func(name string, value *string) error
	// ValidateGroupConfig checks one consumer group config override, like
	// ValidateConfig does for topics. nil accepts everything.
	ValidateGroupConfig func(name string, value *string) error
	// ValidateBrokerConfig checks one dynamic broker config override of
	// a BROKER resource (a broker id, or "" for the cluster default),
	// refusing keys that cannot change at runtime or not at that level.
	// nil accepts everything.
	ValidateBrokerConfig func(resource, name string, value *string) error
	// SensitiveBrokerConfig reports a broker key whose value (a password,
	// an inline private key) must not be logged; nil: none is.
	SensitiveBrokerConfig func(name string) bool
	// NewTopicID returns a fresh topic id. It must never return the zero id.
	NewTopicID func() [16]byte
	// NewACLID returns a fresh ACL id, never the zero id; nil uses
	// NewTopicID.
	NewACLID func() [16]byte
	// PlacementStart returns an offset in [0, n) at which round-robin
	// replica placement over n brokers begins.
	PlacementStart func(n int) int
	// MaxBrokerPartitions caps the partition replicas one broker may hold
	// (max.broker.partitions); a client's create or partition increase that
	// would put more on any broker fails with POLICY_VIOLATION. Internal
	// topics count towards it but are never refused by it: the brokers
	// need them. 0 means no cap.
	MaxBrokerPartitions int
}

// brokerLoad counts partition replicas per broker, to hold creations to
// MaxBrokerPartitions.
type brokerLoad map[int32]int

func loadOf(img *Image) brokerLoad {
	l := brokerLoad{}
	for _, t := range img.Topics {
		for _, p := range t.Partitions {
			for _, b := range p.Replicas {
				l[b]++
			}
		}
	}
	return l
}

// admit adds parts to the load if no broker then exceeds max (0: no cap),
// or reports the first broker that would.
func (l brokerLoad) admit(parts []PartitionState, max int, enforce bool) error {
	add := map[int32]int{}
	for _, p := range parts {
		for _, b := range p.Replicas {
			add[b]++
		}
	}
	if enforce && max > 0 {
		for _, b := range slices.Sorted(maps.Keys(add)) {
			if l[b]+add[b] > max {
				return errorf(kerr.PolicyViolation, "Broker %d holds %d partition replicas; %d more would exceed max.broker.partitions %d.", b, l[b], add[b], max)
			}
		}
	}
	for b, n := range add {
		l[b] += n
	}
	return nil
}

// requestedPartitions is how many partitions a CreateTopics request asks
// for in total, counting defaults; invalid counts add nothing (they fail on
// their own).
func requestedPartitions(reqs []CreateTopicRequest, def Defaults) int64 {
	var total int64
	for _, r := range reqs {
		switch {
		case len(r.Assignments) > 0:
			total += int64(len(r.Assignments))
		case r.NumPartitions == -1:
			total += int64(max(def.NumPartitions, 0))
		case r.NumPartitions > 0:
			total += int64(r.NumPartitions)
		}
	}
	return total
}

func errTooManyPartitions() *Error {
	return errorf(kerr.PolicyViolation, "Excessively large number of partitions per request.")
}

// CreateTopicRequest is one topic of a CreateTopics request.
type CreateTopicRequest struct {
	Name string
	// NumPartitions is -1 for the default.
	NumPartitions int32
	// ReplicationFactor is -1 for the default.
	ReplicationFactor int16
	// Assignments holds the replicas of each partition, in request order;
	// when set, NumPartitions and ReplicationFactor must be -1.
	Assignments []PartitionAssignment
	Configs     map[string]*string
}

// PartitionAssignment is the replica list a CreateTopics request gives one
// partition.
type PartitionAssignment struct {
	Partition int32
	Replicas  []int32
}

// CreateTopicResult is the outcome for one topic.
type CreateTopicResult struct {
	Name              string
	ID                [16]byte
	NumPartitions     int32
	ReplicationFactor int16
	Err               error
}

// Defaults are the broker's num.partitions and default.replication.factor.
type Defaults struct {
	NumPartitions     int32
	ReplicationFactor int16
}

// DeleteTopicResult is the outcome for one topic of a DeleteTopics request.
// Name and ID are both filled in when the topic was found.
type DeleteTopicResult struct {
	Name string
	ID   [16]byte
	Err  error
}

// CreatePartitionsRequest asks to grow a topic to Count partitions.
// Assignments, if set, holds the replicas of each new partition.
type CreatePartitionsRequest struct {
	Topic       string
	Count       int32
	Assignments [][]int32
}

// ValidateTopicName applies Kafka's rules for topic names.
func ValidateTopicName(name string) error {
	switch {
	case name == "":
		return errorf(kerr.InvalidTopicException, "Topic name is illegal, it can't be empty")
	case name == "." || name == "..":
		return errorf(kerr.InvalidTopicException, "Topic name cannot be \".\" or \"..\"")
	case len(name) > maxTopicNameLen:
		return errorf(kerr.InvalidTopicException, "Topic name is illegal, it can't be longer than %d characters, topic name: %s", maxTopicNameLen, name)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return errorf(kerr.InvalidTopicException, "Topic name %q is illegal, it contains a character other than ASCII alphanumerics, '.', '_' and '-'", name)
		}
	}
	return nil
}

// collisionKey is the name under which '.' and '_' are indistinguishable:
// Kafka's metric names replace '.' with '_', so two topics that differ only
// there would share metrics and are not allowed to coexist.
func collisionKey(name string) string { return strings.ReplaceAll(name, ".", "_") }

// CreateTopics decides a CreateTopics request. All successful topics go
// into the returned records, to be proposed as one entry.
func (d *Decider) CreateTopics(img *Image, reqs []CreateTopicRequest, def Defaults) ([]Record, []CreateTopicResult) {
	results := make([]CreateTopicResult, len(reqs))
	if requestedPartitions(reqs, def) > MaxPartitionsPerRequest {
		for i, r := range reqs {
			results[i] = CreateTopicResult{Name: r.Name, Err: errTooManyPartitions()}
		}
		return nil, results
	}
	count := map[string]int{}
	for _, r := range reqs {
		count[r.Name]++
	}
	load := loadOf(img)
	// Collision keys of existing topics and of those accepted so far in
	// this request.
	taken := map[string]string{}
	for name := range img.Topics {
		taken[collisionKey(name)] = name
	}
	var recs []Record
	for i, r := range reqs {
		res := &results[i]
		res.Name = r.Name
		if count[r.Name] > 1 {
			res.Err = errorf(kerr.InvalidRequest, "Duplicate topic name.")
			continue
		}
		if r.Name == MetadataTopic {
			res.Err = errorf(kerr.InvalidRequest, "Creation of internal topic %s is prohibited.", MetadataTopic)
			continue
		}
		if err := ValidateTopicName(r.Name); err != nil {
			res.Err = err
			continue
		}
		if _, ok := img.Topics[r.Name]; ok {
			res.Err = errorf(kerr.TopicAlreadyExists, "Topic '%s' already exists.", r.Name)
			continue
		}
		if other, ok := taken[collisionKey(r.Name)]; ok {
			res.Err = errorf(kerr.InvalidTopicException, "Topic '%s' collides with existing topic: %s", r.Name, other)
			continue
		}
		// As in Kafka, the configs are checked before the partitions are
		// placed: a bad config is INVALID_CONFIG whatever else is wrong.
		configs, err := d.topicConfigs(r.Configs)
		if err != nil {
			res.Err = err
			continue
		}
		parts, err := d.topicPartitions(img, r, def)
		if err != nil {
			res.Err = err
			continue
		}
		if err := load.admit(parts, d.MaxBrokerPartitions, !IsInternalTopic(r.Name)); err != nil {
			res.Err = err
			continue
		}
		id := d.NewTopicID()
		for id == ([16]byte{}) || img.TopicIDs[id] != "" {
			id = d.NewTopicID()
		}
		taken[collisionKey(r.Name)] = r.Name
		res.ID = id
		res.NumPartitions = int32(len(parts))
		res.ReplicationFactor = int16(len(parts[0].Replicas))
		recs = append(recs, &CreateTopic{Name: r.Name, ID: id, Configs: configs, Partitions: parts})
	}
	return recs, results
}

func (d *Decider) topicPartitions(img *Image, r CreateTopicRequest, def Defaults) ([]PartitionState, error) {
	if len(r.Assignments) > 0 {
		if r.ReplicationFactor != -1 {
			return nil, errorf(kerr.InvalidRequest, "A manual partition assignment was specified, but replicationFactor was not set to -1.")
		}
		if r.NumPartitions != -1 {
			return nil, errorf(kerr.InvalidRequest, "A manual partition assignment was specified, but numPartitions was not set to -1.")
		}
		if len(r.Assignments) > MaxPartitions {
			return nil, errorf(kerr.InvalidPartitions, "Number of partitions %d exceeds the limit of %d.", len(r.Assignments), MaxPartitions)
		}
		return manualPartitions(img, r.Assignments, 0, -1)
	}

	np, rf := r.NumPartitions, r.ReplicationFactor
	if np == -1 {
		np = def.NumPartitions
	}
	if rf == -1 {
		rf = def.ReplicationFactor
	}
	// Kafka checks the replication factor before the partition count, so a
	// request wrong in both is INVALID_REPLICATION_FACTOR.
	if rf <= 0 {
		return nil, errorf(kerr.InvalidReplicationFactor, "Replication factor must be larger than 0, or -1 to use the default value.")
	}
	if np <= 0 {
		return nil, errorf(kerr.InvalidPartitions, "Number of partitions was set to an invalid non-positive value.")
	}
	if np > MaxPartitions {
		return nil, errorf(kerr.InvalidPartitions, "Number of partitions %d exceeds the limit of %d.", np, MaxPartitions)
	}
	return d.placePartitions(img, int(np), 0, int(rf))
}

// placePartitions chooses replicas for partitions first..first+count-1
// across the unfenced brokers. The first replica (the leader) of
// consecutive partitions walks the brokers round-robin from a random start,
// and the followers are shifted by an amount that grows each time the walk
// wraps, so the followers of one broker's leaders spread over the other
// brokers. The leader is the first replica; the ISR is all replicas.
//
// When the brokers sit in two or more racks (broker.rack), the walk goes
// over the brokers interleaved by rack (first broker of each rack, then the
// second of each, ...), so consecutive leaders land in different racks, and
// each follower is the next broker along the shifted walk whose rack the
// partition does not use yet, until every rack is used.
func (d *Decider) placePartitions(img *Image, count, first, rf int) ([]PartitionState, error) {
	brokers := img.UnfencedBrokers()
	nb := len(brokers)
	if rf > nb {
		return nil, errorf(kerr.InvalidReplicationFactor, "Unable to replicate the partition %d time(s): The target replication factor of %d cannot be reached because only %d broker(s) are registered.", rf, rf, nb)
	}
	rackOf := map[int32]string{}
	racks := map[string][]int32{}
	for _, id := range brokers {
		r := img.Brokers[id].Rack
		rackOf[id] = r
		racks[r] = append(racks[r], id)
	}
	rackAware := len(racks) > 1
	if rackAware {
		brokers = interleaveRacks(racks)
	}
	start := d.PlacementStart(nb)
	shift := start
	parts := make([]PartitionState, count)
	for i := range parts {
		p := first + i
		if p > 0 && p%nb == 0 {
			shift++
		}
		lead := (p + start) % nb
		replicas := make([]int32, rf)
		replicas[0] = brokers[lead]
		if !rackAware {
			for j := 1; j < rf; j++ {
				replicas[j] = brokers[(lead+1+(shift+j-1)%(nb-1))%nb]
			}
		} else {
			used := map[string]bool{rackOf[replicas[0]]: true}
			for j := 1; j < rf; j++ {
				replicas[j] = nextFollower(brokers, lead, shift+j-1, replicas[:j], used, rackOf, len(racks))
				used[rackOf[replicas[j]]] = true
			}
		}
		parts[i] = PartitionState{Replicas: replicas, ISR: slices.Clone(replicas), Leader: replicas[0]}
	}
	return parts, nil
}

// interleaveRacks orders brokers rack by rack: the lowest id of each rack
// (racks in name order), then the second lowest of each, and so on.
func interleaveRacks(racks map[string][]int32) []int32 {
	names := slices.Sorted(maps.Keys(racks))
	var out []int32
	for round := 0; ; round++ {
		added := false
		for _, r := range names {
			if ids := racks[r]; round < len(ids) {
				out = append(out, ids[round])
				added = true
			}
		}
		if !added {
			return out
		}
	}
}

// nextFollower walks the brokers other than the leader's position, starting
// at offset, and returns the first one not yet chosen whose rack is unused,
// or, once every rack is used, the first one not yet chosen.
func nextFollower(brokers []int32, lead, offset int, chosen []int32, used map[string]bool, rackOf map[int32]string, nracks int) int32 {
	nb := len(brokers)
	var fallback int32 = -1
	for k := range nb - 1 {
		b := brokers[(lead+1+(offset+k)%(nb-1))%nb]
		if slices.Contains(chosen, b) {
			continue
		}
		if len(used) >= nracks || !used[rackOf[b]] {
			return b
		}
		if fallback < 0 {
			fallback = b
		}
	}
	return fallback
}

// validateReplicas checks a manually assigned replica list as Kafka's
// controller does for new partitions and reassignments alike: not empty,
// every broker registered (fenced or not), none twice.
func validateReplicas(img *Image, replicas []int32) error {
	if len(replicas) == 0 {
		return errorf(kerr.InvalidReplicaAssignment, "The manual partition assignment includes an empty replica list.")
	}
	// Kafka checks the brokers in id order.
	sorted := slices.Sorted(slices.Values(replicas))
	for j, b := range sorted {
		if _, ok := img.Brokers[b]; !ok {
			return errorf(kerr.InvalidReplicaAssignment, "The manual partition assignment includes broker %d, but no such broker is registered.", b)
		}
		if j > 0 && sorted[j-1] == b {
			return errorf(kerr.InvalidReplicaAssignment, "The manual partition assignment includes the broker %d more than once.", b)
		}
	}
	return nil
}

// manualPartitions validates an explicit assignment of partitions first..,
// partition by partition in request order as Kafka does, and builds their
// states in partition order. rf, if not -1, is the replica count every
// partition must have; otherwise they must agree with each other. The ISR
// is the unfenced replicas and the leader the first of them.
func manualPartitions(img *Image, assign []PartitionAssignment, first int32, rf int) ([]PartitionState, error) {
	byIndex := make(map[int32]PartitionState, len(assign))
	for _, a := range assign {
		p, replicas := a.Partition, a.Replicas
		if _, ok := byIndex[p]; ok {
			return nil, errorf(kerr.InvalidReplicaAssignment, "Found multiple manual partition assignments for partition %d", p)
		}
		if err := validateReplicas(img, replicas); err != nil {
			return nil, err
		}
		if rf == -1 {
			rf = len(replicas)
		} else if len(replicas) != rf {
			return nil, errorf(kerr.InvalidReplicaAssignment, "The manual partition assignment includes a partition with %d replica(s), but this is not consistent with previous partitions, which have %d replica(s).", len(replicas), rf)
		}
		var isr []int32
		for _, b := range replicas {
			if !img.Brokers[b].Fenced {
				isr = append(isr, b)
			}
		}
		if len(isr) == 0 {
			return nil, errorf(kerr.InvalidReplicaAssignment, "All brokers specified in the manual partition assignment for partition %d are fenced or in controlled shutdown.", p)
		}
		byIndex[p] = PartitionState{Replicas: slices.Clone(replicas), ISR: isr, Leader: isr[0]}
	}
	parts := make([]PartitionState, len(byIndex))
	for i := range parts {
		ps, ok := byIndex[first+int32(i)]
		if !ok {
			return nil, errorf(kerr.InvalidReplicaAssignment, "partitions should be a consecutive 0-based integer sequence")
		}
		parts[i] = ps
	}
	return parts, nil
}

func (d *Decider) topicConfigs(in map[string]*string) (map[string]string, error) {
	// Kafka names every null config of the topic before checking values.
	var null []string
	for _, k := range slices.Sorted(maps.Keys(in)) {
		if in[k] == nil {
			null = append(null, k)
		}
	}
	if len(null) > 0 {
		return nil, errorf(kerr.InvalidConfig, "Null value not supported for topic configs: %s", strings.Join(null, ","))
	}
	out := make(map[string]string, len(in))
	for _, k := range slices.Sorted(maps.Keys(in)) {
		if err := d.validateConfig(k, in[k]); err != nil {
			return nil, err
		}
		out[k] = *in[k]
	}
	return out, nil
}

// validateConfig runs the broker's check of a topic config.
func (d *Decider) validateConfig(name string, value *string) error {
	return validateWith(d.ValidateConfig, name, value)
}

// validateChange checks an incremental change of config overrides with
// check (see validateWith): a key both set and deleted is refused, then
// each set value and each deleted key in turn.
func validateChange(check func(name string, value *string) error, set map[string]string, del []string) error {
	for _, k := range slices.Sorted(maps.Keys(set)) {
		if slices.Contains(del, k) {
			return errorf(kerr.InvalidRequest, "Config %s is both set and deleted.", k)
		}
		v := set[k]
		if err := validateWith(check, k, &v); err != nil {
			return err
		}
	}
	for _, k := range del {
		if err := validateWith(check, k, nil); err != nil {
			return err
		}
	}
	return nil
}

// validateWith runs check, if any, and gives its failure a Kafka code
// (INVALID_CONFIG) unless it already has one.
func validateWith(check func(name string, value *string) error, name string, value *string) error {
	if check == nil {
		return nil
	}
	err := check(name, value)
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	var k *kerr.Error
	if errors.As(err, &k) {
		return &Error{Code: k, Message: err.Error()}
	}
	return &Error{Code: kerr.InvalidConfig, Message: err.Error()}
}

// DeleteTopics decides a DeleteTopics request naming topics by name and by
// id. Results list the names first, then the ids, in request order. A topic
// named twice (including once by name and once by id) is deleted once; the
// later mentions fail with INVALID_REQUEST.
func (d *Decider) DeleteTopics(img *Image, names []string, ids [][16]byte) ([]Record, []DeleteTopicResult) {
	results := make([]DeleteTopicResult, 0, len(names)+len(ids))
	deleting := map[[16]byte]bool{}
	var recs []Record
	del := func(res DeleteTopicResult, t *Topic, dup string) DeleteTopicResult {
		res.Name, res.ID = t.Name, t.ID
		if deleting[t.ID] {
			res.Err = errorf(kerr.InvalidRequest, "%s", dup)
			return res
		}
		deleting[t.ID] = true
		recs = append(recs, &DeleteTopic{ID: t.ID})
		return res
	}
	for _, name := range names {
		res := DeleteTopicResult{Name: name}
		t := img.Topic(name)
		switch {
		case t == nil:
			res.Err = errorf(kerr.UnknownTopicOrPartition, "This server does not host this topic-partition.")
		case IsInternalTopic(name):
			res.Name, res.ID, res.Err = t.Name, t.ID, errInternalTopic("delete", name)
		default:
			res = del(res, t, "Duplicate topic name.")
		}
		results = append(results, res)
	}
	for _, id := range ids {
		res := DeleteTopicResult{ID: id}
		t := img.TopicByID(id)
		switch {
		case id == [16]byte{}:
			res.Err = errorf(kerr.InvalidRequest, "Invalid topic id 0.")
		case t == nil:
			res.Err = errorf(kerr.UnknownTopicID, "This server does not host this topic ID.")
		case IsInternalTopic(t.Name):
			res.Name, res.Err = t.Name, errInternalTopic("delete", t.Name)
		default:
			res = del(res, t, "Duplicate topic id.")
		}
		results = append(results, res)
	}
	return recs, results
}

// CreatePartitions decides a CreatePartitions request; errs[i] is the
// outcome of reqs[i].
func (d *Decider) CreatePartitions(img *Image, reqs []CreatePartitionsRequest) ([]Record, []error) {
	errs := make([]error, len(reqs))
	var added int64
	for _, r := range reqs {
		if t := img.Topic(r.Topic); t != nil && int(r.Count) > len(t.Partitions) {
			added += int64(int(r.Count) - len(t.Partitions))
		}
	}
	if added > MaxPartitionsPerRequest {
		for i := range errs {
			errs[i] = errTooManyPartitions()
		}
		return nil, errs
	}
	count := map[string]int{}
	for _, r := range reqs {
		count[r.Topic]++
	}
	load := loadOf(img)
	var recs []Record
	for i, r := range reqs {
		if count[r.Topic] > 1 {
			errs[i] = errorf(kerr.InvalidRequest, "Duplicate topic name.")
			continue
		}
		rec, err := d.createPartitions(img, r, load)
		if err != nil {
			errs[i] = err
			continue
		}
		recs = append(recs, rec)
	}
	return recs, errs
}

func (d *Decider) createPartitions(img *Image, r CreatePartitionsRequest, load brokerLoad) (Record, error) {
	t := img.Topic(r.Topic)
	if t == nil {
		return nil, errorf(kerr.UnknownTopicOrPartition, "This server does not host this topic-partition.")
	}
	if IsInternalTopic(t.Name) {
		// The coordinators map groups onto the internal topics' partitions
		// by count; more partitions would move every group's state.
		return nil, errInternalTopic("add partitions to", t.Name)
	}
	have := int32(len(t.Partitions))
	switch {
	case r.Count < have:
		return nil, errorf(kerr.InvalidPartitions, "The topic %s currently has %d partition(s); %d would not be an increase.", r.Topic, have, r.Count)
	case r.Count == have:
		return nil, errorf(kerr.InvalidPartitions, "Topic already has %d partition(s).", have)
	case r.Count > MaxPartitions:
		return nil, errorf(kerr.InvalidPartitions, "Number of partitions %d exceeds the limit of %d.", r.Count, MaxPartitions)
	}
	add := int(r.Count - have)
	var parts []PartitionState
	var err error
	if r.Assignments != nil {
		if len(r.Assignments) != add {
			return nil, errorf(kerr.InvalidReplicaAssignment, "Attempted to add %d additional partition(s), but only %d assignment(s) were specified.", add, len(r.Assignments))
		}
		// New partitions keep the topic's replication factor, as in
		// Kafka: a manual assignment of another size is refused.
		assign := make([]PartitionAssignment, add)
		for i, replicas := range r.Assignments {
			assign[i] = PartitionAssignment{Partition: have + int32(i), Replicas: replicas}
		}
		parts, err = manualPartitions(img, assign, have, int(t.ReplicationFactor()))
	} else {
		parts, err = d.placePartitions(img, add, int(have), int(t.ReplicationFactor()))
	}
	if err != nil {
		return nil, err
	}
	if err := load.admit(parts, d.MaxBrokerPartitions, true); err != nil {
		return nil, err
	}
	return &CreatePartitions{TopicID: t.ID, New: parts}, nil
}

// errInternalTopic refuses a client operation on an internal topic with
// INVALID_TOPIC_EXCEPTION, the error Kafka gives for appends to and record
// deletion from internal topics.
func errInternalTopic(op, name string) *Error {
	return errorf(kerr.InvalidTopicException, "Cannot %s internal topic %s.", op, name)
}

// AlterTopicConfigs decides an incremental change of a topic's config
// overrides.
func (d *Decider) AlterTopicConfigs(img *Image, topic string, set map[string]string, del []string) ([]Record, error) {
	t := img.Topic(topic)
	if t == nil {
		return nil, errorf(kerr.UnknownTopicOrPartition, "The topic '%s' does not exist.", topic)
	}
	if err := validateChange(d.ValidateConfig, set, del); err != nil {
		return nil, err
	}
	return []Record{&AlterTopicConfigs{TopicID: t.ID, Set: maps.Clone(set), Delete: slices.Clone(del)}}, nil
}

// AlterGroupConfigs decides an incremental change of a consumer group's
// config overrides. The group need not exist anywhere: overrides may be set
// ahead of the group's first member. A change that alters nothing still
// yields a record.
func (d *Decider) AlterGroupConfigs(img *Image, group string, set map[string]string, del []string) ([]Record, error) {
	if group == "" {
		return nil, errorf(kerr.InvalidRequest, "group id can't be empty")
	}
	if err := validateChange(d.ValidateGroupConfig, set, del); err != nil {
		return nil, err
	}
	return []Record{&AlterGroupConfigs{Group: group, Set: maps.Clone(set), Delete: slices.Clone(del)}}, nil
}

// AllocateProducerIDs decides the next block of count producer ids for a
// registered broker.
func (d *Decider) AllocateProducerIDs(img *Image, brokerID int32, count int64) ([]Record, int64, error) {
	if _, ok := img.Brokers[brokerID]; !ok {
		return nil, 0, errorf(kerr.BrokerIDNotRegistered, "Broker %d is not registered.", brokerID)
	}
	if count <= 0 {
		return nil, 0, errorf(kerr.InvalidRequest, "Producer id block size must be positive, got %d.", count)
	}
	first := img.NextProducerID
	if first > math.MaxInt64-count {
		return nil, 0, errorf(kerr.UnknownServerError, "Exhausted all producer ids.")
	}
	return []Record{&AllocateProducerIDs{BrokerID: brokerID, First: first, Count: count}}, first, nil
}

// RegisterBroker decides a broker registration. Re-registration with a new
// incarnation (a restart) is accepted and bumps the broker epoch. The
// registration unfences the broker; partitions without a leader whose ISR
// holds it get it as leader. A restart of a broker that was never fenced
// first moves leadership away from it as fencing would, since the new
// incarnation may lack records the old one acknowledged; where it was the
// last ISR member it leads again, with a new leader epoch. Unclean election
// is never used here (a heartbeat of a fenced broker may use it).
func (d *Decider) RegisterBroker(img *Image, b Broker) ([]Record, error) {
	if b.ID < 0 {
		return nil, errorf(kerr.InvalidRequest, "Invalid broker id %d.", b.ID)
	}
	seen := map[string]bool{}
	for _, ep := range b.Endpoints {
		if seen[ep.Listener] {
			return nil, errorf(kerr.InvalidRequest, "Listener %s is registered twice.", ep.Listener)
		}
		seen[ep.Listener] = true
		if ep.Port < 0 || ep.Port > 65535 {
			return nil, errorf(kerr.InvalidRequest, "Listener %s has invalid port %d.", ep.Listener, ep.Port)
		}
	}
	recs := []Record{&RegisterBroker{ID: b.ID, IncarnationID: b.IncarnationID, Endpoints: slices.Clone(b.Endpoints), Rack: b.Rack}}
	return append(recs, registerElections(img, b, nil)...), nil
}
