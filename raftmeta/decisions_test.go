package raftmeta

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"
)

// TestDecisions runs the scripts in testdata/decisions: each command is a
// request decided against the script's image; the output lists per-item
// outcomes and the records decided, which are then applied to the image
// (unless validate-only). Topic ids are #1, #2, ... in creation order.
//
// Regenerate expectations with: go test ./raftmeta -run TestDecisions -rewrite
func TestDecisions(t *testing.T) {
	datadriven.Walk(t, "testdata/decisions", func(t *testing.T, path string) {
		h := newDecisionHarness()
		datadriven.RunTest(t, path, h.run)
	})
}

type decisionHarness struct {
	img      *Image
	lastSeen map[int32]time.Time
	index    uint64
	nextID   byte
	start    int
	d        Decider
}

func newDecisionHarness() *decisionHarness {
	h := &decisionHarness{img: newImage("c1"), index: 1, lastSeen: map[int32]time.Time{}}
	h.d = Decider{
		ValidateConfig:      testValidateConfig,
		ValidateGroupConfig: testValidateGroupConfig,
		NewTopicID: func() [16]byte {
			h.nextID++
			return [16]byte{15: h.nextID}
		},
		PlacementStart: func(n int) int { return h.start % n },
	}
	return h
}

// testValidateConfig knows a few Kafka topic configs.
func testValidateConfig(name string, value *string) error {
	switch name {
	case "retention.ms", "segment.bytes", "min.insync.replicas":
		if value != nil {
			if _, err := strconv.ParseInt(*value, 10, 64); err != nil {
				return fmt.Errorf("Invalid value %s for configuration %s: Not a number of type LONG", *value, name)
			}
		}
	case "cleanup.policy":
		if value != nil && *value != "delete" && *value != "compact" {
			return fmt.Errorf("Invalid value %s for configuration cleanup.policy", *value)
		}
	default:
		return fmt.Errorf("Unknown topic config name: %s", name)
	}
	return nil
}

// testValidateGroupConfig knows Kafka's consumer group configs.
func testValidateGroupConfig(name string, value *string) error {
	switch name {
	case "consumer.session.timeout.ms", "consumer.heartbeat.interval.ms":
		if value != nil {
			if _, err := strconv.ParseInt(*value, 10, 32); err != nil {
				return fmt.Errorf("Invalid value %s for configuration %s: Not a number of type INT", *value, name)
			}
		}
	default:
		return fmt.Errorf("Unknown group config name: %s", name)
	}
	return nil
}

// unclean reads the unclean=topic,topic argument: the topics whose
// unclean.leader.election.enable is true; "*" is every topic.
func (h *decisionHarness) unclean(t *testing.T, td *datadriven.TestData) UncleanFunc {
	var v string
	if !td.MaybeScanArgs(t, "unclean", &v) {
		return nil
	}
	topics := strings.Split(v, ",")
	return func(topic string) bool { return slices.Contains(topics, topic) || slices.Contains(topics, "*") }
}

func (h *decisionHarness) apply(t *testing.T, recs []Record) {
	t.Helper()
	if len(recs) == 0 {
		return
	}
	h.index++
	img, err := h.img.apply(h.index, recs)
	if err != nil {
		t.Fatalf("decided records do not apply: %v", err)
	}
	h.img = img
}

