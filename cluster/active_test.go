package cluster

import (
	"context"
	"io"
	"log/slog"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/shoalmq/shoal/raftmeta"
)

// startQuorumOfOne is a real single-voter metadata quorum on files in a
// temporary directory, with its controller.
func startQuorumOfOne(t *testing.T) (*raftmeta.Node, *raftmeta.Controller) {
	t.Helper()
	node, err := raftmeta.Start(raftmeta.Config{NodeID: 1, Dir: t.TempDir(), TickInterval: 10 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { node.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := node.WaitLeader(ctx); err != nil {
		t.Fatal(err)
	}
	return node, raftmeta.NewController(node, func(string, *string) error { return nil })
}

// A broker whose listener refuses connections is fenced by the active
// controller's probe at once, long before its session would expire; a
// broker that answers is left alone.
func TestActiveControllerFencesAGoneBrokerWithoutWaitingForItsSession(t *testing.T) {
	node, ctrl := startQuorumOfOne(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	live := startResponder(t, metadataAnswer)
	register := func(id int32, addr string) {
		host, port, _ := net.SplitHostPort(addr)
		p, _ := strconv.Atoi(port)
		if _, err := ctrl.RegisterBrokerEpoch(ctx, raftmeta.Broker{ID: id, IncarnationID: uuid.New(),
			Endpoints: []raftmeta.Endpoint{{Listener: "PLAINTEXT", Host: host, Port: int32(p), SecurityProtocol: "PLAINTEXT"}}}); err != nil {
			t.Fatal(err)
		}
	}
	register(2, refusingAddr(t))
	register(3, live.ln.Addr().String())

	// The sessions outlast the test, so only a probe can fence. The probe
	// at takeover gives a dial 100ms to be refused, which a loaded machine
	// can exceed; the short heartbeat interval has the gone broker probed
	// again once its heartbeats are late, as a node would.
	active := NewActiveController(ActiveConfig{
		NodeID:                1,
		InterBrokerListener:   "PLAINTEXT",
		HeartbeatInterval:     100 * time.Millisecond,
		SessionTimeout:        time.Hour,
		UncleanLeaderElection: func(string) bool { return false },
		Now:                   time.Now,
		Logger:                slog.New(slog.NewTextHandler(io.Discard, nil)),
	}, node, ctrl)
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		active.RunSessions(runCtx)
	}()
	defer func() { stop(); <-done }()

	img, err := node.WaitFor(ctx, func(img *raftmeta.Image) bool { return img.Brokers[2] != nil && img.Brokers[2].Fenced })
	if err != nil {
		t.Fatalf("the gone broker was not fenced: %v", err)
	}
	if img.Brokers[3].Fenced {
		t.Fatal("a broker that answers was fenced")
	}
}
