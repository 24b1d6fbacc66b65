package raftmeta

import (
	"context"
	"errors"
	"maps"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	pb "go.etcd.io/raft/v3/raftpb"
)

func TestControllerOneEntryPerRequest(t *testing.T) {
	n, c := startController(t, testValidateConfig)
	ctx := testCtx(t)
	mustRegister(t, c, 1)

	before, err := n.WaitFor(ctx, func(img *Image) bool { return img.Applied >= n.CommitIndex() })
	if err != nil {
		t.Fatal(err)
	}
	res := c.CreateTopics(ctx, []CreateTopicRequest{
		{Name: "a", NumPartitions: 2, ReplicationFactor: 1},
		{Name: "b", NumPartitions: -1, ReplicationFactor: -1, Configs: map[string]*string{"retention.ms": new("5")}},
		{Name: "bad/name", NumPartitions: 1, ReplicationFactor: 1},
	}, Defaults{NumPartitions: 3, ReplicationFactor: 1}, false)
	if res[0].Err != nil || res[1].Err != nil || !errors.Is(res[2].Err, kerr.InvalidTopicException) {
		t.Fatalf("results %+v", res)
	}
	after := n.Image()
	if after.Applied != before.Applied+1 {
		t.Fatalf("applied %d -> %d: want one entry", before.Applied, after.Applied)
	}
	if res[1].NumPartitions != 3 || res[1].ReplicationFactor != 1 || res[0].ID == ([16]byte{}) {
		t.Fatalf("results %+v", res)
	}
	if got := after.Topic("a"); got == nil || got.ID != res[0].ID || after.Topic("b").Configs["retention.ms"] != "5" {
		t.Fatalf("image %+v", after.Topics)
	}

	// validateOnly: answers, no id, no entry.
	res = c.CreateTopics(ctx, []CreateTopicRequest{{Name: "c", NumPartitions: 1, ReplicationFactor: 1}, {Name: "a", NumPartitions: 1, ReplicationFactor: 1}}, Defaults{}, true)
	if res[0].Err != nil || res[0].ID != ([16]byte{}) || !errors.Is(res[1].Err, kerr.TopicAlreadyExists) {
		t.Fatalf("validate-only results %+v", res)
	}
	if err := c.AlterTopicConfigs(ctx, "a", map[string]string{"cleanup.policy": "compact"}, nil, true); err != nil {
		t.Fatal(err)
	}
	if errs := c.CreatePartitions(ctx, []CreatePartitionsRequest{{Topic: "a", Count: 4}}, true); errs[0] != nil {
		t.Fatal(errs[0])
	}
	if n.Image().Applied != after.Applied {
		t.Fatal("validate-only proposed")
	}

	del := c.DeleteTopics(ctx, []string{"a", "zz"}, [][16]byte{res0ID(after, "b")})
	if del[0].Err != nil || !errors.Is(del[1].Err, kerr.UnknownTopicOrPartition) || del[2].Err != nil || del[2].Name != "b" {
		t.Fatalf("delete results %+v", del)
	}
	if len(n.Image().Topics) != 0 {
		t.Fatalf("topics left: %v", n.Image().Topics)
	}

	first, err := c.AllocateProducerIDs(ctx, 1, 1000)
	if err != nil || first != 0 {
		t.Fatal(first, err)
	}
	if first, err = c.AllocateProducerIDs(ctx, 1, 1000); err != nil || first != 1000 {
		t.Fatal(first, err)
	}
	if _, err := c.AllocateProducerIDs(ctx, 7, 1000); !errors.Is(err, kerr.BrokerIDNotRegistered) {
		t.Fatal(err)
	}
}

func res0ID(img *Image, name string) [16]byte { return img.Topic(name).ID }