func (h *decisionHarness) run(t *testing.T, td *datadriven.TestData) string {
	var out strings.Builder
	validateOnly := td.HasArg("validate-only")
	td.MaybeScanArgs(t, "start", &h.start)
	// max-broker-partitions sets the cap for this and later commands.
	td.MaybeScanArgs(t, "max-broker-partitions", &h.d.MaxBrokerPartitions)
	var recs []Record

	switch td.Cmd {
	case "register":
		for _, line := range lines(td.Input) {
			f := fields(line)
			id := int32(atoi(t, f["id"]))
			b := Broker{ID: id, IncarnationID: [16]byte{byte(id)}, Rack: f["rack"]}
			if inc, ok := f["incarnation"]; ok {
				b.IncarnationID[1] = byte(atoi(t, inc))
			}
			if l, ok := f["listener"]; ok {
				for _, l := range strings.Split(l, ",") {
					b.Endpoints = append(b.Endpoints, Endpoint{Listener: l, Host: "h", Port: 9092, SecurityProtocol: "PLAINTEXT"})
				}
			}
			r, err := h.d.RegisterBroker(h.img, b)
			fmt.Fprintf(&out, "broker %d: %s\n", id, errString(err))
			h.apply(t, r)
		}

	case "fence":
		// Fences the listed brokers at once, as session expiry would.
		var ids string
		td.ScanArgs(t, "ids", &ids)
		recs = h.d.FenceBrokers(h.img, int32s(t, ids), h.unclean(t, td))

	case "seen":
		// seen id=1 at=0: the broker's last heartbeat, in milliseconds.
		for _, line := range lines(td.Input) {
			f := fields(line)
			h.lastSeen[int32(atoi(t, f["id"]))] = time.UnixMilli(int64(atoi(t, f["at"])))
		}
		return "ok"

	case "fence-expired":
		var now, timeout int
		td.ScanArgs(t, "now", &now)
		td.ScanArgs(t, "timeout", &timeout)
		recs = h.d.FenceExpired(h.img, h.lastSeen, time.UnixMilli(int64(now)), time.Duration(timeout)*time.Millisecond, h.unclean(t, td))
		if len(recs) == 0 {
			out.WriteString("nothing expired\n")
		}

	case "heartbeat":
		var id int
		td.ScanArgs(t, "id", &id)
		epoch := h.brokerEpoch(int32(id))
		td.MaybeScanArgs(t, "epoch", &epoch)
		var fenced bool
		var err error
		recs, fenced, err = h.d.BrokerHeartbeat(h.img, int32(id), epoch, h.unclean(t, td))
		fmt.Fprintf(&out, "%s fenced=%v\n", errString(err), fenced)

	case "controlled-shutdown":
		var id int
		td.ScanArgs(t, "id", &id)
		epoch := h.brokerEpoch(int32(id))
		td.MaybeScanArgs(t, "epoch", &epoch)
		var err error
		recs, err = h.d.ControlledShutdown(h.img, int32(id), epoch, h.unclean(t, td))
		fmt.Fprintf(&out, "%s\n", errString(err))

	case "alter-partition":
		// alter-partition broker=1 [epoch=E]
		// <topic>/<partition> le=0 pe=0 isr=1,2
		var broker int
		td.ScanArgs(t, "broker", &broker)
		req := AlterPartitionRequest{BrokerID: int32(broker), BrokerEpoch: h.brokerEpoch(int32(broker))}
		td.MaybeScanArgs(t, "epoch", &req.BrokerEpoch)
		for _, line := range lines(td.Input) {
			tp, rest, _ := strings.Cut(line, " ")
			topic, part, _ := strings.Cut(tp, "/")
			f := fields(rest)
			it := AlterPartitionItem{Topic: topic, Partition: int32(atoi(t, part)),
				LeaderEpoch: int32(atoi(t, f["le"])), PartitionEpoch: int32(atoi(t, f["pe"])), NewISR: int32s(t, f["isr"])}
			if strings.HasPrefix(topic, "#") {
				it.Topic = ""
				it.TopicID = [16]byte{15: byte(atoi(t, topic[1:]))}
			}
			req.Partitions = append(req.Partitions, it)
		}
		var results []AlterPartitionResult
		var err error
		recs, results, err = h.d.AlterPartition(h.img, req)
		if err != nil {
			fmt.Fprintf(&out, "%s\n", errString(err))
		}
		for _, r := range results {
			if r.Err != nil {
				fmt.Fprintf(&out, "%s/%d: %s\n", r.Topic, r.Partition, errString(r.Err))
			} else {
				fmt.Fprintf(&out, "%s/%d: ok %s\n", r.Topic, r.Partition, fmtPartitions([]PartitionState{r.State}))
			}
		}

	case "elect-leaders":
		// elect-leaders type=preferred|unclean, one <topic>/<partition> per
		// line; no lines means every partition.
		var typ string
		td.ScanArgs(t, "type", &typ)
		et := PreferredElection
		if typ == "unclean" {
			et = UncleanElection
		}
		var parts []TopicPartition
		for _, line := range lines(td.Input) {
			topic, part, _ := strings.Cut(line, "/")
			parts = append(parts, TopicPartition{Topic: topic, Partition: int32(atoi(t, part))})
		}
		var results []ElectLeadersResult
		recs, results = h.d.ElectLeaders(h.img, et, parts)
		for _, r := range results {
			fmt.Fprintf(&out, "%s/%d: %s\n", r.Topic, r.Partition, errString(r.Err))
		}
		if len(results) == 0 {
			out.WriteString("no results\n")
		}

	case "create-topics":
		def := Defaults{NumPartitions: 1, ReplicationFactor: 1}
		var dp, drf int
		if td.MaybeScanArgs(t, "default-partitions", &dp) {
			def.NumPartitions = int32(dp)
		}
		if td.MaybeScanArgs(t, "default-rf", &drf) {
			def.ReplicationFactor = int16(drf)
		}
		var reqs []CreateTopicRequest
		for _, line := range lines(td.Input) {
			name, rest := topicName(t, line)
			f := fields(rest)
			r := CreateTopicRequest{Name: name, NumPartitions: -1, ReplicationFactor: -1}
			if v, ok := f["partitions"]; ok {
				r.NumPartitions = int32(atoi(t, v))
			}
			if v, ok := f["rf"]; ok {
				r.ReplicationFactor = int16(atoi(t, v))
			}
			if v, ok := f["assign"]; ok {
				for _, pa := range strings.Split(v, ";") {
					p, reps, _ := strings.Cut(pa, ":")
					r.Assignments = append(r.Assignments, PartitionAssignment{Partition: int32(atoi(t, p)), Replicas: int32s(t, reps)})
				}
			}
			if v, ok := f["configs"]; ok {
				r.Configs = map[string]*string{}
				for _, kv := range strings.Split(v, ",") {
					k, v, _ := strings.Cut(kv, "=")
					if v == "null" {
						r.Configs[k] = nil
					} else {
						r.Configs[k] = new(v)
					}
				}
			}
			reqs = append(reqs, r)
		}
		var results []CreateTopicResult
		recs, results = h.d.CreateTopics(h.img, reqs, def)
		for _, r := range results {
			if r.Err != nil {
				fmt.Fprintf(&out, "%s: %s\n", r.Name, errString(r.Err))
			} else {
				fmt.Fprintf(&out, "%s: ok id=%s partitions=%d rf=%d\n", r.Name, fmtID(r.ID), r.NumPartitions, r.ReplicationFactor)
			}
		}

	case "delete-topics":
		var names []string
		var ids [][16]byte
		for _, line := range lines(td.Input) {
			kind, v, _ := strings.Cut(line, " ")
			switch kind {
			case "name":
				names = append(names, v)
			case "id":
				ids = append(ids, [16]byte{15: byte(atoi(t, strings.TrimPrefix(v, "#")))})
			default:
				t.Fatalf("bad line %q", line)
			}
		}
		var results []DeleteTopicResult
		recs, results = h.d.DeleteTopics(h.img, names, ids)
		for _, r := range results {
			fmt.Fprintf(&out, "%s %s: %s\n", r.Name, fmtID(r.ID), errString(r.Err))
		}

	case "create-partitions":
		var reqs []CreatePartitionsRequest
		for _, line := range lines(td.Input) {
			name, rest, _ := strings.Cut(line, " ")
			f := fields(rest)
			r := CreatePartitionsRequest{Topic: name, Count: int32(atoi(t, f["count"]))}
			if v, ok := f["assign"]; ok {
				for _, reps := range strings.Split(v, ";") {
					r.Assignments = append(r.Assignments, int32s(t, reps))
				}
			}
			reqs = append(reqs, r)
		}
		var errs []error
		recs, errs = h.d.CreatePartitions(h.img, reqs)
		for i, err := range errs {
			fmt.Fprintf(&out, "%s: %s\n", reqs[i].Topic, errString(err))
		}

	case "alter-configs":
		var topic string
		td.ScanArgs(t, "topic", &topic)
		set, del := configChanges(t, td.Input)
		var err error
		recs, err = h.d.AlterTopicConfigs(h.img, topic, set, del)
		fmt.Fprintf(&out, "%s\n", errString(err))

	case "alter-group-configs":
		// Without a group argument the group id is empty.
		var group string
		td.MaybeScanArgs(t, "group", &group)
		set, del := configChanges(t, td.Input)
		var err error
		recs, err = h.d.AlterGroupConfigs(h.img, group, set, del)
		fmt.Fprintf(&out, "%s\n", errString(err))

	case "allocate-pids":
		var broker int
		var count int64
		td.ScanArgs(t, "broker", &broker)
		td.ScanArgs(t, "count", &count)
		var first int64
		var err error
		recs, first, err = h.d.AllocateProducerIDs(h.img, int32(broker), count)
		if err != nil {
			fmt.Fprintf(&out, "%s\n", errString(err))
		} else {
			fmt.Fprintf(&out, "first=%d\n", first)
		}

	case "reassign":
		// reassign [unclean=...], one per line:
		// <topic>/<partition> replicas=2,3 [keep-rf]  or  <topic>/<partition> cancel
		var reqs []ReassignRequest
		for _, line := range lines(td.Input) {
			tp, rest, _ := strings.Cut(line, " ")
			topic, part, _ := strings.Cut(tp, "/")
			r := ReassignRequest{Topic: topic, Partition: int32(atoi(t, part))}
			if rest != "cancel" {
				f := fields(rest)
				r.Replicas = int32s(t, f["replicas"])
				_, r.KeepReplicationFactor = f["keep-rf"]
			}
			reqs = append(reqs, r)
		}
		var errs []error
		recs, errs = h.d.AlterPartitionReassignments(h.img, reqs, h.unclean(t, td))
		for i, err := range errs {
			fmt.Fprintf(&out, "%s/%d: %s\n", reqs[i].Topic, reqs[i].Partition, errString(err))
		}

	case "list-reassignments":
		// One <topic>/<partition> per line; none lists every partition.
		var parts []TopicPartition
		for _, line := range lines(td.Input) {
			topic, part, _ := strings.Cut(line, "/")
			parts = append(parts, TopicPartition{Topic: topic, Partition: int32(atoi(t, part))})
		}
		for _, r := range h.img.Reassignments(parts) {
			fmt.Fprintf(&out, "%s/%d: replicas=%v adding=%v removing=%v\n", r.Topic, r.Partition, r.Replicas, r.Adding, r.Removing)
		}
		if out.Len() == 0 {
			out.WriteString("none\n")
		}
		return out.String()

	case "unregister":
		var id int
		td.ScanArgs(t, "id", &id)
		var err error
		recs, err = h.d.UnregisterBroker(h.img, int32(id), h.unclean(t, td))
		fmt.Fprintf(&out, "%s\n", errString(err))

	case "image":
		return fmtImage(h.img)

	default:
		t.Fatalf("unknown command %q", td.Cmd)
	}

	if len(recs) > 0 {
		out.WriteString("records:\n")
		for _, r := range recs {
			fmt.Fprintf(&out, "  %s\n", fmtRecord(r))
		}
	}
	if !validateOnly {
		h.apply(t, recs)
	}
	return out.String()
}

