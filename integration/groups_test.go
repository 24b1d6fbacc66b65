package integration

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// balancerCase is one way of running a consumer group.
type balancerCase struct {
	name string
	opts []kgo.Opt
	// protocol is the classic protocol (client assignor) DescribeGroups
	// must report; empty for KIP-848 groups.
	protocol string
	// assignor is the server assignor of a KIP-848 group.
	assignor string
	// sticky: a member keeps every partition it does not have to give up,
	// so when a member joins the others only lose partitions and when one
	// leaves the others only gain.
	sticky bool
}

// TestGroupBalancers runs one group per balancer through members joining
// while records are produced, one member leaving and one dying, and checks
// that every record was consumed, the final committed offsets are the end
// offsets and no partition ever had two owners.
func TestGroupBalancers(t *testing.T) {
	t.Parallel()
	n := startNode(t, nodeOpts{set: groupNodeSettings})
	cases := []balancerCase{
		{name: "range", opts: []kgo.Opt{kgo.Balancers(kgo.RangeBalancer())}, protocol: "range"},
		{name: "roundrobin", opts: []kgo.Opt{kgo.Balancers(kgo.RoundRobinBalancer())}, protocol: "roundrobin"},
		{name: "sticky", opts: []kgo.Opt{kgo.Balancers(kgo.StickyBalancer())}, protocol: "sticky"},
		{name: "cooperative-sticky", opts: []kgo.Opt{kgo.Balancers(kgo.CooperativeStickyBalancer())}, protocol: "cooperative-sticky", sticky: true},
		{name: "consumer-range", opts: []kgo.Opt{kgo.Balancers(kgo.RangeBalancer()), kgo.ServerSideBalancer()}, assignor: "range"},
		{name: "consumer-uniform", opts: []kgo.Opt{kgo.Balancers(kgo.CooperativeStickyBalancer()), kgo.ServerSideBalancer()}, assignor: "uniform", sticky: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			runBalancerScenario(t, n, c)
		})
	}
}

func runBalancerScenario(t *testing.T, n *node, c balancerCase) {
	const parts = 12
	adm := n.Admin(t)
	topic := topicName(t, "")
	group := topic + "-group"
	createTopic(t, adm, topic, parts, nil)

	p := newKeyedProducer(t, n, topic, 0)
	p.fill(t, 6000)
	l := newOwnLedger(t, topic)
	p.start(t, 5, 10*time.Millisecond)

	names := func(ms []*member) []string {
		var s []string
		for _, m := range ms {
			s = append(s, m.name)
		}
		return s
	}
	// settle waits until the live members share all partitions evenly
	// and each of them is consuming again.
	settle := func(what string, live ...*member) {
		t.Helper()
		waitFor(t, 45*time.Second, what+": balanced assignment", func() (bool, string) {
			return l.balanced(parts, names(live)...)
		})
		base := map[string]int{}
		for _, m := range live {
			base[m.name] = l.consumedBy(m.name)
		}
		waitFor(t, 30*time.Second, what+": every member consuming", func() (bool, string) {
			for _, m := range live {
				if got := l.consumedBy(m.name) - base[m.name]; got < 20 {
					return false, fmt.Sprintf("%s consumed %d records since the assignment settled", m.name, got)
				}
			}
			return true, ""
		})
	}
	// only checks that between mark and now the given members saw only
	// the allowed kind of change.
	only := func(what string, mark int, forbidden string, ms ...*member) {
		t.Helper()
		if !c.sticky {
			return
		}
		for _, m := range ms {
			for _, e := range l.eventsSince(mark, m.name) {
				if (e.kind == forbidden || forbidden == "revoked" && e.kind == "lost") && len(e.parts) > 0 {
					t.Errorf("%s: %s was %s %v; a sticky assignment only moves what it must (%s)", what, m.name, e.kind, e.parts, e)
				}
			}
		}
	}

	m1 := startMember(t, n, l, "m1", group, c.opts...)
	settle("m1 alone", m1)

	mark := l.mark()
	m2 := startMember(t, n, l, "m2", group, c.opts...)
	settle("m2 joined", m1, m2)
	only("m2 joined", mark, "assigned", m1)

	mark = l.mark()
	m3 := startMember(t, n, l, "m3", group, c.opts...)
	settle("m3 joined", m1, m2, m3)
	only("m3 joined", mark, "assigned", m1, m2)
	checkDescribed(t, adm, l, group, c, m1, m2, m3)

	mark = l.mark()
	m2.leave(t)
	settle("m2 left", m1, m3)
	only("m2 left", mark, "revoked", m1, m3)

	// m1 (the first member, the leader of a classic group) dies: its
	// partitions move once its session times out.
	mark = l.mark()
	deadID, deadGen := m1.cl.GroupMetadata()
	m1.kill()
	settle("m1 died", m3)
	only("m1 died", mark, "revoked", m3)

	// The dead member's commits are refused once it is out of the group
	// (a zombie must not move offsets back under the new owner).
	code := rawCommit(t, n, group, deadID, deadGen, nil, topic, 0, 0)
	t.Logf("commit from the expired member: %v", kerr.ErrorForCode(code))
	switch code {
	case kerr.UnknownMemberID.Code, kerr.IllegalGeneration.Code, kerr.StaleMemberEpoch.Code, kerr.FencedMemberEpoch.Code:
	default:
		t.Errorf("commit from the expired member %s (generation %d): error %d (%v), want it fenced (UNKNOWN_MEMBER_ID)", deadID, deadGen, code, kerr.ErrorForCode(code))
	}

	p.finish(t)
	ends := endOffsets(t, adm, topic)
	waitFor(t, 30*time.Second, "every record consumed", func() (bool, string) {
		miss, sample := missingRecords(p, l, ends)
		return len(miss) == 0, fmt.Sprintf("not consumed per partition: %v (e.g. %s)", miss, sample)
	})
	m3.leave(t)

	got := committed(t, adm, group, topic)
	for part := int32(0); part < parts; part++ {
		if o, ok := got[part]; !ok || o.At != ends[part] {
			t.Errorf("partition %d: committed offset %v (present %v), want the end offset %d", part, o.At, ok, ends[part])
		}
	}
	checkProducedConsumed(t, p, l, ends)
	l.check(t)
}

