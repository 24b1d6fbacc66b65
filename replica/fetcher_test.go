package replica

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoalmq/shoal/log"
	"github.com/shoalmq/shoal/raftmeta"
)

// leaderPeers reaches the leader node in the same process: the follower's
// requests are answered by the leader's Manager as the front end's Fetch
// and OffsetForLeaderEpoch handlers answer them, long poll included.
type leaderPeers struct{ leader *testNode }

func (lp leaderPeers) Dial(int32) Peer { return leaderPeer(lp) }

func (leaderPeers) Version(key int16) int16 {
	switch key {
	case 1:
		return 12 // Fetch by topic name
	case 23:
		return 4
	}
	return 0
}

type leaderPeer struct{ leader *testNode }

func (leaderPeer) Close() {}

func (lp leaderPeer) Request(ctx context.Context, req kmsg.Request) (kmsg.Response, error) {
	m := lp.leader.m
	img := lp.leader.meta.Image()
	switch req := req.(type) {
	case *kmsg.OffsetForLeaderEpochRequest:
		resp := req.ResponseKind().(*kmsg.OffsetForLeaderEpochResponse)
		for _, rt := range req.Topics {
			ot := kmsg.NewOffsetForLeaderEpochResponseTopic()
			ot.Topic = rt.Topic
			for _, rp := range rt.Partitions {
				op := kmsg.NewOffsetForLeaderEpochResponseTopicPartition()
				op.Partition = rp.Partition
				p, _, kerrv := m.LeaderPartitionAt(img.Topics[rt.Topic], rp.Partition, rp.CurrentLeaderEpoch)
				if kerrv != nil {
					return nil, kerrv
				}
				op.LeaderEpoch, op.EndOffset = p.EndOffsetForEpoch(rp.LeaderEpoch)
				ot.Partitions = append(ot.Partitions, op)
			}
			resp.Topics = append(resp.Topics, ot)
		}
		return resp, nil
	case *kmsg.FetchRequest:
		resp := req.ResponseKind().(*kmsg.FetchResponse)
		w := log.GetWaiter()
		defer log.PutWaiter(w)
		read, watched := 0, 0
		for _, rt := range req.Topics {
			t := img.Topics[rt.Topic]
			ft := kmsg.NewFetchResponseTopic()
			ft.Topic = rt.Topic
			for _, rp := range rt.Partitions {
				pr := kmsg.NewFetchResponseTopicPartition()
				pr.Partition = rp.Partition
				p, ps, kerrv := m.LeaderPartitionAt(t, rp.Partition, rp.CurrentLeaderEpoch)
				if kerrv != nil {
					return nil, kerrv
				}
				n, err := m.ReadForFollower(req.ReplicaID, t, rp, &pr, nil, p, ps, int(rp.PartitionMaxBytes), w)
				if err != nil {
					return nil, err
				}
				read, watched = read+n, watched+1
				ft.Partitions = append(ft.Partitions, pr)
			}
			resp.Topics = append(resp.Topics, ft)
		}
		if read == 0 && watched > 0 {
			// Nothing new: long-poll until the leader appends, as a
			// fetch short of MinBytes does; the follower fetches again.
			select {
			case <-w.C():
			case <-time.After(time.Duration(req.MaxWaitMillis) * time.Millisecond):
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		return resp, nil
	}
	return nil, fmt.Errorf("unexpected request %T", req)
}

// A follower's fetcher copies what the leader appends, its progress
// commits the leader's acks=all write, and it follows the leader's HW.
func TestFollowerReplicatesFromLeader(t *testing.T) {
	leader := newTestNode(t, []int32{1, 2}, []int32{1, 2}, nil)
	follower := startTestNode(t, 2, leader.meta, leaderPeers{leader})
	p, ps := leader.leader(t)
	batch, h := testBatch(t, 3)
	la, err := leader.m.AppendAsLeader(p, ps, batch, h, leader.clock.Now(), -1)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := leader.m.AwaitAppend(ctx, la); err != nil {
		t.Fatalf("acks=all write with a fetching follower: %v", err)
	}
	fp := follower.m.logs.Partition("t", 0)
	if fp == nil {
		t.Fatal("the follower holds no replica")
	}
	if leo := fp.LogEndOffset(); leo != 3 {
		t.Errorf("follower log end %d once the write is committed, want 3", leo)
	}
	// The follower learns the HW from its next fetch's answer.
	deadline := time.Now().Add(10 * time.Second)
	for fp.HighWatermark() != 3 {
		if time.Now().After(deadline) {
			t.Fatalf("follower HW %d, want the leader's 3", fp.HighWatermark())
		}
		time.Sleep(time.Millisecond)
	}

	// The follower leaves the replica set: its fetcher stops and its log
	// is deleted.
	leader.meta.publish(func(img *raftmeta.Image) {
		ps := &img.Topics["t"].Partitions[0]
		ps.Replicas, ps.ISR, ps.PartitionEpoch = []int32{1}, []int32{1}, ps.PartitionEpoch+1
	})
	follower.m.Reconcile()
	if follower.m.logs.Partition("t", 0) != nil {
		t.Error("follower still holds the replica it was removed from")
	}
	follower.m.fetchMu.Lock()
	n := len(follower.m.fetchers)
	follower.m.fetchMu.Unlock()
	if n != 0 {
		t.Errorf("%d fetchers left with nothing to follow", n)
	}
}
