package raftmeta

import (
	"errors"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
)

// A broker reporting a partition's replica offline loses its leadership
// and ISR membership of that partition only; it stays unfenced and keeps
// leading the rest.
func TestControllerReplicasOffline(t *testing.T) {
	n, c, _ := startClockedController(t)
	ctx := testCtx(t)
	img := n.Image()
	topic := img.Topic("t")
	var led int32 = -1
	for i, p := range topic.Partitions {
		if p.Leader == 1 {
			led = int32(i)
			break
		}
	}
	if led < 0 {
		t.Fatalf("broker 1 leads nothing:\n%s", fmtImage(img))
	}
	other := (led + 1) % 3
	before := topic.Partitions[other]
	epoch := img.Brokers[1].Epoch

	errs, err := c.ReplicasOffline(ctx, 1, epoch, []TopicIDPartition{{topic.ID, led}, {[16]byte{9}, 0}, {topic.ID, 7}})
	if err != nil {
		t.Fatal(err)
	}
	if errs[0] != nil || !errors.Is(errs[1], kerr.UnknownTopicID) || !errors.Is(errs[2], kerr.UnknownTopicOrPartition) {
		t.Fatalf("per-partition errors %v", errs)
	}
	img = n.Image()
	p := img.Topic("t").Partitions[led]
	if p.Leader == 1 || p.Leader < 0 || containsInt32(p.ISR, 1) || p.LeaderEpoch != topic.Partitions[led].LeaderEpoch+1 {
		t.Fatalf("offline replica still leads or is in the ISR: %+v", p)
	}
	if img.Brokers[1].Fenced {
		t.Fatal("broker with an offline dir was fenced")
	}
	if got := img.Topic("t").Partitions[other]; got.Leader != before.Leader || len(got.ISR) != len(before.ISR) {
		t.Fatalf("partition %d changed: %+v, was %+v", other, got, before)
	}

	if _, err := c.ReplicasOffline(ctx, 1, epoch-1, nil); !errors.Is(err, kerr.StaleBrokerEpoch) {
		t.Fatalf("stale epoch: %v", err)
	}
	if _, err := c.ReplicasOffline(ctx, 42, 1, nil); !errors.Is(err, kerr.BrokerIDNotRegistered) {
		t.Fatalf("unknown broker: %v", err)
	}
}