// checkDescribed checks what DescribeGroups (classic) or
// ConsumerGroupDescribe (KIP-848) say about a settled group against what the
// members were told.
func checkDescribed(t *testing.T, adm *kadm.Client, l *ownLedger, group string, c balancerCase, ms ...*member) {
	t.Helper()
	want := map[string][]int32{}
	for _, m := range ms {
		want[m.name] = l.ownedBy(m.name)
	}
	if c.assignor == "" {
		waitFor(t, 15*time.Second, "DescribeGroups shows the settled group", func() (bool, string) {
			ds, err := adm.DescribeGroups(ctxT(t, opTimeout), group)
			d, err := describedGroup(ds, err, group, func(d kadm.DescribedGroup) error { return d.Err })
			if err != nil {
				return false, err.Error()
			}
			if d.State != "Stable" || d.ProtocolType != "consumer" || d.Protocol != c.protocol || len(d.Members) != len(ms) {
				return false, fmt.Sprintf("state %q protocol type %q protocol %q, %d members; want Stable, consumer, %s, %d",
					d.State, d.ProtocolType, d.Protocol, len(d.Members), c.protocol, len(ms))
			}
			for _, dm := range d.Members {
				a, ok := dm.Assigned.AsConsumer()
				if !ok {
					return false, fmt.Sprintf("member %s: assignment is not a consumer assignment", dm.ClientID)
				}
				var got []int32
				for _, at := range a.Topics {
					got = append(got, at.Partitions...)
				}
				if ok, why := describedHolds(want, dm.ClientID, dm.MemberID, got); !ok {
					return false, why
				}
			}
			return true, ""
		})
		return
	}
	waitFor(t, 15*time.Second, "ConsumerGroupDescribe shows the settled group", func() (bool, string) {
		ds, err := adm.DescribeConsumerGroups(ctxT(t, opTimeout), group)
		d, err := describedGroup(ds, err, group, func(d kadm.DescribedConsumerGroup) error { return d.Err })
		if err != nil {
			return false, err.Error()
		}
		if d.State != "Stable" || d.AssignorName != c.assignor || len(d.Members) != len(ms) || d.Epoch != d.AssignmentEpoch {
			return false, fmt.Sprintf("state %q assignor %q, %d members, epoch %d, assignment epoch %d; want Stable, %s, %d, equal epochs",
				d.State, d.AssignorName, len(d.Members), d.Epoch, d.AssignmentEpoch, c.assignor, len(ms))
		}
		for _, dm := range d.Members {
			var ps []int32
			for _, tp := range dm.Assignment.Sorted() {
				ps = append(ps, tp.Partitions...)
			}
			if ok, why := describedHolds(want, dm.ClientID, dm.MemberID, ps); !ok {
				return false, why
			}
			if dm.MemberEpoch != d.Epoch {
				return false, fmt.Sprintf("member %s at epoch %d, group at %d", dm.ClientID, dm.MemberEpoch, d.Epoch)
			}
		}
		return true, ""
	})
	if c.assignor == "range" {
		// The range assignor hands out contiguous runs.
		for _, m := range ms {
			ps := want[m.name]
			for i := 1; i < len(ps); i++ {
				if ps[i] != ps[i-1]+1 {
					t.Errorf("range assignor gave %s %v, not a contiguous range", m.name, ps)
					break
				}
			}
		}
	}
}

