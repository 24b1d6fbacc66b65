package coordinator

import (
	"bytes"
	"fmt"
	"math/rand"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"
	"github.com/shoalmq/shoal/internal/commalist"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

var classicT0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// classicHarness drives one ClassicGroup from a datadriven script.
type classicHarness struct {
	t    *testing.T
	cfg  ClassicConfig
	g    *ClassicGroup
	now  time.Time
	ids  int
	out  *strings.Builder
	live map[string]int // parked replies per label, to catch double answers
}

func (h *classicHarness) newGroup(cfg ClassicConfig) {
	h.cfg = cfg
	h.g = NewClassicGroup("g", cfg)
	h.g.newUUID = h.nextID
	h.now = classicT0
}

func (h *classicHarness) nextID() string {
	h.ids++
	return strconv.Itoa(h.ids)
}

func (h *classicHarness) at(d *datadriven.TestData) time.Time {
	if d.HasArg("at") {
		var s string
		d.ScanArgs(h.t, "at", &s)
		dur, err := time.ParseDuration(s)
		if err != nil {
			d.Fatalf(h.t, "bad at=%s: %v", s, err)
		}
		h.now = classicT0.Add(dur)
	}
	return h.now
}

func classicRel(t time.Time) string {
	if t.IsZero() {
		return "none"
	}
	return t.Sub(classicT0).String()
}

func classicErr(code int16) string {
	if code == 0 {
		return "NONE"
	}
	if ke, ok := kerr.ErrorForCode(code).(*kerr.Error); ok {
		return ke.Message
	}
	return fmt.Sprint(code)
}

func classicStr(d *datadriven.TestData, key, def string) string {
	if v, ok := scriptArg(d, key); ok {
		return v
	}
	return def
}

func classicList(d *datadriven.TestData, key string) []string {
	for _, a := range d.CmdArgs {
		if a.Key == key {
			var out []string
			for _, v := range a.Vals {
				out = append(out, commalist.Split(v)...)
			}
			return out
		}
	}
	return nil
}

func classicDur(d *datadriven.TestData, key, def string) time.Duration {
	s := classicStr(d, key, def)
	dur, err := time.ParseDuration(s)
	if err != nil {
		panic(fmt.Sprintf("bad %s=%s", key, s))
	}
	return dur
}

func classicInt(d *datadriven.TestData, key string, def int) int {
	s := classicStr(d, key, strconv.Itoa(def))
	n, err := strconv.Atoi(s)
	if err != nil {
		panic(fmt.Sprintf("bad %s=%s", key, s))
	}
	return n
}

func classicOptStr(d *datadriven.TestData, key string) *string {
	if !d.HasArg(key) {
		return nil
	}
	s := classicStr(d, key, "")
	return &s
}

// classicMeta encodes consumer-protocol metadata with the given topics and
// user data, so scripts can change a member's metadata.
func classicMeta(topics []string, user string) []byte {
	md := kmsg.NewConsumerMemberMetadata()
	md.Topics = topics
	if user != "" {
		md.UserData = []byte(user)
	}
	return md.AppendTo(nil)
}

func classicShowMeta(b []byte) string {
	var md kmsg.ConsumerMemberMetadata
	if err := md.ReadFrom(b); err != nil {
		return fmt.Sprintf("%q", b)
	}
	s := strings.Join(md.Topics, ",")
	if len(md.UserData) > 0 {
		s += "/" + string(md.UserData)
	}
	return s
}

func classicPtr(p *string) string {
	if p == nil {
		return "nil"
	}
	return *p
}

// parkReply counts a reply parked under key in live and returns what its
// answer calls first: it fails the test if the reply is answered twice.
func (h *classicHarness) parkReply(key string) (answer func()) {
	h.live[key]++
	answered := false
	return func() {
		if answered {
			h.t.Fatalf("%s answered twice", key)
		}
		answered = true
		h.live[key]--
	}
}

func (h *classicHarness) joinReply(label string) func(*kmsg.JoinGroupResponse) {
	answer := h.parkReply("join " + label)
	return func(r *kmsg.JoinGroupResponse) {
		answer()
		fmt.Fprintf(h.out, "> join %s: %s", label, classicErr(r.ErrorCode))
		if r.MemberID != "" {
			fmt.Fprintf(h.out, " member=%s", r.MemberID)
		}
		if r.ErrorCode == 0 {
			fmt.Fprintf(h.out, " gen=%d type=%s proto=%s leader=%s", r.Generation, classicPtr(r.ProtocolType), classicPtr(r.Protocol), r.LeaderID)
			if len(r.Members) > 0 {
				var ms []string
				for _, m := range r.Members {
					s := m.MemberID
					if m.InstanceID != nil {
						s += "@" + *m.InstanceID
					}
					ms = append(ms, s+"("+classicShowMeta(m.ProtocolMetadata)+")")
				}
				fmt.Fprintf(h.out, " members=[%s]", strings.Join(ms, " "))
			}
		} else if r.Generation != -1 {
			fmt.Fprintf(h.out, " gen=%d", r.Generation)
		}
		fmt.Fprintln(h.out)
	}
}

func (h *classicHarness) syncReply(label string) func(*kmsg.SyncGroupResponse) {
	answer := h.parkReply("sync " + label)
	return func(r *kmsg.SyncGroupResponse) {
		answer()
		fmt.Fprintf(h.out, "> sync %s: %s", label, classicErr(r.ErrorCode))
		if r.ErrorCode == 0 {
			fmt.Fprintf(h.out, " type=%s proto=%s assignment=%q", classicPtr(r.ProtocolType), classicPtr(r.Protocol), r.MemberAssignment)
		}
		fmt.Fprintln(h.out)
	}
}

// status is printed after every command.
func (h *classicHarness) status() string {
	g := h.g
	var b strings.Builder
	fmt.Fprintf(&b, "state=%s gen=%d", g.State(), g.generation)
	if g.protocol != "" {
		fmt.Fprintf(&b, " proto=%s", g.protocol)
	}
	if g.leader != "" {
		fmt.Fprintf(&b, " leader=%s", g.leader)
	}
	var ms []string
	for _, id := range g.order {
		m := g.members[id]
		s := id
		if m.instanceID != "" {
			s += "@" + m.instanceID
		}
		switch {
		case m.awaitingJoin():
			s += "(joining)"
		case m.awaitingSync():
			s += "(syncing)"
		}
		ms = append(ms, s)
	}
	fmt.Fprintf(&b, " members=[%s]", strings.Join(ms, " "))
	if len(g.pending) > 0 {
		var ps []string
		for p := range g.pending {
			ps = append(ps, p)
		}
		sort.Strings(ps)
		fmt.Fprintf(&b, " pending=[%s]", strings.Join(ps, " "))
	}
	if g.TakeDirty() {
		b.WriteString(" dirty")
	}
	fmt.Fprintf(&b, " next=%s\n", classicRel(g.NextDeadline()))
	return b.String()
}

func TestClassicDataDriven(t *testing.T) {
	datadriven.Walk(t, "testdata/classic", func(t *testing.T, path string) {
		h := &classicHarness{t: t, live: map[string]int{}}
		h.newGroup(DefaultClassicConfig())
		datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
			h.t = t
			var out strings.Builder
			h.out = &out
			now := h.at(d)
			g := h.g
			quiet := false
			switch d.Cmd {
			case "new":
				cfg := DefaultClassicConfig()
				cfg.InitialRebalanceDelay = classicDur(d, "delay", "3s")
				cfg.MinSessionTimeout = classicDur(d, "min-session", "6s")
				cfg.MaxSessionTimeout = classicDur(d, "max-session", "30m")
				cfg.MaxSize = classicInt(d, "max-size", cfg.MaxSize)
				h.newGroup(cfg)
				h.ids = 0
			case "join":
				member := classicStr(d, "member", "")
				client := classicStr(d, "client", "c")
				label := member
				if label == "" {
					label = client
				}
				req := kmsg.NewPtrJoinGroupRequest()
				req.Version = int16(classicInt(d, "v", 9))
				req.Group = "g"
				req.MemberID = member
				req.InstanceID = classicOptStr(d, "instance")
				req.ProtocolType = classicStr(d, "type", "consumer")
				req.SessionTimeoutMillis = int32(classicDur(d, "session", "10s").Milliseconds())
				req.RebalanceTimeoutMillis = int32(classicDur(d, "rebalance", "30s").Milliseconds())
				topics := classicList(d, "topics")
				if topics == nil {
					topics = []string{"t"}
				}
				protos := classicList(d, "protocols")
				if protos == nil && !d.HasArg("protocols") {
					protos = []string{"range"}
				}
				for _, p := range protos {
					jp := kmsg.NewJoinGroupRequestProtocol()
					jp.Name = p
					jp.Metadata = classicMeta(topics, classicStr(d, "meta", ""))
					req.Protocols = append(req.Protocols, jp)
				}
				g.JoinFrom(now, client, classicStr(d, "host", "/10.0.0.1"), req, h.joinReply(label))
			case "sync":
				member := classicStr(d, "member", "")
				req := kmsg.NewPtrSyncGroupRequest()
				req.Version = int16(classicInt(d, "v", 5))
				req.Group = "g"
				req.MemberID = member
				req.Generation = int32(classicInt(d, "gen", 0))
				req.InstanceID = classicOptStr(d, "instance")
				req.ProtocolType = classicOptStr(d, "type")
				req.Protocol = classicOptStr(d, "proto")
				for _, a := range classicList(d, "assign") {
					id, asg, ok := strings.Cut(a, ":")
					if !ok {
						d.Fatalf(t, "assign entries are member:assignment")
					}
					ga := kmsg.NewSyncGroupRequestGroupAssignment()
					ga.MemberID = id
					ga.MemberAssignment = []byte(asg)
					req.GroupAssignment = append(req.GroupAssignment, ga)
				}
				g.Sync(now, req, h.syncReply(member))
			case "heartbeat":
				req := kmsg.NewPtrHeartbeatRequest()
				req.Version = 4
				req.Group = "g"
				req.MemberID = classicStr(d, "member", "")
				req.Generation = int32(classicInt(d, "gen", 0))
				req.InstanceID = classicOptStr(d, "instance")
				resp := g.Heartbeat(now, req)
				fmt.Fprintf(&out, "heartbeat: %s\n", classicErr(resp.ErrorCode))
			case "leave":
				req := kmsg.NewPtrLeaveGroupRequest()
				req.Version = int16(classicInt(d, "v", 5))
				req.Group = "g"
				req.MemberID = classicStr(d, "member", "")
				for _, e := range classicList(d, "members") {
					id, inst, hasInst := strings.Cut(e, "@")
					lm := kmsg.NewLeaveGroupRequestMember()
					lm.MemberID = id
					if hasInst {
						lm.InstanceID = &inst
					}
					req.Members = append(req.Members, lm)
				}
				resp := g.Leave(now, req)
				fmt.Fprintf(&out, "leave: %s", classicErr(resp.ErrorCode))
				for _, m := range resp.Members {
					fmt.Fprintf(&out, " %s@%s=%s", m.MemberID, classicPtr(m.InstanceID), classicErr(m.ErrorCode))
				}
				fmt.Fprintln(&out)
			case "tick":
				g.Tick(now)
			case "commit", "txn-commit":
				err := g.ValidateOffsetCommit(now, int32(classicInt(d, "gen", -1)), classicStr(d, "member", ""), classicOptStr(d, "instance"), d.Cmd == "txn-commit")
				fmt.Fprintf(&out, "%s: %v\n", d.Cmd, classicErrString(err))
				quiet = true
			case "fetch":
				err := g.ValidateOffsetFetch(classicStr(d, "member", ""), int32(classicInt(d, "gen", -1)))
				fmt.Fprintf(&out, "fetch: %v\n", classicErrString(err))
				quiet = true
			case "describe":
				ds := g.Describe()
				fmt.Fprintf(&out, "group=%s state=%s type=%s proto=%q\n", ds.Group, ds.State, ds.ProtocolType, ds.Protocol)
				for _, m := range ds.Members {
					fmt.Fprintf(&out, "  %s instance=%s client=%s host=%s metadata=%s assignment=%q\n",
						m.MemberID, classicPtr(m.InstanceID), m.ClientID, m.ClientHost, classicShowMeta(m.ProtocolMetadata), m.MemberAssignment)
				}
				quiet = true
			case "subscribed":
				fmt.Fprintf(&out, "subscribed: %v\n", g.Subscribed())
				quiet = true
			case "members":
				for _, id := range g.order {
					m := g.members[id]
					fmt.Fprintf(&out, "%s session=%s rebalance=%s deadline=%s assignment=%q\n", id, m.sessionTimeout, m.rebalanceTimeout, classicRel(m.deadline), m.assignment)
				}
				quiet = true
			case "restore":
				snap := g.Snapshot()
				ng, err := RestoreClassicGroup("g", h.cfg, snap, now)
				if err != nil {
					d.Fatalf(t, "restore: %v", err)
				}
				if again := ng.Snapshot(); !bytes.Equal(again, snap) && ng.State() == "Stable" {
					d.Fatalf(t, "snapshot of restored group differs")
				}
				// The old group is gone with its coordinator.
				g.MarkDead(kerr.NotCoordinator)
				ng.newUUID = h.nextID
				h.g = ng
				fmt.Fprintf(&out, "restored from %d bytes\n", len(snap))
			case "markdead":
				var err *kerr.Error
				if d.HasArg("err") {
					err = kerr.ErrorForCode(int16(classicInt(d, "err", 0))).(*kerr.Error)
				}
				g.MarkDead(err)
			default:
				d.Fatalf(t, "unknown command %s", d.Cmd)
			}
			if !quiet {
				out.WriteString(h.status())
			}
			return out.String()
		})
		// Every parked reply must be answered once the group dies.
		h.out = &strings.Builder{}
		h.g.MarkDead(nil)
		for k, n := range h.live {
			if n != 0 {
				t.Errorf("%s: %d replies never answered", k, n)
			}
		}
	})
}

