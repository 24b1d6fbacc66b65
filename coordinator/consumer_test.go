package coordinator

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

type consumerHarness struct {
	scriptGroup
	g   *ConsumerGroup
	cfg ConsumerConfig
}

func TestConsumerDataDriven(t *testing.T) {
	datadriven.Walk(t, "testdata/consumer", func(t *testing.T, path string) {
		h := &consumerHarness{scriptGroup: newScriptGroup(), cfg: DefaultConsumerConfig()}
		h.g = NewConsumerGroup("g", h.cfg)
		datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
			return h.run(t, d)
		})
	})
}

func (h *consumerHarness) run(t *testing.T, d *datadriven.TestData) string {
	h.at(t, d)
	if out, ok := h.runShared(t, d, h.g, h.groupLine); ok {
		return out
	}
	switch d.Cmd {
	case "new-group":
		h.cfg = DefaultConsumerConfig()
		if v, ok := scriptArg(d, "session"); ok {
			h.cfg.SessionTimeout, _ = time.ParseDuration(v)
		}
		if v, ok := scriptArg(d, "max-size"); ok {
			h.cfg.MaxSize, _ = strconv.Atoi(v)
		}
		if v, ok := scriptArg(d, "assignors"); ok {
			h.cfg.Assignors = strings.Split(v, ",")
		}
		h.g = NewConsumerGroup("g", h.cfg)
		return h.groupLine()

	case "heartbeat":
		req := h.request(t, d)
		resp := h.g.Heartbeat(h.now, req, h.topics)
		return h.formatResponse(resp) + "\n" + h.groupLine()

	case "members":
		return h.members()

	case "describe":
		return h.describe()

	case "subscribed":
		return strings.Join(h.g.Subscribed(h.topics), ",")

	case "commit", "fetch":
		member, _ := scriptArg(d, "member")
		es, _ := scriptArg(d, "epoch")
		epoch, _ := strconv.Atoi(es)
		var err error
		if d.Cmd == "commit" {
			err = h.g.ValidateOffsetCommit(member, int32(epoch))
		} else {
			err = h.g.ValidateOffsetFetch(member, int32(epoch))
		}
		if err == nil {
			return "ok"
		}
		var ke *kerr.Error
		if !errors.As(err, &ke) {
			t.Fatalf("not a kerr.Error: %v", err)
		}
		return ke.Message

	case "dirty":
		return strconv.FormatBool(len(h.g.takeRecords(nil)) > 0)

	case "restart":
		h.g.takeRecords(nil)
		recs := consumerAllRecords(h.g)
		g, err := consumerReplay(h.cfg, recs, h.now)
		if err != nil {
			return "error: " + err.Error()
		}
		if again := consumerAllRecords(g); !reflect.DeepEqual(again, recs) {
			t.Fatalf("records do not round trip")
		}
		h.g = g
		return fmt.Sprintf("restored %d records\n%s", len(recs), h.groupLine())
	}
	t.Fatalf("unknown command %q", d.Cmd)
	return ""
}

// request builds a heartbeat. Defaults: version 1, group "g", epoch 0; at
// epoch 0 a 30s rebalance timeout and an empty owned list, otherwise -1 and
// null (a keepalive).
func (h *consumerHarness) request(t *testing.T, d *datadriven.TestData) *kmsg.ConsumerGroupHeartbeatRequest {
	req := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	req.Version = 1
	if v, ok := scriptArg(d, "version"); ok {
		n, _ := strconv.Atoi(v)
		req.Version = int16(n)
	}
	req.Group, req.MemberID, req.MemberEpoch, req.SubscribedTopicNames = scriptHeartbeat(t, d)
	req.RebalanceTimeoutMillis = -1
	if req.MemberEpoch == 0 {
		req.RebalanceTimeoutMillis = 30000
		req.Topics = []kmsg.ConsumerGroupHeartbeatRequestTopic{}
	}
	if v, ok := scriptArg(d, "rebalance"); ok {
		if v == "-1" {
			req.RebalanceTimeoutMillis = -1
		} else {
			dur, err := time.ParseDuration(v)
			if err != nil {
				t.Fatal(err)
			}
			req.RebalanceTimeoutMillis = int32(dur / time.Millisecond)
		}
	}
	str := func(key string) *string {
		if v, ok := scriptArg(d, key); ok {
			return &v
		}
		return nil
	}
	req.InstanceID = str("instance")
	req.RackID = str("rack")
	req.ServerAssignor = str("assignor")
	req.SubscribedTopicRegex = str("regex")
	if v, ok := scriptArg(d, "owned"); ok {
		switch v {
		case "null":
			req.Topics = nil
		case "":
			req.Topics = []kmsg.ConsumerGroupHeartbeatRequestTopic{}
		default:
			req.Topics = []kmsg.ConsumerGroupHeartbeatRequestTopic{}
			for _, tp := range strings.Split(v, ";") {
				name, ps, _ := strings.Cut(tp, ":")
				id, _, ok := h.topics.TopicByName(name)
				if !ok {
					copy(id[1:], name)
				}
				rt := kmsg.ConsumerGroupHeartbeatRequestTopic{TopicID: id}
				for _, p := range strings.Split(ps, ",") {
					n, err := strconv.Atoi(p)
					if err != nil {
						t.Fatal(err)
					}
					rt.Partitions = append(rt.Partitions, int32(n))
				}
				req.Topics = append(req.Topics, rt)
			}
		}
	}
	return req
}

