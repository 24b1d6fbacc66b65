package broker

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// sessionFetch is a Fetch of session id at epoch naming partitions of
// topic from offset 0 (by name before v13, by id from v13).
func sessionFetch(id, epoch int32, topic string, topicID [16]byte, parts ...int32) *kmsg.FetchRequest {
	req := kmsg.NewPtrFetchRequest()
	req.ReplicaID, req.ReplicaState.ID = -1, -1
	req.MaxBytes, req.SessionID, req.SessionEpoch = 1<<20, id, epoch
	if len(parts) > 0 {
		rt := kmsg.NewFetchRequestTopic()
		rt.Topic, rt.TopicID = topic, topicID
		for _, p := range parts {
			rp := kmsg.NewFetchRequestTopicPartition()
			rp.Partition, rp.PartitionMaxBytes = p, 1<<20
			rt.Partitions = append(rt.Partitions, rp)
		}
		req.Topics = append(req.Topics, rt)
	}
	return req
}

// carried lists the partitions a fetch response carries, with whether
// each has records.
func carried(resp *kmsg.FetchResponse) map[int32]bool {
	out := map[int32]bool{}
	for _, rt := range resp.Topics {
		for _, rp := range rt.Partitions {
			out[rp.Partition] = len(rp.RecordBatches) > 0
		}
	}
	return out
}