// describedGroup picks group from a kadm describe answer; the request's
// error, else the group's own, says why it is not there.
func describedGroup[D any](ds map[string]D, err error, group string, groupErr func(D) error) (D, error) {
	d := ds[group]
	if err == nil {
		err = groupErr(d)
	}
	return d, err
}

// describedHolds reports whether a described member's partitions are the
// ones its client holds (want, by client id).
func describedHolds(want map[string][]int32, clientID, memberID string, described []int32) (bool, string) {
	slices.Sort(described)
	if !slices.Equal(described, want[clientID]) {
		return false, fmt.Sprintf("member %s (%s): described assignment %v, client holds %v", clientID, memberID, described, want[clientID])
	}
	return true, ""
}

// TestStaticMemberRestart restarts a static member within its session
// timeout: the new client with the same instance id gets the old
// partitions back and the group does not rebalance.
func TestStaticMemberRestart(t *testing.T) {
	t.Parallel()
	n := startNode(t, nodeOpts{set: groupNodeSettings})
	for _, c := range []struct {
		name     string
		balancer kgo.GroupBalancer
	}{
		{"cooperative-sticky", kgo.CooperativeStickyBalancer()},
		{"range", kgo.RangeBalancer()},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			runStaticRestart(t, n, c.balancer)
		})
	}
}

func runStaticRestart(t *testing.T, n *node, balancer kgo.GroupBalancer) {
	const parts = 6
	adm, topic, group, p, l := newSpreadGroupTopic(t, n, parts, 600)
	static := func(id string) []kgo.Opt {
		return []kgo.Opt{
			kgo.InstanceID(id),
			kgo.SessionTimeout(10 * time.Second),
			kgo.Balancers(balancer),
		}
	}

	a := startMember(t, n, l, "a", group, static("static-a")...)
	waitFor(t, 30*time.Second, "a holds every partition", func() (bool, string) { return l.balanced(parts, "a") })
	b := startMember(t, n, l, "b", group, static("static-b")...)
	waitFor(t, 30*time.Second, "a and b share the partitions", func() (bool, string) { return l.balanced(parts, "a", "b") })
	// Both at the same generation and the group Stable: the cooperative
	// second round is over.
	var genA, genB int32
	var memberB string
	waitFor(t, 15*time.Second, "group stable", func() (bool, string) {
		_, genA = a.cl.GroupMetadata()
		memberB, genB = b.cl.GroupMetadata()
		st := groupState(t, adm, group)
		return genA == genB && st == "Stable", fmt.Sprintf("generations %d and %d, state %s", genA, genB, st)
	})
	bParts := l.ownedBy("b")
	aParts := l.ownedBy("a")

	// Close b: a static member does not leave the group on close.
	mark := l.mark()
	b.stopPolling()
	b.close()
	l.event("b", "gone", nil)
	restarted := time.Now()
	b2 := startMember(t, n, l, "b2", group, static("static-b")...)
	waitFor(t, 30*time.Second, "restarted b assigned", func() (bool, string) {
		got := l.ownedBy("b2")
		return len(got) > 0, fmt.Sprintf("b2 holds %v", got)
	})
	if took := time.Since(restarted); took > 8*time.Second {
		t.Errorf("restarted member took %v to get its partitions back", took)
	}
	if got := l.ownedBy("b2"); !slices.Equal(got, bParts) {
		t.Errorf("restarted static member got %v, its previous incarnation held %v", got, bParts)
	}

	// Both keep consuming: new records on every partition reach them.
	baseA, baseB := l.consumedBy("a"), l.consumedBy("b2")
	p.fill(t, 60)
	waitFor(t, 20*time.Second, "both members consume new records", func() (bool, string) {
		da, db := l.consumedBy("a")-baseA, l.consumedBy("b2")-baseB
		return da >= 10*len(aParts) && db >= 10*len(bParts), fmt.Sprintf("a consumed %d, b2 %d", da, db)
	})

	for _, e := range l.eventsSince(mark, "a") {
		t.Errorf("the other member saw a partition change after the static restart: %s", e)
	}
	if _, g := a.cl.GroupMetadata(); g != genA {
		t.Errorf("member a's generation went from %d to %d: the group rebalanced", genA, g)
	}
	memberB2, genB2 := b2.cl.GroupMetadata()
	t.Logf("b (%s) held %v at generation %d; restarted as %s holding %v at generation %d", memberB, bParts, genB, memberB2, l.ownedBy("b2"), genB2)
	if genB2 != genA {
		t.Errorf("restarted member is at generation %d, the group was at %d", genB2, genA)
	}
	if memberB2 == memberB {
		t.Errorf("restarted member kept member id %q; a replacement gets a new one", memberB2)
	}
	// The replaced incarnation is fenced.
	instance := "static-b"
	if code := rawCommit(t, n, group, memberB, genB, &instance, topic, bParts[0], 0); code != kerr.FencedInstanceID.Code {
		t.Errorf("commit from the replaced member %s of static-b: error %d (%v), want FENCED_INSTANCE_ID", memberB, code, kerr.ErrorForCode(code))
	}
	ds, err := adm.DescribeGroups(ctxT(t, opTimeout), group)
	if err != nil {
		t.Fatalf("describe: %v", err)
	}
	d := ds[group]
	if d.State != "Stable" || len(d.Members) != 2 {
		t.Fatalf("group state %q with %d members, want Stable with 2", d.State, len(d.Members))
	}
	for _, dm := range d.Members {
		if dm.InstanceID == nil {
			t.Errorf("member %s has no instance id", dm.MemberID)
			continue
		}
		if *dm.InstanceID != "static-b" {
			continue
		}
		if dm.MemberID != memberB2 {
			t.Errorf("static-b is member %q, the restarted client is %q", dm.MemberID, memberB2)
		}
		var got []int32
		if a, ok := dm.Assigned.AsConsumer(); ok {
			for _, at := range a.Topics {
				got = append(got, at.Partitions...)
			}
		}
		slices.Sort(got)
		if !slices.Equal(got, bParts) {
			t.Errorf("DescribeGroups: static-b is assigned %v, want its old %v", got, bParts)
		}
	}
	a.leave(t)
	b2.leave(t)
	l.check(t)
}