func (h *consumerHarness) formatResponse(resp *kmsg.ConsumerGroupHeartbeatResponse) string {
	var a map[[16]byte][]int32
	if resp.Assignment != nil {
		a = make(map[[16]byte][]int32)
		for _, t := range resp.Assignment.Topics {
			a[t.TopicID] = t.Partitions
		}
	}
	return h.topics.heartbeatLine(resp.ErrorCode, resp.ErrorMessage, "", resp.MemberID, resp.MemberEpoch, resp.HeartbeatIntervalMillis, a)
}

func (h *consumerHarness) groupLine() string {
	return fmt.Sprintf("group epoch=%d assignment-epoch=%d state=%s", h.g.groupEpoch, h.g.assignmentEpoch, h.g.State())
}

// members prints the internal view: reconciliation state and pending
// revocations, which Describe does not show.
func (h *consumerHarness) members() string {
	var b strings.Builder
	b.WriteString(h.groupLine())
	for _, id := range sortedKeys(h.g.members) {
		m := h.g.members[id]
		fmt.Fprintf(&b, "\n%s epoch=%d prev=%d %s assigned=%s pending=%s target=%s",
			id, m.epoch, m.prevEpoch, m.state, h.topics.format(m.assigned),
			h.topics.format(m.pending), h.topics.format(h.g.target[id]))
	}
	return b.String()
}

func (h *consumerHarness) describe() string {
	dg := h.g.Describe(h.topics, false)
	var b strings.Builder
	fmt.Fprintf(&b, "group=%s state=%s epoch=%d assignment-epoch=%d assignor=%s ops=%d",
		dg.Group, dg.State, dg.Epoch, dg.AssignmentEpoch, dg.AssignorName, dg.AuthorizedOperations)
	opt := func(s *string) string {
		if s == nil {
			return "-"
		}
		return *s
	}
	da := func(a kmsg.Assignment) string {
		var words []string
		for _, tp := range a.TopicPartitions {
			words = append(words, partitionsWord(tp.Topic, tp.Partitions))
		}
		return assignmentWords(words)
	}
	for _, m := range dg.Members {
		fmt.Fprintf(&b, "\n%s epoch=%d instance=%s rack=%s topics=%s regex=%s type=%d assignment=%s target=%s",
			m.MemberID, m.MemberEpoch, opt(m.InstanceID), opt(m.RackID), strings.Join(m.SubscribedTopics, ","),
			opt(m.SubscribedTopicRegex), m.MemberType, da(m.Assignment), da(m.TargetAssignment))
	}
	return b.String()
}

