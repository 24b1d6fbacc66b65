package cluster

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoalmq/shoal/raftmeta"
)

// responder is a tiny Kafka listener for the peer client's tests: it reads
// request frames and writes whatever answer returns for each (nil closes
// the connection).
type responder struct {
	ln        net.Listener
	accepts   atomic.Int32
	clientIDs chan string
	answer    func(key, version int16, corr int32) []byte
}

func startResponder(t testing.TB, answer func(key, version int16, corr int32) []byte) *responder {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &responder{ln: ln, clientIDs: make(chan string, 16), answer: answer}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			r.accepts.Add(1)
			go r.serve(nc)
		}
	}()
	return r
}

func (r *responder) serve(nc net.Conn) {
	defer nc.Close()
	br := bufio.NewReader(nc)
	for {
		var size [4]byte
		if _, err := io.ReadFull(br, size[:]); err != nil {
			return
		}
		frame := make([]byte, binary.BigEndian.Uint32(size[:]))
		if _, err := io.ReadFull(br, frame); err != nil || len(frame) < 10 {
			return
		}
		key := int16(binary.BigEndian.Uint16(frame))
		version := int16(binary.BigEndian.Uint16(frame[2:]))
		corr := int32(binary.BigEndian.Uint32(frame[4:]))
		idLen := int(binary.BigEndian.Uint16(frame[8:]))
		if 10+idLen <= len(frame) {
			select {
			case r.clientIDs <- string(frame[10 : 10+idLen]):
			default:
			}
		}
		out := r.answer(key, version, corr)
		if out == nil {
			return
		}
		if _, err := nc.Write(out); err != nil {
			return
		}
	}
}

func (r *responder) port() int32 { return int32(r.ln.Addr().(*net.TCPAddr).Port) }

// responseFrame frames a response body: size, correlation id, and the
// flexible header's empty tag section when asked.
func responseFrame(corr int32, flexibleHeader bool, body []byte) []byte {
	b := binary.BigEndian.AppendUint32(nil, 0)
	b = binary.BigEndian.AppendUint32(b, uint32(corr))
	if flexibleHeader {
		b = append(b, 0)
	}
	b = append(b, body...)
	binary.BigEndian.PutUint32(b, uint32(len(b)-4))
	return b
}

// metadataAnswer answers every request with a Metadata response naming the
// cluster id "c<corr>", so a test sees which request it answers.
func metadataAnswer(_, version int16, corr int32) []byte {
	resp := kmsg.NewPtrMetadataResponse()
	resp.SetVersion(version)
	id := "c" + strconv.Itoa(int(corr))
	resp.ClusterID = &id
	return responseFrame(corr, resp.IsFlexible(), resp.AppendTo(nil))
}

// testPool is a pool for node 7 whose image registers node 2 at the
// responder's address (and node 5 as a voter there), closed when the test
// ends.
func testPool(tb testing.TB, r *responder) *Pool {
	img := &raftmeta.Image{Brokers: map[int32]*raftmeta.Broker{2: {ID: 2, Endpoints: []raftmeta.Endpoint{
		{Listener: "EXTERNAL", Host: "127.0.0.1", Port: 1},
		{Listener: "INTERNAL", Host: "127.0.0.1", Port: r.port()},
	}}}}
	pool := NewPool(PoolConfig{
		NodeID:              7,
		Voters:              map[int32]string{5: r.ln.Addr().String()},
		InterBrokerListener: "INTERNAL",
		Image:               func() *raftmeta.Image { return img },
		MaxResponseBytes:    1 << 20,
	})
	tb.Cleanup(pool.Close)
	return pool
}

func metadataRequest() *kmsg.MetadataRequest {
	req := kmsg.NewPtrMetadataRequest()
	req.SetVersion(12)
	return req
}

func clusterIDOf(t *testing.T, resp kmsg.Response) string {
	t.Helper()
	m, ok := resp.(*kmsg.MetadataResponse)
	if !ok || m.ClusterID == nil {
		t.Fatalf("response %#v is not a Metadata response with a cluster id", resp)
	}
	return *m.ClusterID
}

func TestPeersRequestOverOneConnectionPerLane(t *testing.T) {
	r := startResponder(t, metadataAnswer)
	pool := testPool(t, r)
	ctx := context.Background()
	share := pool.Peers(LaneShare)
	for i := 1; i <= 3; i++ {
		resp, err := share.Request(ctx, 2, metadataRequest())
		if err != nil {
			t.Fatal(err)
		}
		if got, want := clusterIDOf(t, resp), "c"+strconv.Itoa(i); got != want {
			t.Fatalf("request %d answered %q, want %q", i, got, want)
		}
	}
	if id := <-r.clientIDs; !IsInterBrokerClientID(id) || id != "shoal-broker-7" {
		t.Fatalf("client id %q, want shoal-broker-7", id)
	}
	if n := r.accepts.Load(); n != 1 {
		t.Fatalf("three requests on one lane took %d connections", n)
	}
	// Another lane has a connection of its own (node 5 is a voter at the
	// same address).
	if _, err := pool.Peers(laneControllerAdmin).Request(ctx, 5, metadataRequest()); err != nil {
		t.Fatal(err)
	}
	if n := r.accepts.Load(); n != 2 {
		t.Fatalf("two lanes took %d connections, want 2", n)
	}
}

