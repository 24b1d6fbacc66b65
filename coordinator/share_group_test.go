package coordinator

import (
	"fmt"
	"math"
	"math/rand"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

type shareHarness struct {
	scriptGroup
	g   *ShareGroup
	cfg ShareConfig
}

func TestShareGroupDataDriven(t *testing.T) {
	datadriven.Walk(t, "testdata/share", func(t *testing.T, path string) {
		h := &shareHarness{scriptGroup: newScriptGroup(), cfg: DefaultShareConfig()}
		h.g = NewShareGroup("g", h.cfg)
		datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
			out := h.run(t, d)
			shareCheckInvariants(t, h.g, h.topics)
			return out
		})
	})
}

func (h *shareHarness) run(t *testing.T, d *datadriven.TestData) string {
	h.at(t, d)
	if out, ok := h.runShared(t, d, h.g, h.groupLine); ok {
		return out
	}
	switch d.Cmd {
	case "new-group":
		h.cfg = DefaultShareConfig()
		if v, ok := scriptArg(d, "session"); ok {
			h.cfg.SessionTimeout = scriptDuration(t, v)
		}
		if v, ok := scriptArg(d, "interval"); ok {
			h.cfg.HeartbeatInterval = scriptDuration(t, v)
		}
		if v, ok := scriptArg(d, "max-size"); ok {
			h.cfg.MaxSize, _ = strconv.Atoi(v)
		}
		h.g = NewShareGroup("g", h.cfg)
		return h.groupLine()

	case "overrides":
		var session, interval time.Duration
		if v, ok := scriptArg(d, "session"); ok {
			session = scriptDuration(t, v)
		}
		if v, ok := scriptArg(d, "interval"); ok {
			interval = scriptDuration(t, v)
		}
		h.g.SetOverrides(session, interval)
		return h.groupLine()

	case "heartbeat":
		req := h.request(t, d)
		v := ValidateShareGroupHeartbeat(req)
		client, _ := scriptArg(d, "client")
		host, _ := scriptArg(d, "host")
		resp := h.g.HeartbeatFrom(h.now, client, host, req, h.topics)
		if (v == nil) != (resp.ErrorCode != kerr.InvalidRequest.Code) || (v != nil && *v.ErrorMessage != *resp.ErrorMessage) {
			t.Fatalf("ValidateShareGroupHeartbeat disagrees with HeartbeatFrom: %+v vs %+v", v, resp)
		}
		return h.formatResponse(resp) + "\n" + h.groupLine()

	case "heartbeat-all":
		// Every member heartbeats at the epoch it has (a keepalive).
		var b strings.Builder
		for _, m := range h.g.Members() {
			req := kmsg.NewPtrShareGroupHeartbeatRequest()
			req.Version, req.GroupID, req.MemberID, req.MemberEpoch = 1, "g", m.ID, m.Epoch
			resp := h.g.HeartbeatFrom(h.now, "", "", req, h.topics)
			b.WriteString(h.formatResponse(resp) + "\n")
		}
		return b.String() + h.groupLine()

	case "members":
		return h.members()

	case "coverage":
		return h.coverage()

	case "describe":
		ops := false
		if _, ok := d.Arg("ops"); ok {
			ops = true
		}
		return h.describe(ops)

	case "subscribed":
		return "[" + strings.Join(h.g.Subscribed(h.topics), ",") + "]"

	case "dirty":
		return strconv.FormatBool(h.g.TakeDirty())

	case "restart":
		h.g.TakeDirty()
		snap := h.g.Snapshot()
		g, err := RestoreShareGroup("g", h.cfg, snap, h.now)
		if err != nil {
			return "error: " + err.Error()
		}
		if again := g.Snapshot(); string(again) != string(snap) {
			t.Fatalf("snapshot does not round trip")
		}
		if g.TakeDirty() {
			t.Fatalf("a restored group is dirty")
		}
		g.SetOverrides(h.g.sessionOverride, h.g.intervalOverride)
		h.g = g
		return fmt.Sprintf("restored %d bytes\n%s", len(snap), h.groupLine())
	}
	t.Fatalf("unknown command %q", d.Cmd)
	return ""
}

// request builds a heartbeat: version 1, group "g", epoch 0 unless given;
// SubscribedTopicNames and RackID null unless given.
func (h *shareHarness) request(t *testing.T, d *datadriven.TestData) *kmsg.ShareGroupHeartbeatRequest {
	req := kmsg.NewPtrShareGroupHeartbeatRequest()
	req.Version = 1
	req.GroupID, req.MemberID, req.MemberEpoch, req.SubscribedTopicNames = scriptHeartbeat(t, d)
	if v, ok := scriptArg(d, "rack"); ok {
		req.RackID = &v
	}
	return req
}