// consumerBuildGroup returns a group with static and dynamic members, a
// regex subscription and a revocation in flight.
func consumerBuildGroup(t *testing.T) (*ConsumerGroup, *fakeTopics, time.Time) {
	topics := newFakeTopics()
	topics.set("a", 4)
	topics.set("t1", 2)
	now := time.Unix(1_700_000_000, 0)
	g := NewConsumerGroup("g", DefaultConsumerConfig())
	hb := func(member string, epoch int32, mod func(r *kmsg.ConsumerGroupHeartbeatRequest)) {
		req := kmsg.NewPtrConsumerGroupHeartbeatRequest()
		req.Version, req.Group, req.MemberID, req.MemberEpoch = 1, "g", member, epoch
		if epoch == 0 {
			req.RebalanceTimeoutMillis = 30000
			req.Topics = []kmsg.ConsumerGroupHeartbeatRequestTopic{}
		}
		if mod != nil {
			mod(req)
		}
		if resp := g.Heartbeat(now, req, topics); resp.ErrorCode != 0 {
			t.Fatalf("heartbeat %s: %d %v", member, resp.ErrorCode, *resp.ErrorMessage)
		}
	}
	inst, rack, re, asg := "i1", "r1", "t.*", "range"
	hb("m1", 0, func(r *kmsg.ConsumerGroupHeartbeatRequest) {
		r.SubscribedTopicNames = []string{"a"}
		r.InstanceID, r.RackID, r.ServerAssignor = &inst, &rack, &asg
	})
	hb("m2", 0, func(r *kmsg.ConsumerGroupHeartbeatRequest) {
		r.SubscribedTopicNames = []string{"a"}
		r.SubscribedTopicRegex = &re
	})
	hb("m1", 1, nil)
	return g, topics, now
}

// consumerAllRecords is every record of g's current state, as if all of it
// had changed.
func consumerAllRecords(g *ConsumerGroup) []Record {
	g.dirtyHeader = true
	for id := range g.members {
		g.markMember(id)
	}
	return g.takeRecords(nil)
}

// consumerReplay rebuilds group "g" from records the way a coordinator
// loads it.
func consumerReplay(cfg ConsumerConfig, recs []Record, now time.Time) (*ConsumerGroup, error) {
	sc := DefaultConfig()
	sc.Consumer = cfg
	s := NewShard(sc)
	for _, r := range recs {
		if err := s.Replay(now, r); err != nil {
			return nil, err
		}
	}
	g := s.consumerFor("g")
	if g == nil {
		return nil, errors.New("no consumer group g")
	}
	return g, nil
}

func TestConsumerSnapshotCorrupt(t *testing.T) {
	g, _, now := consumerBuildGroup(t)
	recs := consumerAllRecords(g)
	back, err := consumerReplay(DefaultConsumerConfig(), recs, now)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(consumerAllRecords(back), recs) {
		t.Fatal("round trip differs")
	}
	for ri, rec := range recs {
		with := func(v []byte) []Record {
			out := slices.Clone(recs)
			out[ri] = Record{Key: rec.Key, Value: v}
			return out
		}
		// Every strict prefix is refused, never a panic.
		for i := 0; i < len(rec.Value); i++ {
			if _, err := consumerReplay(DefaultConsumerConfig(), with(rec.Value[:i:i]), now); err == nil {
				t.Fatalf("record %d: prefix of %d bytes accepted", ri, i)
			}
		}
		if _, err := consumerReplay(DefaultConsumerConfig(), with(append(slices.Clone(rec.Value), 0)), now); err == nil {
			t.Fatalf("record %d: trailing byte accepted", ri)
		}
		// Random corruption: errors or a consistent group, never a panic.
		r := rand.New(rand.NewSource(4))
		for i := 0; i < 2000; i++ {
			b := slices.Clone(rec.Value)
			for j := 0; j < 1+r.Intn(4); j++ {
				b[2+r.Intn(len(b)-2)] = byte(r.Intn(256))
			}
			if g2, err := consumerReplay(DefaultConsumerConfig(), with(b), now); err == nil {
				_ = consumerAllRecords(g2)
				_ = g2.State()
			}
		}
	}
	// A huge claimed count cannot make the decoder allocate.
	huge := []byte{consumerSnapMagic, consumerSnapVersion, 2, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f}
	if _, err := consumerReplay(DefaultConsumerConfig(), []Record{{Key: groupKey(keyConsumerGroup, "g"), Value: huge}}, now); err == nil {
		t.Fatal("huge count accepted")
	}
	if _, err := consumerReplay(DefaultConsumerConfig(), []Record{{Key: groupKey(keyConsumerGroup, "g"), Value: []byte{consumerSnapMagic, 9}}}, now); err == nil {
		t.Fatal("unknown version accepted")
	}
	if _, err := consumerReplay(DefaultConsumerConfig(), []Record{{Key: memberKey("g", "m1"), Value: []byte{consumerMemberMagic, 9}}}, now); err == nil {
		t.Fatal("unknown member version accepted")
	}
}