// rawCommit sends OffsetCommit v9 for one partition as the given member and
// returns the partition's error code.
func rawCommit(t *testing.T, n *node, group, memberID string, generation int32, instanceID *string, topic string, partition int32, offset int64) int16 {
	t.Helper()
	rc := dialRaw(t, n.Addr())
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Group = group
	req.Generation = generation
	req.MemberID = memberID
	req.InstanceID = instanceID
	rt := kmsg.NewOffsetCommitRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewOffsetCommitRequestTopicPartition()
	rp.Partition = partition
	rp.Offset = offset
	rp.LeaderEpoch = -1
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp := rc.request(req, 9).(*kmsg.OffsetCommitResponse)
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		t.Fatalf("OffsetCommit response: %d topics, want 1 with 1 partition", len(resp.Topics))
	}
	return resp.Topics[0].Partitions[0].ErrorCode
}

func groupState(t *testing.T, adm *kadm.Client, group string) string {
	ds, err := adm.DescribeGroups(ctxT(t, opTimeout), group)
	d, err := describedGroup(ds, err, group, func(d kadm.DescribedGroup) error { return d.Err })
	if err != nil {
		return "error: " + err.Error()
	}
	return d.State
}

// TestKilledMemberPartitionsMove kills -9 a member running in its own
// process: once its session times out, the survivor gets its partitions and
// resumes them from the dead member's commits.
func TestKilledMemberPartitionsMove(t *testing.T) {
	t.Parallel()
	const session = 6 * time.Second
	n := startNode(t, nodeOpts{set: append(slices.Clone(groupNodeSettings),
		"group.consumer.session.timeout.ms=6000",
		"group.consumer.heartbeat.interval.ms=500",
	)})
	for _, proto := range []string{"classic", "consumer"} {
		t.Run(proto, func(t *testing.T) {
			t.Parallel()
			const parts = 6
			adm, topic, group, p, l := newSpreadGroupTopic(t, n, parts, 600)

			h := startHelperConsumer(t, n, l, "helper", group, proto)
			waitFor(t, 30*time.Second, "helper holds every partition", func() (bool, string) { return l.balanced(parts, "helper") })
			opts := []kgo.Opt{kgo.SessionTimeout(session), kgo.HeartbeatInterval(500 * time.Millisecond)}
			if proto == "consumer" {
				opts = append(opts, kgo.Balancers(kgo.CooperativeStickyBalancer()), kgo.ServerSideBalancer())
			}
			s := startMember(t, n, l, "survivor", group, opts...)
			waitFor(t, 30*time.Second, "helper and survivor share the partitions", func() (bool, string) {
				return l.balanced(parts, "helper", "survivor")
			})
			moving := l.ownedBy("helper")
			// Everything so far consumed and committed, so the
			// commits of the partitions about to move are final.
			ends := endOffsets(t, adm, topic)
			waitFor(t, 20*time.Second, "all records committed", func() (bool, string) {
				got := committed(t, adm, group, topic)
				for part, end := range ends {
					if got[part].At != end {
						return false, fmt.Sprintf("committed %s, ends %v", fmtOffsets(got), ends)
					}
				}
				return true, ""
			})

			mark := l.mark()
			killed := time.Now()
			h.kill9()
			atKill := committed(t, adm, group, topic)
			// New records on every partition, for the survivor to
			// find where the dead member stopped.
			p.fill(t, 60)
			waitFor(t, session+20*time.Second, "the survivor holds every partition", func() (bool, string) {
				return l.balanced(parts, "survivor")
			})
			var movedAt time.Time
			for _, e := range l.eventsSince(mark, "survivor") {
				if e.kind == "assigned" && movedAt.IsZero() {
					movedAt = e.at
				}
				if e.kind != "assigned" && len(e.parts) > 0 {
					t.Errorf("survivor: unexpected %s", e)
				}
			}
			took := movedAt.Sub(killed)
			t.Logf("partitions %v moved %v after the kill", moving, took)
			// The dead member's last heartbeat was about one interval
			// before the kill, so its session ends about a session
			// timeout after it. Half of that leaves room for a loaded
			// machine and still catches a member dropped because its
			// connection closed.
			if took < session/2 {
				t.Errorf("partitions moved %v after the kill, before the %v session timeout ran out", took, session)
			}

			ends = endOffsets(t, adm, topic)
			waitFor(t, 20*time.Second, "every record consumed", func() (bool, string) {
				miss, sample := missingRecords(p, l, ends)
				return len(miss) == 0, fmt.Sprintf("not consumed per partition: %v (e.g. %s)", miss, sample)
			})
			for _, part := range moving {
				first, ok := l.firstOffset("survivor", part)
				if !ok || first != atKill[part].At {
					t.Errorf("partition %d: survivor started at %d (consumed: %v), the dead member had committed %d", part, first, ok, atKill[part].At)
				}
			}
			s.leave(t)
			got := committed(t, adm, group, topic)
			for part, end := range ends {
				if got[part].At != end {
					t.Errorf("partition %d: committed %d, want the end offset %d", part, got[part].At, end)
				}
			}
			checkProducedConsumed(t, p, l, ends)
			l.check(t)
		})
	}
}