func (h *shareHarness) formatResponse(resp *kmsg.ShareGroupHeartbeatResponse) string {
	var a map[[16]byte][]int32
	if resp.Assignment != nil {
		a = make(map[[16]byte][]int32)
		for _, tp := range resp.Assignment.TopicPartitions {
			a[tp.TopicID] = tp.Partitions
		}
	}
	return h.topics.heartbeatLine(resp.ErrorCode, resp.ErrorMessage, "<null>", resp.MemberID, resp.MemberEpoch, resp.HeartbeatIntervalMillis, a)
}

func (h *shareHarness) groupLine() string {
	return fmt.Sprintf("group epoch=%d assignment-epoch=%d state=%s members=%d",
		h.g.groupEpoch, h.g.assignmentEpoch, h.g.State(), len(h.g.members))
}

// members prints the internal view, including the target a member has not
// picked up yet.
func (h *shareHarness) members() string {
	var b strings.Builder
	b.WriteString(h.groupLine())
	for _, id := range sortedKeys(h.g.members) {
		m := h.g.members[id]
		fmt.Fprintf(&b, "\n%s epoch=%d prev=%d topics=[%s] assigned=%s target=%s",
			id, m.epoch, m.prevEpoch, strings.Join(m.names, ","),
			h.topics.format(m.assigned), h.topics.format(h.g.target[id]))
	}
	return b.String()
}

// coverage prints, for the current target, who holds each partition of each
// subscribed topic and how many partitions each member has.
func (h *shareHarness) coverage() string {
	var b strings.Builder
	b.WriteString(h.groupLine())
	holders := make(map[string][]string)
	counts := make(map[string]int)
	for _, id := range sortedKeys(h.g.members) {
		for t, ps := range h.g.target[id] {
			for _, p := range ps {
				key := fmt.Sprintf("%s:%d", h.topics.name(t), p)
				holders[key] = append(holders[key], id)
				counts[id]++
			}
		}
	}
	for _, name := range h.g.Subscribed(h.topics) {
		_, n, _ := h.topics.TopicByName(name)
		for p := int32(0); p < n; p++ {
			key := fmt.Sprintf("%s:%d", name, p)
			ids := holders[key]
			sort.Strings(ids)
			fmt.Fprintf(&b, "\n%s <- %s (%d)", key, strings.Join(ids, ","), len(ids))
		}
	}
	var cs []string
	for _, id := range sortedKeys(h.g.members) {
		cs = append(cs, fmt.Sprintf("%s=%d", id, counts[id]))
	}
	fmt.Fprintf(&b, "\ncounts %s", strings.Join(cs, " "))
	return b.String()
}

func (h *shareHarness) describe(ops bool) string {
	dg := h.g.Describe(h.topics, ops)
	var b strings.Builder
	opsStr := strconv.Itoa(int(dg.AuthorizedOperations))
	if dg.AuthorizedOperations == math.MinInt32 {
		opsStr = "none"
	}
	fmt.Fprintf(&b, "group=%s state=%s epoch=%d assignment-epoch=%d assignor=%s ops=%s",
		dg.GroupID, dg.GroupState, dg.GroupEpoch, dg.AssignmentEpoch, dg.Assignor, opsStr)
	for _, m := range dg.Members {
		rack := "-"
		if m.RackID != nil {
			rack = *m.RackID
		}
		var words []string
		for _, tp := range m.Assignment.TopicPartitions {
			if id, _, _ := h.topics.TopicByName(tp.Topic); id != tp.TopicID {
				words = append(words, "BADID")
			}
			words = append(words, partitionsWord(tp.Topic, tp.Partitions))
		}
		fmt.Fprintf(&b, "\n%s epoch=%d client=%s host=%s rack=%s topics=[%s] assignment=%s",
			m.MemberID, m.MemberEpoch, m.ClientID, m.ClientHost, rack, strings.Join(m.SubscribedTopicNames, ","), assignmentWords(words))
	}
	return b.String()
}

