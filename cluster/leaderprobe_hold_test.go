package cluster

import (
	"context"
	"io"
	"log/slog"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoalmq/shoal/raftmeta"
)

// metadataNaming is a Metadata answer with one partition led by leader.
func metadataNaming(leader int32) *kmsg.MetadataResponse {
	resp := kmsg.NewPtrMetadataResponse()
	t := kmsg.NewMetadataResponseTopic()
	p := kmsg.NewMetadataResponseTopicPartition()
	p.Leader = leader
	t.Partitions = append(t.Partitions, p)
	resp.Topics = append(resp.Topics, t)
	return resp
}

// imageWithBroker registers broker 2 at addr with the given fencing.
func imageWithBroker(addr string, fenced bool) *raftmeta.Image {
	host, port, _ := net.SplitHostPort(addr)
	p, _ := strconv.Atoi(port)
	return &raftmeta.Image{Brokers: map[int32]*raftmeta.Broker{2: {ID: 2, Epoch: 9, Fenced: fenced,
		Endpoints: []raftmeta.Endpoint{{Listener: "PLAINTEXT", Host: host, Port: int32(p)}}}}}
}

// refusingAddr is a loopback address nothing listens on.
func refusingAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func probeClient(meta Metadata, session time.Duration) *ControllerClient {
	return NewControllerClient(Config{NodeID: 1, SessionTimeout: session, InterBrokerListener: "PLAINTEXT",
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}, meta, nil, nil)
}

// A Metadata answer naming a leader whose listener refuses connections is
// held until the metadata log fences that leader, and no longer.
func TestAwaitGoneLeadersHoldsUntilTheLeaderIsFenced(t *testing.T) {
	addr := refusingAddr(t)

	meta := newFakeMeta(1)
	meta.setImage(imageWithBroker(addr, false))
	c := probeClient(meta, time.Minute)
	fenced := time.AfterFunc(100*time.Millisecond, func() { meta.setImage(imageWithBroker(addr, true)) })
	defer fenced.Stop()
	start := time.Now()
	if !c.AwaitGoneLeaders(context.Background(), meta.Image(), metadataNaming(2)) {
		t.Fatal("a leader whose listener refuses was not waited for")
	}
	if !meta.Image().Brokers[2].Fenced {
		t.Fatal("the answer was let go before the leader was fenced")
	}
	if d := time.Since(start); d > 30*time.Second {
		t.Fatalf("held %s: want until the fencing at 100ms, well before the session timeout", d)
	}
}

// The hold is bounded by the broker session timeout.
func TestAwaitGoneLeadersGivesUpAfterTheSessionTimeout(t *testing.T) {
	addr := refusingAddr(t)
	meta := newFakeMeta(1)
	meta.setImage(imageWithBroker(addr, false))
	c := probeClient(meta, 150*time.Millisecond)
	start := time.Now()
	if !c.AwaitGoneLeaders(context.Background(), meta.Image(), metadataNaming(2)) {
		t.Fatal("a leader whose listener refuses was not waited for")
	}
	if d := time.Since(start); d > 30*time.Second {
		t.Fatalf("held %s past a 150ms session timeout", d)
	}
}

// Live, fenced and local leaders are answered at once.
func TestAwaitGoneLeadersAnswersAtOnceOtherwise(t *testing.T) {
	live := startResponder(t, metadataAnswer)
	gone := refusingAddr(t)
	for _, tc := range []struct {
		name   string
		img    *raftmeta.Image
		leader int32
	}{
		{"live leader", imageWithBroker(live.ln.Addr().String(), false), 2},
		{"fenced leader", imageWithBroker(gone, true), 2},
		{"this node leads", imageWithBroker(gone, false), 1},
		{"no leader", imageWithBroker(gone, false), -1},
		{"unregistered leader", imageWithBroker(gone, false), 3},
	} {
		meta := newFakeMeta(1)
		meta.setImage(tc.img)
		c := probeClient(meta, time.Minute)
		if c.AwaitGoneLeaders(context.Background(), tc.img, metadataNaming(tc.leader)) {
			t.Errorf("%s: the answer was held", tc.name)
		}
	}
}