// TestGroupStateSurvivesRestart checks that committed offsets (from a group
// member and from an admin commit) survive kill -9 and SIGTERM, and that a
// member resumes from them.
func TestGroupStateSurvivesRestart(t *testing.T) {
	t.Parallel()
	n := startNode(t, nodeOpts{set: groupNodeSettings})
	adm := n.Admin(t)
	topic := topicName(t, "")
	memberGroup, adminGroup := topic+"-member", topic+"-admin"
	const parts = 4
	createTopic(t, adm, topic, parts, nil)
	p := newKeyedProducer(t, n, topic, parts)
	p.fill(t, 50*parts)

	// A member consumes everything and commits the record at 9+7p of
	// each partition p: the committed offset is 10+7p, with the record's
	// leader epoch.
	cl := n.Client(t,
		kgo.ConsumerGroup(memberGroup), kgo.ConsumeTopics(topic), kgo.DisableAutoCommit(),
		kgo.FetchMaxWait(500*time.Millisecond), kgo.SessionTimeout(4*time.Second), kgo.HeartbeatInterval(400*time.Millisecond))
	var toCommit []*kgo.Record
	for _, r := range consumeN(t, cl, 50*parts, opTimeout) {
		if r.Offset == int64(9+7*r.Partition) {
			toCommit = append(toCommit, r)
		}
	}
	if len(toCommit) != parts {
		t.Fatalf("found %d records to commit, want %d", len(toCommit), parts)
	}
	if err := cl.CommitRecords(ctxT(t, opTimeout), toCommit...); err != nil {
		t.Fatalf("commit: %v", err)
	}
	cl.Close()
	wantMember := map[int32]kadm.Offset{}
	for _, r := range toCommit {
		wantMember[r.Partition] = kadm.Offset{Topic: topic, Partition: r.Partition, At: r.Offset + 1, LeaderEpoch: r.LeaderEpoch}
	}

	// An admin commit into a group without members, with metadata.
	wantAdmin := map[int32]kadm.Offset{}
	offs := kadm.Offsets{}
	for part := int32(0); part < parts; part++ {
		o := kadm.Offset{Topic: topic, Partition: part, At: int64(20 + 3*part), LeaderEpoch: -1, Metadata: "meta-" + strconv.Itoa(int(part))}
		wantAdmin[part] = o
		offs.Add(o)
	}
	if err := adm.CommitAllOffsets(ctxT(t, opTimeout), adminGroup, offs); err != nil {
		t.Fatalf("admin commit: %v", err)
	}

	// kgo puts its own string in the metadata of a member's commits;
	// whatever it was must survive the restarts.
	for part, o := range committed(t, adm, memberGroup, topic) {
		if w, ok := wantMember[part]; ok {
			w.Metadata = o.Metadata
			wantMember[part] = w
		}
	}

	check := func(when string) {
		t.Helper()
		for _, g := range []struct {
			group string
			want  map[int32]kadm.Offset
		}{{memberGroup, wantMember}, {adminGroup, wantAdmin}} {
			got := committed(t, adm, g.group, topic)
			if len(got) != len(g.want) {
				t.Errorf("%s: %s has %d committed partitions, want %d", when, g.group, len(got), len(g.want))
			}
			for part, w := range g.want {
				o := got[part]
				if o.At != w.At || o.LeaderEpoch != w.LeaderEpoch || o.Metadata != w.Metadata {
					t.Errorf("%s: %s partition %d: committed {at %d, epoch %d, metadata %q}, want {at %d, epoch %d, metadata %q}",
						when, g.group, part, o.At, o.LeaderEpoch, o.Metadata, w.At, w.LeaderEpoch, w.Metadata)
				}
			}
		}
	}
	check("before any restart")

	n.Kill9()
	n.Restart()
	check("after kill -9")

	// A member of the group resumes exactly at the committed offsets.
	cl2 := n.Client(t,
		kgo.ConsumerGroup(memberGroup), kgo.ConsumeTopics(topic), kgo.DisableAutoCommit(),
		kgo.FetchMaxWait(500*time.Millisecond), kgo.SessionTimeout(4*time.Second), kgo.HeartbeatInterval(400*time.Millisecond))
	first := map[int32]int64{}
	ctx := ctxT(t, opTimeout)
	for len(first) < parts {
		fs := cl2.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("resumed member got records of %d partitions (%v) before the timeout", len(first), first)
		}
		fs.EachError(func(topic string, p int32, err error) { t.Errorf("fetch %s/%d: %v", topic, p, err) })
		for _, r := range fs.Records() {
			if _, ok := first[r.Partition]; !ok {
				first[r.Partition] = r.Offset
			}
		}
	}
	for part, w := range wantMember {
		if first[part] != w.At {
			t.Errorf("resumed member's first record of partition %d is at %d, the committed offset is %d", part, first[part], w.At)
		}
	}
	cl2.Close()

	// A commit right before a clean shutdown is kept too.
	late := kadm.Offset{Topic: topic, Partition: 0, At: 49, LeaderEpoch: -1, Metadata: "late"}
	offs = kadm.Offsets{}
	offs.Add(late)
	if err := adm.CommitAllOffsets(ctxT(t, opTimeout), adminGroup, offs); err != nil {
		t.Fatalf("admin commit: %v", err)
	}
	wantAdmin[0] = late
	n.Stop()
	n.Restart()
	check("after SIGTERM")
}