func TestControllerGroupConfigs(t *testing.T) {
	n, c := startController(t, testValidateConfig)
	ctx := testCtx(t)

	// Without a validator every key is accepted.
	if err := c.AlterGroupConfigs(ctx, "g", map[string]string{"anything": "1"}, nil, false); err != nil {
		t.Fatal(err)
	}
	c.SetGroupConfigValidator(testValidateGroupConfig)
	if err := c.AlterGroupConfigs(ctx, "g", map[string]string{"anything": "2"}, nil, false); !errors.Is(err, kerr.InvalidConfig) {
		t.Fatalf("unknown key: %v", err)
	}
	if err := c.AlterGroupConfigs(ctx, "g", map[string]string{"consumer.session.timeout.ms": "x"}, nil, false); !errors.Is(err, kerr.InvalidConfig) {
		t.Fatalf("bad value: %v", err)
	}
	if err := c.AlterGroupConfigs(ctx, "", map[string]string{"consumer.session.timeout.ms": "45000"}, nil, false); !errors.Is(err, kerr.InvalidRequest) {
		t.Fatalf("empty group: %v", err)
	}

	before := n.Image()
	if err := c.AlterGroupConfigs(ctx, "g", map[string]string{"consumer.session.timeout.ms": "45000"}, nil, true); err != nil {
		t.Fatal(err)
	}
	if n.Image().Applied != before.Applied {
		t.Fatal("validate-only proposed")
	}
	if err := c.AlterGroupConfigs(ctx, "g", map[string]string{"consumer.session.timeout.ms": "45000"}, nil, false); err != nil {
		t.Fatal(err)
	}
	if got := n.Image().GroupConfig("g"); !maps.Equal(got, map[string]string{"anything": "1", "consumer.session.timeout.ms": "45000"}) {
		t.Fatalf("group configs %v", got)
	}
	// The validator vets deletions too; with it removed, anything goes.
	if err := c.AlterGroupConfigs(ctx, "g", nil, []string{"anything"}, false); !errors.Is(err, kerr.InvalidConfig) {
		t.Fatalf("delete unknown key: %v", err)
	}
	c.SetGroupConfigValidator(nil)
	if err := c.AlterGroupConfigs(ctx, "g", nil, []string{"anything", "consumer.session.timeout.ms"}, false); err != nil {
		t.Fatal(err)
	}
	if got := n.Image().GroupConfig("g"); got != nil {
		t.Fatalf("group configs %v after deleting all", got)
	}
}

// Concurrent requests are decided one after another, so of many attempts to
// create one topic exactly one wins, and producer id blocks never overlap.
func TestControllerSerialisesDecisions(t *testing.T) {
	n, c := startController(t, nil)
	ctx := testCtx(t)
	mustRegister(t, c, 1)

	const workers = 8
	var wg sync.WaitGroup
	created := make(chan bool, workers)
	firsts := make(chan int64, workers*5)
	for range workers {
		wg.Go(func() {
			res := c.CreateTopics(ctx, []CreateTopicRequest{{Name: "contended", NumPartitions: 1, ReplicationFactor: 1}}, Defaults{}, false)
			created <- res[0].Err == nil
			for range 5 {
				f, err := c.AllocateProducerIDs(ctx, 1, 10)
				if err != nil {
					t.Error(err)
					return
				}
				firsts <- f
			}
		})
	}
	wg.Wait()
	close(created)
	close(firsts)
	wins := 0
	for ok := range created {
		if ok {
			wins++
		}
	}
	if wins != 1 {
		t.Fatalf("%d creations won", wins)
	}
	seen := map[int64]bool{}
	for f := range firsts {
		if seen[f] || f%10 != 0 {
			t.Fatalf("block %d handed out twice or misaligned", f)
		}
		seen[f] = true
	}
	if n.Image().NextProducerID != workers*5*10 {
		t.Fatalf("NextProducerID %d", n.Image().NextProducerID)
	}
}

// A node that is not leader refuses proposals and controller requests with
// NOT_CONTROLLER instead of waiting.
func TestNotController(t *testing.T) {
	n, err := Start(Config{
		NodeID:       1,
		Dir:          t.TempDir(),
		Voters:       map[int32]string{1: "a:1", 2: "b:1", 3: "c:1"},
		Logger:       testLogger(t),
		TickInterval: time.Hour, // never campaigns
		Transport:    dropTransport{},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	ctx := testCtx(t)
	if n.IsLeader() || n.LeaderID() != -1 {
		t.Fatalf("leader=%v id=%d", n.IsLeader(), n.LeaderID())
	}
	if _, err := n.Propose(ctx, &RegisterBroker{ID: 1}); !errors.Is(err, ErrNotController) {
		t.Fatalf("propose: %v", err)
	}
	c := NewController(n, nil)
	if err := c.RegisterBroker(ctx, Broker{ID: 1}); !errors.Is(err, kerr.NotController) {
		t.Fatalf("register: %v", err)
	}
	res := c.CreateTopics(ctx, []CreateTopicRequest{{Name: "a"}}, Defaults{}, false)
	if !errors.Is(res[0].Err, kerr.NotController) {
		t.Fatalf("create: %v", res[0].Err)
	}
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if err := n.WaitLeader(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("wait leader: %v", err)
	}
}

type dropTransport struct{}

func (dropTransport) Send([]*pb.Message) {}