func TestConsumerDirtyAndDescribe(t *testing.T) {
	g, topics, now := consumerBuildGroup(t)
	if len(g.takeRecords(nil)) == 0 || len(g.takeRecords(nil)) != 0 {
		t.Fatal("takeRecords should report changes once")
	}
	// Keepalives and ticks before any deadline change nothing durable.
	req := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	req.Version, req.Group, req.MemberID, req.MemberEpoch = 1, "g", "m1", 1
	g.Heartbeat(now.Add(time.Second), req, topics)
	g.Tick(now.Add(2*time.Second), topics)
	g.OnMetadata(now.Add(2*time.Second), topics)
	if recs := g.takeRecords(nil); len(recs) != 0 {
		t.Fatalf("keepalive wrote %d records", len(recs))
	}
	d := g.Describe(topics, true)
	if d.AuthorizedOperations != groupDescribeOps || d.AssignorName != "range" || len(d.Members) != 2 {
		t.Fatalf("describe: %+v", d)
	}
	if d.Members[1].SubscribedTopicRegex == nil || *d.Members[1].SubscribedTopicRegex != "t.*" {
		t.Fatalf("regex not described: %+v", d.Members[1])
	}
	if got := g.Subscribed(topics); !reflect.DeepEqual(got, []string{"a", "t1"}) {
		t.Fatalf("subscribed: %v", got)
	}
}

// consumerSimClient behaves like a cooperative client: it adopts every
// assignment it is sent (dropping revoked partitions at once) and reports
// its owned set in a full request whenever that set changed.
type consumerSimClient struct {
	id       string
	epoch    int32
	owned    map[consumerTP]bool
	revoking map[consumerTP]bool // still owned while its revoke callback runs
	reported bool
	subs     []string
}

func TestConsumerSimulationNoDoubleOwnership(t *testing.T) {
	for seed := int64(1); seed <= 30; seed++ {
		r := rand.New(rand.NewSource(seed))
		topics := newFakeTopics()
		topics.set("a", int32(1+r.Intn(8)))
		topics.set("b", int32(1+r.Intn(8)))
		cfg := DefaultConsumerConfig()
		if seed%2 == 0 {
			cfg.Assignors = []string{"range"}
		}
		g := NewConsumerGroup("g", cfg)
		now := time.Unix(1_700_000_000, 0)
		var clients []*consumerSimClient
		nextID := 0

		send := func(c *consumerSimClient, full bool) {
			if len(c.revoking) > 0 && r.Intn(3) == 0 {
				for tp := range c.revoking {
					delete(c.owned, tp)
				}
				c.revoking = nil
				c.reported = false
			}
			req := kmsg.NewPtrConsumerGroupHeartbeatRequest()
			req.Version, req.Group, req.MemberID, req.MemberEpoch = 1, "g", c.id, c.epoch
			if c.epoch == 0 || full || !c.reported {
				req.RebalanceTimeoutMillis = 60000
				req.SubscribedTopicNames = c.subs
				req.Topics = []kmsg.ConsumerGroupHeartbeatRequestTopic{}
				if c.epoch != 0 {
					byTopic := map[[16]byte][]int32{}
					for tp := range c.owned {
						byTopic[tp.topic] = append(byTopic[tp.topic], tp.part)
					}
					for id, ps := range byTopic {
						req.Topics = append(req.Topics, kmsg.ConsumerGroupHeartbeatRequestTopic{TopicID: id, Partitions: ps})
					}
				}
				c.reported = true
			}
			resp := g.Heartbeat(now, req, topics)
			switch kerr.ErrorForCode(resp.ErrorCode) {
			case nil:
			case kerr.FencedMemberEpoch:
				c.epoch, c.owned, c.revoking = 0, map[consumerTP]bool{}, nil
				return
			default:
				t.Fatalf("seed %d: unexpected error %v: %s", seed, kerr.ErrorForCode(resp.ErrorCode), *resp.ErrorMessage)
			}
			c.epoch = resp.MemberEpoch
			if resp.Assignment != nil {
				owned := map[consumerTP]bool{}
				for _, tp := range resp.Assignment.Topics {
					for _, p := range tp.Partitions {
						owned[consumerTP{tp.TopicID, p}] = true
					}
				}
				// Newly assigned partitions are taken at once; revoked ones
				// stay owned until the client's revoke callback finishes.
				c.revoking = map[consumerTP]bool{}
				for tp := range c.owned {
					if !owned[tp] {
						c.revoking[tp] = true
						owned[tp] = true
					}
				}
				if len(c.revoking) == 0 && !reflect.DeepEqual(owned, c.owned) {
					c.reported = false
				}
				c.owned = owned
			}
			// Nobody may own a partition another client still owns.
			seen := map[consumerTP]string{}
			for _, o := range clients {
				for tp := range o.owned {
					if prev, ok := seen[tp]; ok {
						t.Fatalf("seed %d: %x/%d owned by %s and %s", seed, tp.topic, tp.part, prev, o.id)
					}
					seen[tp] = o.id
				}
			}
		}

		for step := 0; step < 400; step++ {
			now = now.Add(100 * time.Millisecond)
			switch k := r.Intn(20); {
			case k == 0 && len(clients) < 6:
				nextID++
				subs := [][]string{{"a"}, {"b"}, {"a", "b"}}[r.Intn(3)]
				c := &consumerSimClient{id: fmt.Sprintf("c%d", nextID), owned: map[consumerTP]bool{}, subs: subs}
				clients = append(clients, c)
				send(c, true)
			case k == 1 && len(clients) > 0:
				i := r.Intn(len(clients))
				c := clients[i]
				req := kmsg.NewPtrConsumerGroupHeartbeatRequest()
				req.Version, req.Group, req.MemberID, req.MemberEpoch = 1, "g", c.id, -1
				g.Heartbeat(now, req, topics)
				clients = append(clients[:i], clients[i+1:]...)
			case k == 2:
				name := []string{"a", "b"}[r.Intn(2)]
				_, n, _ := topics.TopicByName(name)
				if n < 16 {
					topics.set(name, n+1)
					g.OnMetadata(now, topics)
				}
			case k == 3 && len(clients) > 0:
				c := clients[r.Intn(len(clients))]
				c.subs = [][]string{{"a"}, {"b"}, {"a", "b"}}[r.Intn(3)]
				send(c, true)
			default:
				if len(clients) > 0 {
					send(clients[r.Intn(len(clients))], r.Intn(5) == 0)
				}
			}
		}
		// Let everyone settle: the group becomes Stable and every subscribed
		// partition is owned.
		for round := 0; round < 30; round++ {
			for _, c := range clients {
				send(c, false)
			}
		}
		if len(clients) == 0 {
			continue
		}
		if st := g.State(); st != "Stable" {
			t.Fatalf("seed %d: group did not settle: %s", seed, st)
		}
		owned := 0
		for _, c := range clients {
			owned += len(c.owned)
		}
		want := 0
		for _, name := range g.Subscribed(topics) {
			_, n, _ := topics.TopicByName(name)
			want += int(n)
		}
		if owned != want {
			t.Fatalf("seed %d: %d partitions owned, want %d", seed, owned, want)
		}
	}
}