// TestGroupAdmin covers the group admin APIs against a classic and a
// KIP-848 group.
func TestGroupAdmin(t *testing.T) {
	t.Parallel()
	// The offsets topic keeps its default 50 partitions here.
	n := startNode(t, nodeOpts{set: []string{
		"group.initial.rebalance.delay.ms=0",
		"group.min.session.timeout.ms=1000",
		"group.consumer.session.timeout.ms=4000",
		"group.consumer.heartbeat.interval.ms=400",
		"offsets.topic.replication.factor=1",
	}})
	adm := n.Admin(t)
	topicA, topicB := topicName(t, "a"), topicName(t, "b")
	classicGroup, consumerGroup := topicName(t, "classic"), topicName(t, "consumer")
	const parts = 4
	createTopic(t, adm, topicA, parts, nil)
	createTopic(t, adm, topicB, 2, nil)

	// FindCoordinator names this broker (and creates the offsets topic).
	var fc kadm.FindCoordinatorResponses
	waitFor(t, opTimeout, "FindCoordinator answers", func() (bool, string) {
		fc = adm.FindGroupCoordinators(ctxT(t, opTimeout), classicGroup, consumerGroup)
		if err := fc.Error(); err != nil {
			return false, err.Error()
		}
		return true, ""
	})
	for _, r := range fc {
		if r.NodeID != 1 || net.JoinHostPort(r.Host, strconv.Itoa(int(r.Port))) != n.Addr() {
			t.Errorf("coordinator of %s: node %d at %s:%d, want node 1 at %s", r.Name, r.NodeID, r.Host, r.Port, n.Addr())
		}
	}
	td, err := adm.ListTopicsWithInternal(ctxT(t, opTimeout), "__consumer_offsets")
	if err != nil {
		t.Fatalf("list topics: %v", err)
	}
	if d := td["__consumer_offsets"]; d.Err != nil || !d.IsInternal || len(d.Partitions) != 50 {
		t.Errorf("__consumer_offsets: err %v, internal %v, %d partitions; want internal with 50", d.Err, d.IsInternal, len(d.Partitions))
	}
	rcs, err := adm.DescribeTopicConfigs(ctxT(t, opTimeout), "__consumer_offsets")
	if err != nil {
		t.Fatalf("describe configs: %v", err)
	}
	if rc, err := rcs.On("__consumer_offsets", nil); err != nil {
		t.Errorf("describe __consumer_offsets configs: %v", err)
	} else {
		policy := ""
		for _, c := range rc.Configs {
			if c.Key == "cleanup.policy" && c.Value != nil {
				policy = *c.Value
			}
		}
		if policy != "compact" {
			t.Errorf("__consumer_offsets cleanup.policy = %q, want compact", policy)
		}
	}

	// Offsets of topicB committed while the classic group has no members.
	offs := kadm.Offsets{}
	offs.Add(kadm.Offset{Topic: topicB, Partition: 0, At: 5, LeaderEpoch: -1})
	offs.Add(kadm.Offset{Topic: topicB, Partition: 1, At: 7, LeaderEpoch: -1})
	if err := adm.CommitAllOffsets(ctxT(t, opTimeout), classicGroup, offs); err != nil {
		t.Fatalf("admin commit: %v", err)
	}

	p := newKeyedProducer(t, n, topicA, parts)
	p.fill(t, 40)
	lc, lk := newOwnLedger(t, topicA), newOwnLedger(t, topicA)
	c1 := startMember(t, n, lc, "c1", classicGroup)
	c2 := startMember(t, n, lc, "c2", classicGroup)
	serverSide := []kgo.Opt{kgo.Balancers(kgo.RangeBalancer()), kgo.ServerSideBalancer()}
	k1 := startMember(t, n, lk, "k1", consumerGroup, serverSide...)
	k2 := startMember(t, n, lk, "k2", consumerGroup, serverSide...)
	waitFor(t, 30*time.Second, "classic group settled", func() (bool, string) { return lc.balanced(parts, "c1", "c2") })
	waitFor(t, 30*time.Second, "consumer group settled", func() (bool, string) { return lk.balanced(parts, "k1", "k2") })
	// Both groups commit what they consumed.
	waitFor(t, 20*time.Second, "both groups committed topic A", func() (bool, string) {
		for _, g := range []string{classicGroup, consumerGroup} {
			if got := committed(t, adm, g, topicA); len(got) != parts {
				return false, fmt.Sprintf("%s committed %s", g, fmtOffsets(got))
			}
		}
		return true, ""
	})

	// ListGroups: state, protocol type and group type.
	waitFor(t, 15*time.Second, "ListGroups shows both groups stable", func() (bool, string) {
		listed, err := adm.ListGroups(ctxT(t, opTimeout))
		if err != nil {
			return false, err.Error()
		}
		for _, g := range []string{classicGroup, consumerGroup} {
			lg, ok := listed[g]
			if !ok {
				return false, fmt.Sprintf("%s not listed (listed: %v)", g, listed.Groups())
			}
			if lg.State != "Stable" || lg.ProtocolType != "consumer" || lg.Coordinator != 1 {
				return false, fmt.Sprintf("%s: state %q, protocol type %q, coordinator %d", g, lg.State, lg.ProtocolType, lg.Coordinator)
			}
		}
		return true, ""
	})
	for _, tc := range []struct{ typ, in, out string }{{"classic", classicGroup, consumerGroup}, {"consumer", consumerGroup, classicGroup}} {
		listed, err := adm.ListGroupsByType(ctxT(t, opTimeout), []string{tc.typ})
		if err != nil {
			t.Fatalf("list %s groups: %v", tc.typ, err)
		}
		if _, ok := listed[tc.in]; !ok {
			t.Errorf("ListGroups of type %s misses %s", tc.typ, tc.in)
		}
		if _, ok := listed[tc.out]; ok {
			t.Errorf("ListGroups of type %s lists %s", tc.typ, tc.out)
		}
	}
	rc := dialRaw(t, n.Addr())
	resp := rc.request(kmsg.NewPtrListGroupsRequest(), 5).(*kmsg.ListGroupsResponse)
	if resp.ErrorCode != 0 {
		t.Fatalf("ListGroups v5: error %d", resp.ErrorCode)
	}
	types := map[string]string{}
	for _, g := range resp.Groups {
		types[g.Group] = g.GroupType
	}
	if types[classicGroup] != "classic" || types[consumerGroup] != "consumer" {
		t.Errorf("ListGroups v5 group types: %s=%q, %s=%q; want classic and consumer", classicGroup, types[classicGroup], consumerGroup, types[consumerGroup])
	}

	// DescribeGroups (classic) and ConsumerGroupDescribe (KIP-848) show the
	// members and what they hold.
	checkDescribed(t, adm, lc, classicGroup, balancerCase{protocol: "cooperative-sticky"}, c1, c2)
	checkDescribed(t, adm, lk, consumerGroup, balancerCase{assignor: "range"}, k1, k2)
	dcg, err := adm.DescribeConsumerGroups(ctxT(t, opTimeout), consumerGroup)
	if err != nil {
		t.Fatalf("describe consumer group: %v", err)
	}
	for _, m := range dcg[consumerGroup].Members {
		if !slices.Equal(m.SubscribedTopics, []string{topicA}) || m.MemberType == 0 {
			t.Errorf("member %s: subscribed %v, member type %d; want [%s] and not classic", m.ClientID, m.SubscribedTopics, m.MemberType, topicA)
		}
	}
	if dg, err := adm.DescribeConsumerGroups(ctxT(t, opTimeout), classicGroup); err == nil && dg[classicGroup].Err == nil {
		t.Errorf("ConsumerGroupDescribe of a classic group: no error, want GROUP_ID_NOT_FOUND")
	} else if err == nil && !errors.Is(dg[classicGroup].Err, kerr.GroupIDNotFound) {
		t.Errorf("ConsumerGroupDescribe of a classic group: %v, want GROUP_ID_NOT_FOUND", dg[classicGroup].Err)
	}

	// Groups with members cannot be deleted.
	dr, err := adm.DeleteGroups(ctxT(t, opTimeout), classicGroup, consumerGroup)
	if err != nil {
		t.Fatalf("delete groups: %v", err)
	}
	for _, g := range []string{classicGroup, consumerGroup} {
		if !errors.Is(dr[g].Err, kerr.NonEmptyGroup) {
			t.Errorf("deleting non-empty group %s: %v, want NON_EMPTY_GROUP", g, dr[g].Err)
		}
	}

	// Offsets of a topic the group consumes cannot be deleted; of another
	// topic they can.
	for _, g := range []string{classicGroup, consumerGroup} {
		del, err := adm.DeleteOffsets(ctxT(t, opTimeout), g, kadm.TopicsSet{topicA: {0: {}, 1: {}}})
		if err != nil {
			t.Fatalf("delete offsets of %s: %v", g, err)
		}
		for _, part := range []int32{0, 1} {
			if err, ok := del.Lookup(topicA, part); !ok || !errors.Is(err, kerr.GroupSubscribedToTopic) {
				t.Errorf("%s: deleting offsets of subscribed %s/%d: %v (answered %v), want GROUP_SUBSCRIBED_TO_TOPIC", g, topicA, part, err, ok)
			}
		}
	}
	del, err := adm.DeleteOffsets(ctxT(t, opTimeout), classicGroup, kadm.TopicsSet{topicB: {0: {}, 1: {}}})
	if err != nil {
		t.Fatalf("delete offsets: %v", err)
	}
	if err := del.Error(); err != nil {
		t.Errorf("deleting offsets of unsubscribed %s: %v", topicB, err)
	}
	if got := committed(t, adm, classicGroup, topicB); len(got) != 0 {
		t.Errorf("after OffsetDelete, %s still has %s offsets %s", classicGroup, topicB, fmtOffsets(got))
	}
	if got := committed(t, adm, classicGroup, topicA); len(got) != parts {
		t.Errorf("OffsetDelete of %s touched %s: left %s", topicB, topicA, fmtOffsets(got))
	}

	// Once the members are gone the groups can be deleted, offsets and all.
	for _, m := range []*member{c1, c2, k1, k2} {
		m.leave(t)
	}
	waitFor(t, 15*time.Second, "groups empty", func() (bool, string) {
		listed, err := adm.ListGroups(ctxT(t, opTimeout))
		if err != nil {
			return false, err.Error()
		}
		return listed[classicGroup].State == "Empty" && listed[consumerGroup].State == "Empty",
			fmt.Sprintf("states %q and %q", listed[classicGroup].State, listed[consumerGroup].State)
	})
	dr, err = adm.DeleteGroups(ctxT(t, opTimeout), classicGroup, consumerGroup)
	if err != nil {
		t.Fatalf("delete groups: %v", err)
	}
	for _, g := range []string{classicGroup, consumerGroup} {
		if err := dr[g].Err; err != nil {
			t.Errorf("deleting empty group %s: %v", g, err)
		}
		if got := committed(t, adm, g, topicA); len(got) != 0 {
			t.Errorf("deleted group %s still has offsets %s", g, fmtOffsets(got))
		}
	}
	listed, err := adm.ListGroups(ctxT(t, opTimeout))
	if err != nil {
		t.Fatalf("list groups: %v", err)
	}
	for _, g := range []string{classicGroup, consumerGroup} {
		if _, ok := listed[g]; ok {
			t.Errorf("deleted group %s is still listed", g)
		}
	}

	// ConsumerGroupHeartbeat with an empty group id is invalid.
	hb := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	hb.Group = ""
	hb.MemberID = "AAAAAAAAAAAAAAAAAAAAAA"
	hb.MemberEpoch = 0
	hb.RebalanceTimeoutMillis = 30000
	hb.SubscribedTopicNames = []string{topicA}
	hb.Topics = []kmsg.ConsumerGroupHeartbeatRequestTopic{}
	hbResp := rc.request(hb, 1).(*kmsg.ConsumerGroupHeartbeatResponse)
	if hbResp.ErrorCode != kerr.InvalidRequest.Code {
		t.Errorf("ConsumerGroupHeartbeat with an empty group id: error %d (%v), want INVALID_REQUEST", hbResp.ErrorCode, kerr.ErrorForCode(hbResp.ErrorCode))
	}
}