// shareCheckInvariants checks what must hold after every step: the target
// is current, covers every subscribed partition and only subscribed ones,
// members' epochs never pass the assignment epoch, the subscription counts
// match, and the snapshot round trips.
func shareCheckInvariants(t *testing.T, g *ShareGroup, topics TopicsView) {
	t.Helper()
	if g.assignmentEpoch != g.groupEpoch {
		t.Fatalf("assignment epoch %d != group epoch %d", g.assignmentEpoch, g.groupEpoch)
	}
	// The target matches the metadata the group last saw; a change it was
	// not told about yet is picked up by the next heartbeat.
	current := g.metaHash == g.sgMetaHash(topics)
	subs := make(map[string]int)
	subscribers := make(map[[16]byte]int)
	for id, m := range g.members {
		if m.epoch > g.assignmentEpoch {
			t.Fatalf("member %s epoch %d beyond assignment epoch %d", id, m.epoch, g.assignmentEpoch)
		}
		if m.epoch == g.assignmentEpoch && !equalAssignment(m.assigned, g.target[id]) {
			t.Fatalf("member %s at the assignment epoch does not have its target", id)
		}
		mine := make(map[[16]byte]bool)
		for _, n := range m.names {
			subs[n]++
			if tid, np, ok := topics.TopicByName(n); ok && np > 0 {
				mine[tid] = true
				subscribers[tid]++
			}
		}
		for tid, ps := range g.target[id] {
			if !mine[tid] && current {
				t.Fatalf("member %s is assigned topic %x it does not subscribe to", id, tid)
			}
			_, np, _ := topics.TopicByID(tid)
			for _, p := range ps {
				if p < 0 || (current && p >= np) {
					t.Fatalf("member %s is assigned a missing partition %d", id, p)
				}
			}
		}
	}
	if len(subs) != len(g.subs) {
		t.Fatalf("subscription counts %v, want %v", g.subs, subs)
	}
	for n, c := range subs {
		if g.subs[n] != c {
			t.Fatalf("subscription counts %v, want %v", g.subs, subs)
		}
	}
	for tid := range subscribers {
		if !current {
			break
		}
		_, np, _ := topics.TopicByID(tid)
		for p := int32(0); p < np; p++ {
			found := false
			for _, a := range g.target {
				for _, q := range a[tid] {
					found = found || q == p
				}
			}
			if !found {
				t.Fatalf("partition %x/%d has no member", tid, p)
			}
		}
	}
	dirty := g.dirty
	snap := g.Snapshot()
	r, err := RestoreShareGroup(g.id, g.cfg, snap, time.Unix(0, 0))
	if err != nil {
		t.Fatalf("restore: %v", err)
	}
	if string(r.Snapshot()) != string(snap) {
		t.Fatalf("snapshot does not round trip")
	}
	g.dirty = dirty
}

func shareHeartbeatReq(member string, epoch int32, subscribe ...string) *kmsg.ShareGroupHeartbeatRequest {
	req := kmsg.NewPtrShareGroupHeartbeatRequest()
	req.Version = 1
	req.GroupID = "g"
	req.MemberID = member
	req.MemberEpoch = epoch
	if subscribe != nil {
		req.SubscribedTopicNames = subscribe
	}
	return req
}

// TestShareGroupRestoreCorrupt feeds every truncation and single-byte
// corruption of a snapshot to RestoreShareGroup: errors are fine, panics
// are not, and whatever restores must snapshot again.
func TestShareGroupRestoreCorrupt(t *testing.T) {
	topics := newFakeTopics()
	topics.set("a", 3)
	topics.set("b", 2)
	g := NewShareGroup("g", DefaultShareConfig())
	now := time.Unix(1_700_000_000, 0)
	rack := "r1"
	req := shareHeartbeatReq("m1", 0, "a", "b")
	req.RackID = &rack
	g.HeartbeatFrom(now, "c1", "h1", req, topics)
	g.HeartbeatFrom(now, "c2", "h2", shareHeartbeatReq("m2", 0, "a"), topics)
	snap := g.Snapshot()
	for i := 0; i < len(snap); i++ {
		if _, err := RestoreShareGroup("g", DefaultShareConfig(), snap[:i], now); err == nil {
			t.Fatalf("truncation at %d restored", i)
		}
		for _, x := range []byte{0x00, 0x01, 0x7f, 0x80, 0xff} {
			b := append([]byte(nil), snap...)
			b[i] = x
			if r, err := RestoreShareGroup("g", DefaultShareConfig(), b, now); err == nil {
				r.Snapshot()
				r.Describe(topics, true)
				r.Tick(now.Add(time.Hour), topics)
			}
		}
	}
	// A huge declared count must fail fast, not allocate.
	b := []byte{sgSnapMagic, sgSnapVersion, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f}
	if _, err := RestoreShareGroup("g", DefaultShareConfig(), b, now); err == nil {
		t.Fatal("huge member count restored")
	}
}

// TestShareGroupDirty checks that a pure keepalive changes nothing durable.
func TestShareGroupDirty(t *testing.T) {
	topics := newFakeTopics()
	topics.set("a", 2)
	g := NewShareGroup("g", DefaultShareConfig())
	now := time.Unix(1_700_000_000, 0)
	resp := g.HeartbeatFrom(now, "c", "h", shareHeartbeatReq("m1", 0, "a"), topics)
	if resp.ErrorCode != 0 || !g.TakeDirty() {
		t.Fatalf("join: %+v dirty=%v", resp, g.dirty)
	}
	resp = g.HeartbeatFrom(now.Add(time.Second), "c", "h", shareHeartbeatReq("m1", resp.MemberEpoch), topics)
	if resp.ErrorCode != 0 || resp.Assignment != nil {
		t.Fatalf("keepalive: %+v", resp)
	}
	if g.TakeDirty() {
		t.Fatal("a keepalive made the group dirty")
	}
	g.OnMetadata(now, topics)
	if g.TakeDirty() {
		t.Fatal("unchanged metadata made the group dirty")
	}
}