func classicErrString(err error) string {
	if err == nil {
		return "NONE"
	}
	if ke, ok := err.(*kerr.Error); ok {
		return ke.Message
	}
	return err.Error()
}

// TestClassicSnapshotCorrupt checks that every truncation and random
// corruption of a snapshot is rejected or decoded without panicking.
func TestClassicSnapshotCorrupt(t *testing.T) {
	g := NewClassicGroup("g", DefaultClassicConfig())
	cfg := g.cfg
	cfg.InitialRebalanceDelay = 0
	g.cfg = cfg
	now := classicT0
	var ids []string
	for i := 0; i < 3; i++ {
		req := kmsg.NewPtrJoinGroupRequest()
		req.Version = 9
		req.SessionTimeoutMillis = 10000
		req.RebalanceTimeoutMillis = 30000
		req.ProtocolType = "consumer"
		inst := fmt.Sprintf("i%d", i)
		req.InstanceID = &inst
		p := kmsg.NewJoinGroupRequestProtocol()
		p.Name = "range"
		p.Metadata = classicMeta([]string{"a", "b"}, "")
		req.Protocols = append(req.Protocols, p)
		g.JoinFrom(now, "c", "h", req, func(r *kmsg.JoinGroupResponse) { ids = append(ids, r.MemberID) })
	}
	g.Tick(now)
	if len(ids) != 3 || g.State() != "CompletingRebalance" {
		t.Fatalf("setup: %v %s", ids, g.State())
	}
	sreq := kmsg.NewPtrSyncGroupRequest()
	sreq.MemberID = g.leader
	sreq.Generation = 1
	for _, id := range ids {
		a := kmsg.NewSyncGroupRequestGroupAssignment()
		a.MemberID = id
		a.MemberAssignment = []byte("assignment-" + id)
		sreq.GroupAssignment = append(sreq.GroupAssignment, a)
	}
	g.Sync(now, sreq, func(*kmsg.SyncGroupResponse) {})
	snap := g.Snapshot()
	for i := 0; i < len(snap); i++ {
		if _, err := RestoreClassicGroup("g", cfg, snap[:i], now); err == nil {
			t.Fatalf("truncation to %d bytes decoded", i)
		}
	}
	if _, err := RestoreClassicGroup("g", cfg, append(append([]byte(nil), snap...), 0), now); err == nil {
		t.Fatalf("trailing byte accepted")
	}
	rng := rand.New(rand.NewSource(1))
	for i := 0; i < 20000; i++ {
		b := append([]byte(nil), snap...)
		for j := rng.Intn(4) + 1; j > 0; j-- {
			b[rng.Intn(len(b))] = byte(rng.Intn(256))
		}
		if rg, err := RestoreClassicGroup("g", cfg, b, now); err == nil {
			_ = rg.Snapshot()
			_ = rg.Describe()
			rg.Tick(now.Add(time.Hour))
		}
	}
	// A huge member count in a short snapshot must not allocate.
	huge := []byte{classicSnapshotV0, 0, 2, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f}
	if _, err := RestoreClassicGroup("g", cfg, huge, now); err == nil {
		t.Fatalf("huge member count accepted")
	}
}