// configChanges parses "set k=v" and "delete k" lines.
func configChanges(t *testing.T, input string) (map[string]string, []string) {
	t.Helper()
	set := map[string]string{}
	var del []string
	for _, line := range lines(input) {
		op, kv, _ := strings.Cut(line, " ")
		switch op {
		case "set":
			k, v, _ := strings.Cut(kv, "=")
			set[k] = v
		case "delete":
			del = append(del, kv)
		default:
			t.Fatalf("bad line %q", line)
		}
	}
	return set, del
}

// topicName splits the leading topic name off a line; a name with spaces
// or an empty one is written Go-quoted.
func topicName(t *testing.T, line string) (string, string) {
	if strings.HasPrefix(line, `"`) {
		q, err := strconv.QuotedPrefix(line)
		if err != nil {
			t.Fatal(err)
		}
		name, _ := strconv.Unquote(q)
		return name, line[len(q):]
	}
	name, rest, _ := strings.Cut(line, " ")
	return name, rest
}

func lines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

func fields(s string) map[string]string {
	m := map[string]string{}
	for _, f := range strings.Fields(s) {
		k, v, _ := strings.Cut(f, "=")
		m[k] = v
	}
	return m
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	v, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func int32s(t *testing.T, s string) []int32 {
	var out []int32
	for _, x := range strings.Split(s, ",") {
		if x != "" {
			out = append(out, int32(atoi(t, x)))
		}
	}
	if out == nil {
		out = []int32{}
	}
	return out
}

func errString(err error) string {
	if err == nil {
		return "ok"
	}
	var e *Error
	if !errors.As(err, &e) {
		return "untyped error: " + err.Error()
	}
	return e.Error()
}

func fmtID(id [16]byte) string {
	if id == ([16]byte{}) {
		return "#0"
	}
	if slices.Equal(id[:15], make([]byte, 15)) {
		return fmt.Sprintf("#%d", id[15])
	}
	return fmt.Sprintf("%x", id)
}

func fmtConfigs(m map[string]string) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, k+"="+m[k])
	}
	return "{" + strings.Join(parts, ",") + "}"
}