// TestConsumerRestoresWholeGroupRecord: a log written when a consumer group
// was one record (version 1: the group's fields and every member) still
// loads.
func TestConsumerRestoresWholeGroupRecord(t *testing.T) {
	g, _, now := consumerBuildGroup(t)
	want := consumerAllRecords(g)
	whole := g.encodeHeader()
	whole[1] = consumerSnapVersionWhole
	whole = binary.AppendUvarint(whole, uint64(len(g.members)))
	for _, id := range sortedKeys(g.members) {
		whole = g.appendMember(whole, g.members[id])
	}
	back, err := consumerReplay(DefaultConsumerConfig(), []Record{{Key: groupKey(keyConsumerGroup, "g"), Value: whole}}, now)
	if err != nil {
		t.Fatal(err)
	}
	if got := consumerAllRecords(back); !reflect.DeepEqual(got, want) {
		t.Fatal("version 1 record restored a different group")
	}

	// The shard rewrites it in today's format at its next Drain, so the
	// whole record stops being the group key's latest value: the group
	// loads from the rewritten records alone.
	sc := DefaultConfig()
	s := NewShard(sc)
	if err := s.Replay(now, Record{Key: groupKey(keyConsumerGroup, "g"), Value: whole}); err != nil {
		t.Fatal(err)
	}
	rewritten := s.Drain()
	if len(rewritten) != len(want) {
		t.Fatalf("drain after loading a version 1 record: %d records, want %d (group and members)", len(rewritten), len(want))
	}
	again, err := consumerReplay(DefaultConsumerConfig(), rewritten, now)
	if err != nil {
		t.Fatal(err)
	}
	if got := consumerAllRecords(again); !reflect.DeepEqual(got, want) {
		t.Fatal("the rewritten records restore a different group")
	}
}
