package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/shoalmq/shoal/raftmeta"
)

// fakeMeta is a metadata member whose leader and image the test sets.
type fakeMeta struct {
	leader   atomic.Int32
	isLeader atomic.Bool

	mu      sync.Mutex
	img     *raftmeta.Image
	changed chan struct{}
}

func newFakeMeta(leader int32) *fakeMeta {
	m := &fakeMeta{img: &raftmeta.Image{Brokers: map[int32]*raftmeta.Broker{}, Topics: map[string]*raftmeta.Topic{}}, changed: make(chan struct{})}
	m.leader.Store(leader)
	return m
}

// setImage publishes img and wakes the waiters.
func (m *fakeMeta) setImage(img *raftmeta.Image) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.img = img
	close(m.changed)
	m.changed = make(chan struct{})
}

func (m *fakeMeta) Image() *raftmeta.Image {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.img
}

func (m *fakeMeta) IsLeader() bool  { return m.isLeader.Load() }
func (m *fakeMeta) LeaderID() int32 { return m.leader.Load() }

func (m *fakeMeta) WaitFor(ctx context.Context, cond func(*raftmeta.Image) bool) (*raftmeta.Image, error) {
	for {
		m.mu.Lock()
		img, changed := m.img, m.changed
		m.mu.Unlock()
		if cond(img) {
			return img, nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

func testClient(t *testing.T, self int32, isController bool, meta Metadata) *ControllerClient {
	t.Helper()
	return NewControllerClient(Config{
		NodeID:       self,
		Voters:       map[int32]string{3: "c:3", 1: "a:1", 2: "b:2"},
		IsController: isController,
		MultiNode:    true,
		Version:      func(int16) int16 { return 0 },
		Logger:       slog.New(slog.NewTextHandler(io.Discard, nil)),
	}, meta, nil, nil)
}

func TestRetryable(t *testing.T) {
	var opErr net.Error = &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"not controller", kerr.NotController, true},
		{"raftmeta not controller", raftmeta.ErrNotController, true},
		{"no peer address", fmt.Errorf("node 4: %w", ErrNoPeerAddress), true},
		{"request timed out", kerr.RequestTimedOut, true},
		{"network error", opErr, true},
		{"closed connection", net.ErrClosed, true},
		{"peer protocol", errors.Join(errPeerProtocol, io.ErrUnexpectedEOF), true},
		{"stale broker epoch", kerr.StaleBrokerEpoch, false},
		{"invalid request", &raftmeta.Error{Code: kerr.InvalidRequest, Message: "no"}, false},
		{"caller cancelled", context.Canceled, false},
	} {
		if got := retryable(tc.err); got != tc.want {
			t.Errorf("%s: retryable(%v) = %v, want %v", tc.name, tc.err, got, tc.want)
		}
	}
}

func TestGuessControllerGoesRoundTheVotersInIDOrder(t *testing.T) {
	voters := map[int32]string{3: "c", 1: "a", 2: "b"}
	var got []int32
	for attempt := range 5 {
		got = append(got, guessController(voters, attempt))
	}
	if want := []int32{1, 2, 3, 1, 2}; !slices.Equal(got, want) {
		t.Fatalf("guesses %v, want %v", got, want)
	}
	if g := guessController(nil, 0); g != -1 {
		t.Fatalf("guess without voters = %d, want -1", g)
	}
}

// A broker-only node that does not know the leader asks the voters in turn
// until one does not answer NOT_CONTROLLER.
func TestWithControllerAsksTheVotersInTurnUntilOneLeads(t *testing.T) {
	c := testClient(t, 4, false, newFakeMeta(-1))
	var asked []int32
	err := c.withController(context.Background(), func() error {
		t.Fatal("a node that is not the leader ran the call locally")
		return nil
	}, func(leader int32) error {
		asked = append(asked, leader)
		if leader != 3 {
			return kerr.NotController
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := []int32{1, 2, 3}; !slices.Equal(asked, want) {
		t.Fatalf("asked %v, want %v", asked, want)
	}
}

func TestWithControllerReturnsAnAnswerThatRetryingCannotChange(t *testing.T) {
	c := testClient(t, 4, false, newFakeMeta(2))
	calls := 0
	err := c.withController(context.Background(), func() error { return nil }, func(leader int32) error {
		calls++
		if leader != 2 {
			t.Errorf("asked node %d, the known leader is 2", leader)
		}
		return kerr.StaleBrokerEpoch
	})
	if !errors.Is(err, kerr.StaleBrokerEpoch) || calls != 1 {
		t.Fatalf("got %v after %d calls, want STALE_BROKER_EPOCH after 1", err, calls)
	}
}

// A connection failure is retried; when the caller gives up, it sees
// NOT_CONTROLLER, which Kafka clients retry, rather than a socket error.
func TestWithControllerTurnsAnUnreachableControllerIntoNotController(t *testing.T) {
	c := testClient(t, 4, false, newFakeMeta(1))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var calls atomic.Int32
	err := c.withController(ctx, func() error { return nil }, func(int32) error {
		if calls.Add(1) == 2 {
			// The caller gives up while the client waits to try again.
			time.AfterFunc(controllerRetryBackoff/5, cancel)
		}
		return io.ErrUnexpectedEOF
	})
	if !errors.Is(err, kerr.NotController) {
		t.Fatalf("got %v, want NOT_CONTROLLER", err)
	}
	if calls.Load() < 2 {
		t.Fatalf("a connection failure was tried %d times, want retries", calls.Load())
	}
}

func TestWithControllerRunsLocallyOnTheLeader(t *testing.T) {
	meta := newFakeMeta(1)
	meta.isLeader.Store(true)
	c := testClient(t, 1, true, meta)
	ran := false
	err := c.withController(context.Background(), func() error { ran = true; return nil }, func(int32) error {
		t.Fatal("the leader sent its own call over the wire")
		return nil
	})
	if err != nil || !ran {
		t.Fatalf("local ran %v, err %v", ran, err)
	}
}

// A voter learns the leader from raft; it does not guess while there is
// none, and gives up with NOT_CONTROLLER when the caller does.
func TestWithControllerOnAVoterWaitsForALeaderWithoutGuessing(t *testing.T) {
	c := testClient(t, 1, true, newFakeMeta(-1))
	ctx, cancel := context.WithTimeout(context.Background(), 3*controllerRetryBackoff)
	defer cancel()
	err := c.withController(ctx, func() error { return nil }, func(leader int32) error {
		t.Errorf("a voter guessed node %d", leader)
		return nil
	})
	if !errors.Is(err, kerr.NotController) {
		t.Fatalf("got %v, want NOT_CONTROLLER", err)
	}
}

func TestImbalanced(t *testing.T) {
	img := func(leader int32, isr []int32, fenced bool) *raftmeta.Image {
		return &raftmeta.Image{
			Brokers: map[int32]*raftmeta.Broker{1: {ID: 1, Fenced: fenced}, 2: {ID: 2}},
			Topics: map[string]*raftmeta.Topic{"t": {Name: "t", Partitions: []raftmeta.PartitionState{
				{Replicas: []int32{1, 2}, ISR: isr, Leader: leader},
			}}},
		}
	}
	for _, tc := range []struct {
		name string
		img  *raftmeta.Image
		want bool
	}{
		{"preferred leads", img(1, []int32{1, 2}, false), false},
		{"preferred in sync and unfenced", img(2, []int32{1, 2}, false), true},
		{"preferred out of sync", img(2, []int32{2}, false), false},
		{"preferred fenced", img(2, []int32{1, 2}, true), false},
		{"no replicas", &raftmeta.Image{Topics: map[string]*raftmeta.Topic{"t": {Partitions: []raftmeta.PartitionState{{Leader: -1}}}}}, false},
	} {
		if got := imbalanced(tc.img); got != tc.want {
			t.Errorf("%s: imbalanced = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestVotersClusterIDDependsOnlyOnTheVoterSet(t *testing.T) {
	a := VotersClusterID(map[int32]string{1: "h1:9093", 2: "h2:9093", 3: "h3:9093"})
	b := VotersClusterID(map[int32]string{3: "h3:9093", 2: "h2:9093", 1: "h1:9093"})
	if a != b || len(a) != 22 {
		t.Fatalf("ids %q and %q: want the same 22-character id", a, b)
	}
	if c := VotersClusterID(map[int32]string{1: "h1:9093", 2: "h2:9093", 3: "h4:9093"}); c == a {
		t.Fatal("another voter set gave the same cluster id")
	}
}