func FuzzClassicRestore(f *testing.F) {
	f.Add([]byte{0, 0, 2, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		g, err := RestoreClassicGroup("g", DefaultClassicConfig(), b, classicT0)
		if err != nil {
			return
		}
		if _, err := RestoreClassicGroup("g", DefaultClassicConfig(), g.Snapshot(), classicT0); err != nil {
			t.Fatalf("re-encoded snapshot does not decode: %v", err)
		}
	})
}

// TestClassicRandomized drives a group with random requests from a few
// clients (some static) and checks invariants after every step: each
// parked reply is answered at most once and all are answered once the
// group dies, the generation never goes back, the leader is a member, and
// every snapshot restores.
func TestClassicRandomized(t *testing.T) {
	states := map[string]int{}
	for seed := int64(1); seed <= 40; seed++ {
		rng := rand.New(rand.NewSource(seed))
		cfg := DefaultClassicConfig()
		cfg.InitialRebalanceDelay = time.Duration(rng.Intn(3)) * time.Second
		cfg.MaxSize = 2 + rng.Intn(4)
		g := NewClassicGroup("g", cfg)
		n := 0
		g.newUUID = func() string { n++; return strconv.Itoa(n) }
		now := classicT0
		type client struct {
			name, member, instance string
			gen                    int32
		}
		clients := make([]*client, 6)
		for i := range clients {
			clients[i] = &client{name: fmt.Sprintf("c%d", i)}
			if i%2 == 0 {
				clients[i].instance = fmt.Sprintf("i%d", i)
			}
		}
		parked := 0
		var lastGen int32
		for step := 0; step < 400; step++ {
			now = now.Add(time.Duration(rng.Intn(4000)) * time.Millisecond)
			c := clients[rng.Intn(len(clients))]
			var inst *string
			if c.instance != "" {
				inst = &c.instance
			}
			switch op := rng.Intn(10); {
			case op < 3:
				req := kmsg.NewPtrJoinGroupRequest()
				req.Version = 9
				req.MemberID = c.member
				req.InstanceID = inst
				req.ProtocolType = "consumer"
				req.SessionTimeoutMillis = int32(6000 + rng.Intn(10000))
				req.RebalanceTimeoutMillis = int32(1000 + rng.Intn(20000))
				for _, name := range []string{"range", "roundrobin"}[:1+rng.Intn(2)] {
					p := kmsg.NewJoinGroupRequestProtocol()
					p.Name = name
					p.Metadata = classicMeta([]string{"t"}, strconv.Itoa(rng.Intn(2)))
					req.Protocols = append(req.Protocols, p)
				}
				parked++
				done := false
				g.JoinFrom(now, c.name, "h", req, func(r *kmsg.JoinGroupResponse) {
					if done {
						t.Fatalf("seed %d: join answered twice", seed)
					}
					done = true
					parked--
					switch r.ErrorCode {
					case 0:
						c.member, c.gen = r.MemberID, r.Generation
					case kerr.MemberIDRequired.Code:
						c.member = r.MemberID
					case kerr.UnknownMemberID.Code, kerr.FencedInstanceID.Code:
						c.member = ""
					}
				})
			case op < 5:
				req := kmsg.NewPtrSyncGroupRequest()
				req.MemberID = c.member
				req.InstanceID = inst
				req.Generation = c.gen
				for _, o := range clients {
					if o.member != "" && rng.Intn(2) == 0 {
						a := kmsg.NewSyncGroupRequestGroupAssignment()
						a.MemberID = o.member
						a.MemberAssignment = []byte(o.name)
						req.GroupAssignment = append(req.GroupAssignment, a)
					}
				}
				parked++
				done := false
				g.Sync(now, req, func(r *kmsg.SyncGroupResponse) {
					if done {
						t.Fatalf("seed %d: sync answered twice", seed)
					}
					done = true
					parked--
				})
			case op < 7:
				req := kmsg.NewPtrHeartbeatRequest()
				req.MemberID = c.member
				req.InstanceID = inst
				req.Generation = c.gen
				g.Heartbeat(now, req)
			case op < 8:
				req := kmsg.NewPtrLeaveGroupRequest()
				req.Version = 5
				m := kmsg.NewLeaveGroupRequestMember()
				m.MemberID = c.member
				if rng.Intn(2) == 0 {
					m.MemberID = ""
					m.InstanceID = inst
				}
				req.Members = append(req.Members, m)
				g.Leave(now, req)
			default:
				if d := g.NextDeadline(); !d.IsZero() && d.After(now) && rng.Intn(2) == 0 {
					now = d
				}
				g.Tick(now)
				if d := g.NextDeadline(); !d.IsZero() && !d.After(now) {
					t.Fatalf("seed %d: deadline %v not after tick at %v", seed, d, now)
				}
			}
			if g.generation < lastGen {
				t.Fatalf("seed %d: generation went back", seed)
			}
			lastGen = g.generation
			states[g.State()]++
			if len(g.members) > 0 && g.members[g.leader] == nil {
				t.Fatalf("seed %d: leader %q is not a member", seed, g.leader)
			}
			if len(g.members) != len(g.order) {
				t.Fatalf("seed %d: order out of sync", seed)
			}
			for inst, id := range g.static {
				if m := g.members[id]; m == nil || m.instanceID != inst {
					t.Fatalf("seed %d: static map broken for %s", seed, inst)
				}
			}
			if _, err := RestoreClassicGroup("g", cfg, g.Snapshot(), now); err != nil {
				t.Fatalf("seed %d: restore: %v", seed, err)
			}
		}
		g.MarkDead(nil)
		if parked != 0 {
			t.Fatalf("seed %d: %d replies never answered", seed, parked)
		}
	}
	for _, st := range []string{"Empty", "PreparingRebalance", "CompletingRebalance", "Stable"} {
		if states[st] == 0 {
			t.Errorf("no step ended in %s: %v", st, states)
		}
	}
	t.Logf("steps per state: %v", states)
}
