package broker

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoalmq/shoal/config"
)

// FuzzServeRequest sends well-formed requests of every API and version the
// client listener serves to a running single-node server over TCP. The
// fuzzer's bytes are decoded as a request and encoded again, so what reaches
// the server is structured (every count matches its elements) while any
// field may hold any value: the handlers, not the decoder (FuzzDecodeRequest
// covers that), are under test. Each request must be answered, or its
// connection closed, within answerTimeout, and no handler may panic (the
// connection recovers a panic into a closed connection; the log line is how
// it is caught here).
//
// Without -fuzz it runs the seeds: one default request per API and version.
func FuzzServeRequest(f *testing.F) {
	watch := &panicWatch{}
	s := startFuzzServer(f, watch)
	apis := s.apis.forListener(s, s.advertised[0].Name)
	keys := make([]int16, 0, len(apis))
	for k := range apis {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i] < keys[j] })
	for _, k := range keys {
		for v := apis[k].min; v <= apis[k].max; v++ {
			f.Add(frameOf(kmsg.RequestForKey(k), v))
		}
	}
	topic := "fuzz"
	meta := kmsg.NewPtrMetadataRequest()
	meta.Topics = []kmsg.MetadataRequestTopic{{Topic: &topic}}
	meta.AllowAutoTopicCreation = true
	f.Add(frameOf(meta, 12))
	produce := kmsg.NewPtrProduceRequest()
	produce.Acks = -1
	produce.Topics = []kmsg.ProduceRequestTopic{{Topic: topic, Partitions: []kmsg.ProduceRequestTopicPartition{{Partition: 0, Records: []byte{1, 2, 3}}}}}
	f.Add(frameOf(produce, 9))
	produce.Acks = 0
	f.Add(frameOf(produce, 9))

	var c *fuzzConn
	f.Cleanup(func() {
		if c != nil {
			c.nc.Close()
		}
	})
	f.Fuzz(func(t *testing.T, frame []byte) {
		h, req, err := decodeRequest(apis, frame)
		if err != nil {
			return
		}
		boundWaits(req)
		if c == nil {
			if c, err = dialFuzz(s.Addrs()[0]); err != nil {
				t.Fatal(err)
			}
		}
		answered, err := c.roundTrip(req, h.version)
		if p := watch.first(); p != "" {
			t.Fatalf("%s v%d: handler panicked: %s", kmsg.NameForKey(h.key), h.version, p)
		}
		if err != nil {
			t.Fatalf("%s v%d: %v", kmsg.NameForKey(h.key), h.version, err)
		}
		if !answered {
			// The server closed the connection, as Kafka may for a
			// request it refuses: dial again for the next one.
			c.nc.Close()
			c = nil
		}
	})
}

// answerTimeout bounds how long one request may take once its waits are
// bounded (boundWaits).
const answerTimeout = 10 * time.Second

// boundWaits caps the fields that make a request wait on purpose (a long
// poll, a rebalance), so that a request left unanswered is a hang and not a
// patient request.
func boundWaits(req kmsg.Request) {
	// Produce and the admin requests that wait for the controller.
	if r, ok := req.(interface {
		kmsg.TimeoutRequest
		kmsg.SetTimeoutRequest
	}); ok {
		r.SetTimeout(min(r.Timeout(), 1000))
	}
	switch r := req.(type) {
	case *kmsg.FetchRequest:
		r.MaxWaitMillis = min(r.MaxWaitMillis, 10)
	case *kmsg.ShareFetchRequest:
		r.MaxWaitMillis = min(r.MaxWaitMillis, 10)
	case *kmsg.JoinGroupRequest:
		r.SessionTimeoutMillis = min(r.SessionTimeoutMillis, 1000)
		r.RebalanceTimeoutMillis = min(r.RebalanceTimeoutMillis, 1000)
	}
}

// startFuzzServer runs a single-node server whose classic groups rebalance
// at once, logging panics to watch.
func startFuzzServer(f *testing.F, watch *panicWatch) *Server {
	dir, err := os.MkdirTemp("", "shoal-fuzz-")
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { os.RemoveAll(dir) })
	cfg, err := config.Load("", nil, []string{
		"log.dirs=" + dir,
		"listeners=PLAINTEXT://127.0.0.1:0,CONTROLLER://127.0.0.1:0",
		"admin.addr=",
		"group.initial.rebalance.delay.ms=0",
	})
	if err != nil {
		f.Fatal(err)
	}
	s, err := Start(cfg, Options{Logger: slog.New(watch)})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { s.Close() })
	return s
}

// fuzzConn is one client connection to the server under test.
type fuzzConn struct {
	nc   net.Conn
	r    *bufio.Reader
	corr int32
}

func dialFuzz(addr string) (*fuzzConn, error) {
	nc, err := net.DialTimeout("tcp", addr, answerTimeout)
	if err != nil {
		return nil, err
	}
	return &fuzzConn{nc: nc, r: bufio.NewReader(nc)}, nil
}

// roundTrip sends req and waits for its answer; an acks=0 produce has none,
// so an ApiVersions request follows it and that answer is awaited instead.
// answered is false when the server closed the connection.
func (c *fuzzConn) roundTrip(req kmsg.Request, version int16) (answered bool, err error) {
	frames := [][]byte{frameOf(req, version)}
	if p, ok := req.(*kmsg.ProduceRequest); ok && p.Acks == 0 {
		frames = append(frames, frameOf(kmsg.NewPtrApiVersionsRequest(), 0))
	}
	var want int32
	var out []byte
	for _, fr := range frames {
		c.corr++
		want = c.corr
		binary.BigEndian.PutUint32(fr[4:], uint32(c.corr))
		out = binary.BigEndian.AppendUint32(out, uint32(len(fr)))
		out = append(out, fr...)
	}
	c.nc.SetDeadline(time.Now().Add(answerTimeout))
	if _, err := c.nc.Write(out); err != nil {
		return false, nil
	}
	for {
		var size [4]byte
		if _, err := io.ReadFull(c.r, size[:]); err != nil {
			return false, closedOrHung(err)
		}
		body := make([]byte, binary.BigEndian.Uint32(size[:]))
		if _, err := io.ReadFull(c.r, body); err != nil {
			return false, closedOrHung(err)
		}
		if len(body) < 4 {
			return false, fmt.Errorf("%d-byte response", len(body))
		}
		if got := int32(binary.BigEndian.Uint32(body)); got == want {
			return true, nil
		} else if got > want {
			return false, fmt.Errorf("response for correlation id %d, waiting for %d", got, want)
		}
	}
}

// closedOrHung tells a closed connection (allowed) from one that neither
// answered nor closed in time (a hang).
func closedOrHung(err error) error {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return fmt.Errorf("no answer within %v", answerTimeout)
	}
	return nil
}

// panicWatch is a slog handler that discards every line but remembers the
// first "handler panic".
type panicWatch struct {
	mu    sync.Mutex
	panic string
}

func (w *panicWatch) Enabled(context.Context, slog.Level) bool { return true }
func (w *panicWatch) WithAttrs([]slog.Attr) slog.Handler       { return w }
func (w *panicWatch) WithGroup(string) slog.Handler            { return w }

func (w *panicWatch) Handle(_ context.Context, r slog.Record) error {
	if r.Message != "handler panic" {
		return nil
	}
	var line string
	r.Attrs(func(a slog.Attr) bool {
		line += fmt.Sprintf(" %s=%v", a.Key, a.Value)
		return true
	})
	w.mu.Lock()
	if w.panic == "" {
		w.panic = line
	}
	w.mu.Unlock()
	return nil
}

func (w *panicWatch) first() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.panic
}