func produceTo(t *testing.T, ctx context.Context, cl *kgo.Client, topic string, partition int32, value string) {
	t.Helper()
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Partition: partition, Value: []byte(value)}).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// A full fetch makes a session; incremental fetches read all of its
// partitions and carry only those with news, on any connection; the
// session errors are Kafka's.
func TestFetchSessionCarriesOnlyNews(t *testing.T) {
	s := startTestServer(t)
	ctx := testContext(t, 30*time.Second)
	cl := testClient(t, s, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	createTopic(t, ctx, kadm.NewClient(cl), 3, "sess", nil)
	c := dialRaw(t, s.Addrs()[0])
	full := c.roundTrip(sessionFetch(0, 0, "sess", [16]byte{}, 0, 1, 2), 12).(*kmsg.FetchResponse)
	id := full.SessionID
	if full.ErrorCode != 0 || id == 0 || len(carried(full)) != 3 {
		t.Fatalf("full fetch: error %d, session %d, partitions %v", full.ErrorCode, id, carried(full))
	}

	produceTo(t, ctx, cl, "sess", 1, "one")
	r := c.roundTrip(sessionFetch(id, 1, "", [16]byte{}), 12).(*kmsg.FetchResponse)
	if got := carried(r); r.SessionID != id || len(got) != 1 || !got[1] {
		t.Fatalf("incremental fetch after a record on partition 1: session %d, carried %v", r.SessionID, got)
	}
	// Partition 1 named again past its record: nothing new anywhere.
	next := sessionFetch(id, 2, "sess", [16]byte{}, 1)
	next.Topics[0].Partitions[0].FetchOffset = 1
	if r := c.roundTrip(next, 12).(*kmsg.FetchResponse); r.ErrorCode != 0 || len(carried(r)) != 0 {
		t.Fatalf("incremental fetch with nothing new: error %d, carried %v", r.ErrorCode, carried(r))
	}

	// The session is the broker's: another connection goes on with it, and
	// a long poll there wakes for a record on a partition it did not name.
	c2 := dialRaw(t, s.Addrs()[0])
	poll := sessionFetch(id, 3, "", [16]byte{})
	poll.MaxWaitMillis, poll.MinBytes = 10_000, 1
	c2.corr++
	writeRequest(t, c2.nc, c2.corr, poll, 12)
	produceTo(t, ctx, cl, "sess", 2, "two")
	_, body := readCorrelation(t, c2.nc)
	r = kmsg.NewPtrFetchResponse()
	r.SetVersion(12)
	if err := r.ReadFrom(body[1:]); err != nil {
		t.Fatal(err)
	}
	if got := carried(r); r.SessionID != id || len(got) != 1 || !got[2] {
		t.Fatalf("long poll on the session from another connection: session %d, carried %v", r.SessionID, got)
	}

	// A repeated epoch, an unknown id, and topic ids on a session made
	// with names.
	if r := c.roundTrip(sessionFetch(id, 3, "", [16]byte{}), 12).(*kmsg.FetchResponse); r.ErrorCode != kerr.InvalidFetchSessionEpoch.Code || r.SessionID != 0 {
		t.Fatalf("repeated epoch: error %d, session %d", r.ErrorCode, r.SessionID)
	}
	if r := c.roundTrip(sessionFetch(id+1, 1, "", [16]byte{}), 12).(*kmsg.FetchResponse); r.ErrorCode != kerr.FetchSessionIDNotFound.Code {
		t.Fatalf("unknown session: error %d", r.ErrorCode)
	}
	if r := c.roundTrip(sessionFetch(id, 4, "", [16]byte{}), 13).(*kmsg.FetchResponse); r.ErrorCode != kerr.FetchSessionTopicIDError.Code {
		t.Fatalf("v13 on a session made with names: error %d", r.ErrorCode)
	}

	// Forgotten partitions are no longer read (partition 2 moves past
	// its record, or the session would send it again).
	forget := sessionFetch(id, 4, "sess", [16]byte{}, 2)
	forget.Topics[0].Partitions[0].FetchOffset = 1
	ft := kmsg.NewFetchRequestForgottenTopic()
	ft.Topic, ft.Partitions = "sess", []int32{0, 1}
	forget.ForgottenTopics = append(forget.ForgottenTopics, ft)
	if r := c.roundTrip(forget, 12).(*kmsg.FetchResponse); r.ErrorCode != 0 {
		t.Fatalf("forgetting: error %d", r.ErrorCode)
	}
	produceTo(t, ctx, cl, "sess", 0, "zero")
	if r := c.roundTrip(sessionFetch(id, 5, "", [16]byte{}), 12).(*kmsg.FetchResponse); len(carried(r)) != 0 {
		t.Fatalf("a forgotten partition was carried: %v", carried(r))
	}
	if st := s.fetchSessions.Stats(); st.Sessions != 1 || st.Partitions != 1 {
		t.Fatalf("cache after forgetting: %+v", st)
	}
	// FINAL closes the session.
	if r := c.roundTrip(sessionFetch(id, -1, "sess", [16]byte{}, 0), 12).(*kmsg.FetchResponse); r.SessionID != 0 || len(carried(r)) != 1 {
		t.Fatalf("final epoch: session %d, carried %v", r.SessionID, carried(r))
	}
	if st := s.fetchSessions.Stats(); st.Sessions != 0 {
		t.Fatalf("cache after the final epoch: %+v", st)
	}
}

// A session's partitions are authorized on every fetch, not only when
// they are named: after alice's READ is taken away, her incremental
// fetch, which names nothing, is answered TOPIC_AUTHORIZATION_FAILED.
func TestFetchSessionPartitionsAreReauthorized(t *testing.T) {
	s := startSecureServer(t)
	admin := loggedIn(t, s, "admin", "admin-secret")
	admin.createTopic("secret")
	admin.allow(kmsg.ACLResourceTypeTopic, "secret", kmsg.ACLResourcePatternTypeLiteral, "User:alice", kmsg.ACLOperationRead)

	alice := loggedIn(t, s, "alice", "alice-secret")
	var id int32
	deadline := time.Now().Add(10 * time.Second)
	for {
		r := alice.roundTrip(sessionFetch(0, 0, "secret", [16]byte{}, 0), 12).(*kmsg.FetchResponse)
		if code := r.Topics[0].Partitions[0].ErrorCode; code == 0 && r.SessionID != 0 {
			id = r.SessionID
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("alice's full fetch with READ: error %v, session %d", kerr.ErrorForCode(code), r.SessionID)
		}
		time.Sleep(20 * time.Millisecond)
	}

	del := kmsg.NewPtrDeleteACLsRequest()
	f := kmsg.NewDeleteACLsRequestFilter()
	f.ResourceType, f.ResourceName, f.ResourcePatternType = kmsg.ACLResourceTypeTopic, kmsg.StringPtr("secret"), kmsg.ACLResourcePatternTypeLiteral
	f.Operation, f.PermissionType = kmsg.ACLOperationAny, kmsg.ACLPermissionTypeAny
	del.Filters = append(del.Filters, f)
	if r := admin.roundTrip(del, 3).(*kmsg.DeleteACLsResponse); r.Results[0].ErrorCode != 0 || len(r.Results[0].MatchingACLs) != 1 {
		t.Fatalf("DeleteAcls: %+v", r)
	}
	for epoch := int32(1); ; epoch++ {
		r := alice.roundTrip(sessionFetch(id, epoch, "", [16]byte{}), 12).(*kmsg.FetchResponse)
		if r.ErrorCode != 0 {
			t.Fatalf("incremental fetch: %v", kerr.ErrorForCode(r.ErrorCode))
		}
		if len(r.Topics) == 1 && r.Topics[0].Partitions[0].ErrorCode == kerr.TopicAuthorizationFailed.Code {
			break
		}
		if len(r.Topics) != 0 {
			t.Fatalf("incremental fetch carried %+v", r.Topics)
		}
		if time.Now().After(deadline) {
			t.Fatal("the session's partition was still read after READ was taken away")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// franz-go fetches with sessions: a consumer of many partitions, few of
// them busy, gets every record in order through incremental fetches.
func TestFetchSessionFranzGoConsumes(t *testing.T) {
	s := startTestServer(t)
	ctx := testContext(t, 60*time.Second)
	const partitions = 40
	pcl := testClient(t, s, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	createTopic(t, ctx, kadm.NewClient(pcl), partitions, "many", nil)
	offsets := map[int32]kgo.Offset{}
	for p := range int32(partitions) {
		offsets[p] = kgo.NewOffset().AtStart()
	}
	ccl := testClient(t, s, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{"many": offsets}), kgo.FetchMaxWait(200*time.Millisecond))
	consumeSessionRounds(t, ctx, s, pcl, ccl, "many", 0, 10)
	if st := s.fetchSessions.Stats(); st.Sessions != 1 || st.Partitions != partitions {
		t.Fatalf("fetch sessions while franz-go consumes: %+v", st)
	}
}

// consumeSessionRounds produces, round by round, one record to each of
// three partitions that change every round, and checks that the consumer
// gets each round's records, in order per partition, before the next.
func consumeSessionRounds(t *testing.T, ctx context.Context, s *Server, pcl, ccl *kgo.Client, topic string, from, rounds int) {
	t.Helper()
	for round := from; round < from+rounds; round++ {
		want := map[int32]string{}
		for i := range 3 {
			p := int32((round*7 + i*13) % 40)
			want[p] = topic + "-" + string(rune('a'+round%26)) + "-" + string(rune('0'+i))
			produceTo(t, ctx, pcl, topic, p, want[p])
		}
		for len(want) > 0 {
			fs := ccl.PollFetches(ctx)
			if ctx.Err() != nil {
				t.Fatalf("round %d: still waiting for %v", round, want)
			}
			fs.EachError(func(topic string, p int32, err error) { t.Fatalf("fetch error %s/%d: %v", topic, p, err) })
			fs.EachRecord(func(r *kgo.Record) {
				if want[r.Partition] != string(r.Value) {
					t.Fatalf("round %d: partition %d got %q, want %q", round, r.Partition, r.Value, want[r.Partition])
				}
				delete(want, r.Partition)
			})
		}
	}
}

// With one slot, a follower's session evicts a consumer's (a follower's
// is worth more at any age); the consumer is told
// FETCH_SESSION_ID_NOT_FOUND, starts over with a full fetch and keeps
// consuming.
func TestFetchSessionEvictedClientRecovers(t *testing.T) {
	s := startTestServer(t, "max.incremental.fetch.session.cache.slots=1")
	ctx := testContext(t, 60*time.Second)
	pcl := testClient(t, s, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	createTopic(t, ctx, kadm.NewClient(pcl), 40, "evict", nil)
	offsets := map[int32]kgo.Offset{}
	for p := range int32(40) {
		offsets[p] = kgo.NewOffset().AtStart()
	}
	ccl := testClient(t, s, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{"evict": offsets}), kgo.FetchMaxWait(200*time.Millisecond))
	consumeSessionRounds(t, ctx, s, pcl, ccl, "evict", 0, 3)
	if st := s.fetchSessions.Stats(); st.Sessions != 1 || st.Partitions != 40 {
		t.Fatalf("cache before the follower: %+v", st)
	}

	follower := sessionFetch(0, 0, "evict", [16]byte{}, 0)
	follower.ReplicaID, follower.ReplicaState.ID = 7, 7
	if r := dialRaw(t, s.Addrs()[0]).roundTrip(follower, 12).(*kmsg.FetchResponse); r.SessionID == 0 {
		t.Fatal("the follower's full fetch got no session")
	}
	if st := s.fetchSessions.Stats(); st.Evictions != 1 || st.Partitions != 1 {
		t.Fatalf("cache after the follower: %+v", st)
	}
	consumeSessionRounds(t, ctx, s, pcl, ccl, "evict", 3, 5)
}

// A client that names a replica id without being allowed to act as a
// broker gets no follower's privilege: it cannot evict a consumer's
// session to make room for its own.
func TestFetchSessionFollowerPrivilegeNeedsClusterAction(t *testing.T) {
	s := startSecureServer(t, "max.incremental.fetch.session.cache.slots=1")
	admin := loggedIn(t, s, "admin", "admin-secret")
	admin.createTopic("t")
	if r := admin.roundTrip(sessionFetch(0, 0, "t", [16]byte{}, 0), 12).(*kmsg.FetchResponse); r.SessionID == 0 {
		t.Fatal("the consumer's full fetch got no session")
	}

	alice := loggedIn(t, s, "alice", "alice-secret")
	claim := sessionFetch(0, 0, "t", [16]byte{}, 0)
	claim.ReplicaID, claim.ReplicaState.ID = 1, 1
	r := alice.roundTrip(claim, 12).(*kmsg.FetchResponse)
	if r.SessionID != 0 || r.Topics[0].Partitions[0].ErrorCode != kerr.TopicAuthorizationFailed.Code {
		t.Fatalf("alice as a follower: session %d, error %v", r.SessionID, kerr.ErrorForCode(r.Topics[0].Partitions[0].ErrorCode))
	}
	if st := s.fetchSessions.Stats(); st.Sessions != 1 || st.Evictions != 0 {
		t.Fatalf("cache after alice's fetch: %+v", st)
	}
}