// A Conn is its owner's alone: it shares no connection with the lanes, and
// after Close the next request dials again.
func TestPeersDialGivesAConnectionOfItsOwn(t *testing.T) {
	r := startResponder(t, metadataAnswer)
	pool := testPool(t, r)
	ctx := context.Background()
	if _, err := pool.Peers(LaneShare).Request(ctx, 2, metadataRequest()); err != nil {
		t.Fatal(err)
	}
	conn := pool.Dial(2)
	for range 2 {
		if _, err := conn.Request(ctx, metadataRequest()); err != nil {
			t.Fatal(err)
		}
	}
	if n := r.accepts.Load(); n != 2 {
		t.Fatalf("a lane and an own connection took %d connections, want 2", n)
	}
	conn.Close()
	if _, err := conn.Request(ctx, metadataRequest()); err != nil {
		t.Fatal(err)
	}
	if n := r.accepts.Load(); n != 3 {
		t.Fatalf("a closed connection's next request made %d connections in all, want 3", n)
	}
	conn.Close()
}

func TestPeersControllerLanesDialTheVoterAddress(t *testing.T) {
	r := startResponder(t, metadataAnswer)
	pool := testPool(t, r)
	ctx := context.Background()
	// Node 5 is a voter but no registered broker.
	if _, err := pool.Peers(laneControllerAdmin).Request(ctx, 5, metadataRequest()); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Peers(LaneShare).Request(ctx, 5, metadataRequest()); !errors.Is(err, ErrNoPeerAddress) {
		t.Fatalf("a broker lane to an unregistered node: %v, want ErrNoPeerAddress", err)
	}
	if _, err := pool.Peers(laneControllerAdmin).Request(ctx, 2, metadataRequest()); !errors.Is(err, ErrNoPeerAddress) {
		t.Fatalf("a controller lane to a non-voter: %v, want ErrNoPeerAddress", err)
	}
}

// A connection the other node closed fails the request on it; the next
// request dials again.
func TestPeersDialAgainAfterAFailure(t *testing.T) {
	var answered atomic.Int32
	r := startResponder(t, func(key, version int16, corr int32) []byte {
		if answered.Add(1) == 2 {
			return nil // the second request finds its connection closed
		}
		return metadataAnswer(key, version, corr)
	})
	pool := testPool(t, r)
	peers := pool.Peers(LaneShare)
	ctx := context.Background()
	if _, err := peers.Request(ctx, 2, metadataRequest()); err != nil {
		t.Fatal(err)
	}
	if _, err := peers.Request(ctx, 2, metadataRequest()); err == nil {
		t.Fatal("a request whose connection closed succeeded")
	}
	if _, err := peers.Request(ctx, 2, metadataRequest()); err != nil {
		t.Fatalf("the request after a failure: %v", err)
	}
	if n := r.accepts.Load(); n != 2 {
		t.Fatalf("%d connections, want 2", n)
	}
}

func TestPeersRefuseBadResponses(t *testing.T) {
	for _, tc := range []struct {
		name   string
		answer func(key, version int16, corr int32) []byte
	}{
		{"frame over the limit", func(_, _ int16, corr int32) []byte {
			return binary.BigEndian.AppendUint32(nil, 1<<30)
		}},
		{"frame too short for a correlation id", func(_, _ int16, corr int32) []byte {
			return []byte{0, 0, 0, 2, 0, 0}
		}},
		{"wrong correlation id", func(key, version int16, corr int32) []byte {
			return metadataAnswer(key, version, corr+1)
		}},
		{"tag count beyond the frame", func(_, _ int16, corr int32) []byte {
			b := binary.BigEndian.AppendUint32(nil, 0)
			b = binary.BigEndian.AppendUint32(b, uint32(corr))
			b = binary.AppendUvarint(b, 1<<30)
			binary.BigEndian.PutUint32(b, uint32(len(b)-4))
			return b
		}},
		{"tag longer than the frame", func(_, _ int16, corr int32) []byte {
			b := binary.BigEndian.AppendUint32(nil, 0)
			b = binary.BigEndian.AppendUint32(b, uint32(corr))
			b = append(b, 1, 0, 100, 1, 2)
			binary.BigEndian.PutUint32(b, uint32(len(b)-4))
			return b
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := startResponder(t, tc.answer)
			pool := testPool(t, r)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if _, err := pool.Peers(LaneShare).Request(ctx, 2, metadataRequest()); err == nil || ctx.Err() != nil {
				t.Fatalf("got %v (context: %v), want a prompt error", err, ctx.Err())
			}
		})
	}
}

// A request to a node that never answers returns when its context ends.
func TestPeersRequestReturnsWhenTheContextEnds(t *testing.T) {
	mute := make(chan struct{})
	t.Cleanup(func() { close(mute) })
	r := startResponder(t, func(_, _ int16, corr int32) []byte {
		<-mute
		return nil
	})
	pool := testPool(t, r)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	start := time.Now()
	_, err := pool.Peers(LaneShare).Request(ctx, 2, metadataRequest())
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("a cancelled request took %s to return", d)
	}
}

// BenchmarkPeersRequest measures one round trip on a warm connection, as a
// follower's fetcher makes them.
func BenchmarkPeersRequest(b *testing.B) {
	r := startResponder(b, metadataAnswer)
	pool := testPool(b, r)
	conn := pool.Dial(2)
	defer conn.Close()
	req := metadataRequest()
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := conn.Request(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
}