// TestShareGroupRandom drives a group with random joins, leaves, keepalives,
// stale epochs, subscription changes, metadata changes, expiries and
// restarts; the invariants are checked after every step.
func TestShareGroupRandom(t *testing.T) {
	for seed := int64(0); seed < 20; seed++ {
		rng := rand.New(rand.NewSource(seed))
		topics := newFakeTopics()
		names := []string{"a", "b", "c", "d"}
		for _, n := range names[:2] {
			topics.set(n, int32(1+rng.Intn(4)))
		}
		cfg := DefaultShareConfig()
		cfg.MaxSize = 12
		g := NewShareGroup("g", cfg)
		now := time.Unix(1_700_000_000, 0)
		epochs := map[string]int32{} // what each client believes
		for step := 0; step < 400; step++ {
			now = now.Add(time.Duration(rng.Intn(8000)) * time.Millisecond)
			id := fmt.Sprintf("m%d", rng.Intn(15))
			switch r := rng.Intn(20); {
			case r < 4:
				sub := shareRandomSubset(rng, names)
				resp := g.HeartbeatFrom(now, "", "", shareHeartbeatReq(id, 0, sub...), topics)
				if resp.ErrorCode == 0 {
					epochs[id] = resp.MemberEpoch
					if resp.Assignment == nil {
						t.Fatalf("seed %d: join without assignment", seed)
					}
				} else if len(sub) == 0 && resp.ErrorCode == kerr.InvalidRequest.Code {
					// no subscription: refused
				} else if resp.ErrorCode != kerr.GroupMaxSizeReached.Code {
					t.Fatalf("seed %d: join answered %d", seed, resp.ErrorCode)
				}
			case r < 12:
				e, ok := epochs[id]
				if !ok {
					continue
				}
				if e > 1 && rng.Intn(8) == 0 {
					e-- // a retry after a lost reply, or a stale client
				}
				var sub []string
				if rng.Intn(4) == 0 {
					sub = shareRandomSubset(rng, names)
					if sub == nil {
						sub = []string{}
					}
				}
				resp := g.HeartbeatFrom(now, "", "", shareHeartbeatReq(id, e, sub...), topics)
				switch resp.ErrorCode {
				case 0:
					epochs[id] = resp.MemberEpoch
					m := g.members[id]
					if !equalAssignment(m.assigned, g.target[id]) || m.epoch != g.assignmentEpoch {
						t.Fatalf("seed %d: member %s not reconciled after heartbeat", seed, id)
					}
				case kerr.UnknownMemberID.Code, kerr.FencedMemberEpoch.Code:
					delete(epochs, id)
				default:
					t.Fatalf("seed %d: heartbeat answered %d", seed, resp.ErrorCode)
				}
			case r < 13:
				if _, ok := epochs[id]; ok {
					g.HeartbeatFrom(now, "", "", shareHeartbeatReq(id, -1), topics)
					delete(epochs, id)
				}
			case r < 15:
				n := names[rng.Intn(len(names))]
				if rng.Intn(3) == 0 {
					topics.del(n)
				} else {
					_, cur, _ := topics.TopicByName(n)
					topics.set(n, cur+int32(rng.Intn(3)))
				}
				g.OnMetadata(now, topics)
			case r < 17:
				g.Tick(now, topics)
			case r < 18:
				snap := g.Snapshot()
				ng, err := RestoreShareGroup("g", cfg, snap, now)
				if err != nil {
					t.Fatalf("seed %d: restore: %v", seed, err)
				}
				g = ng
			default:
				dl := g.NextDeadline()
				if !dl.IsZero() {
					g.Tick(dl.Add(-time.Nanosecond), topics)
					before := len(g.members)
					g.Tick(dl, topics)
					if len(g.members) >= before {
						t.Fatalf("seed %d: nothing expired at the deadline", seed)
					}
					if dl.After(now) {
						now = dl
					}
				}
			}
			shareCheckInvariants(t, g, topics)
			if len(g.members) > cfg.MaxSize {
				t.Fatalf("seed %d: %d members", seed, len(g.members))
			}
		}
	}
}

func shareRandomSubset(rng *rand.Rand, names []string) []string {
	var out []string
	for _, n := range names {
		if rng.Intn(2) == 0 {
			out = append(out, n)
		}
	}
	if len(out) == 0 && rng.Intn(2) == 0 {
		out = []string{names[rng.Intn(len(names))]}
	}
	return out
}