func fmtPartitions(ps []PartitionState) string {
	var parts []string
	for i, p := range ps {
		if i == 8 {
			parts = append(parts, fmt.Sprintf("... %d partitions", len(ps)))
			break
		}
		s := fmt.Sprintf("r=%v isr=%v l=%d le=%d pe=%d", p.Replicas, p.ISR, p.Leader, p.LeaderEpoch, p.PartitionEpoch)
		if p.Reassigning() {
			s += fmt.Sprintf(" adding=%v removing=%v", p.Adding, p.Removing)
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, "; ")
}

func fmtRecord(r Record) string {
	switch r := r.(type) {
	case *RegisterBroker:
		return fmt.Sprintf("RegisterBroker id=%d rack=%q endpoints=%d", r.ID, r.Rack, len(r.Endpoints))
	case *CreateTopic:
		return fmt.Sprintf("CreateTopic %s id=%s configs=%s [%s]", r.Name, fmtID(r.ID), fmtConfigs(r.Configs), fmtPartitions(r.Partitions))
	case *DeleteTopic:
		return fmt.Sprintf("DeleteTopic id=%s", fmtID(r.ID))
	case *CreatePartitions:
		return fmt.Sprintf("CreatePartitions id=%s [%s]", fmtID(r.TopicID), fmtPartitions(r.New))
	case *AlterTopicConfigs:
		return fmt.Sprintf("AlterTopicConfigs id=%s set=%s delete=%v", fmtID(r.TopicID), fmtConfigs(r.Set), r.Delete)
	case *AllocateProducerIDs:
		return fmt.Sprintf("AllocateProducerIDs broker=%d first=%d count=%d", r.BrokerID, r.First, r.Count)
	case *AlterGroupConfigs:
		return fmt.Sprintf("AlterGroupConfigs group=%s set=%s delete=%v", r.Group, fmtConfigs(r.Set), r.Delete)
	case *FenceBroker:
		return fmt.Sprintf("FenceBroker id=%d epoch=%d", r.ID, r.Epoch)
	case *UnfenceBroker:
		return fmt.Sprintf("UnfenceBroker id=%d epoch=%d", r.ID, r.Epoch)
	case *ChangePartition:
		s := fmt.Sprintf("ChangePartition id=%s p=%d replicas=%v isr=%v l=%d le=%d pe=%d", fmtID(r.TopicID), r.Partition, r.Replicas, r.ISR, r.Leader, r.LeaderEpoch, r.PartitionEpoch)
		if r.Replicas != nil {
			s += fmt.Sprintf(" adding=%v removing=%v", r.Adding, r.Removing)
		}
		return s
	case *UnregisterBroker:
		return fmt.Sprintf("UnregisterBroker id=%d epoch=%d", r.ID, r.Epoch)
	}
	return fmt.Sprintf("%T", r)
}

func fmtImage(img *Image) string {
	var out strings.Builder
	fmt.Fprintf(&out, "cluster=%s next-producer-id=%d\n", img.ClusterID, img.NextProducerID)
	for _, id := range slices.Sorted(maps.Keys(img.Brokers)) {
		b := img.Brokers[id]
		fmt.Fprintf(&out, "broker %d epoch=%d fenced=%v rack=%q\n", b.ID, b.Epoch, b.Fenced, b.Rack)
	}
	for _, name := range slices.Sorted(maps.Keys(img.Topics)) {
		tp := img.Topics[name]
		fmt.Fprintf(&out, "topic %s id=%s configs=%s\n", tp.Name, fmtID(tp.ID), fmtConfigs(tp.Configs))
		for i, p := range tp.Partitions {
			if i == 8 {
				fmt.Fprintf(&out, "  ... %d partitions\n", len(tp.Partitions))
				break
			}
			fmt.Fprintf(&out, "  %d: %s\n", i, fmtPartitions([]PartitionState{p}))
		}
	}
	for _, g := range slices.Sorted(maps.Keys(img.GroupConfigs)) {
		fmt.Fprintf(&out, "group %s configs=%s\n", g, fmtConfigs(img.GroupConfigs[g]))
	}
	return out.String()
}

// brokerEpoch is broker id's current epoch in the harness's image, or -1
// when it is not registered: what a well-behaved broker sends.
func (h *decisionHarness) brokerEpoch(id int32) int64 {
	if b := h.img.Brokers[id]; b != nil {
		return b.Epoch
	}
	return -1
}
