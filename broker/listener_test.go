package broker

import (
	"io"
	"log/slog"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/shoalmq/shoal/config"
)

// failingListener fails its first accepts with errs, then accepts from a
// real listener.
type failingListener struct {
	net.Listener
	errs []error
}

func (l *failingListener) Accept() (net.Conn, error) {
	if len(l.errs) > 0 {
		err := l.errs[0]
		l.errs = l.errs[1:]
		return nil, &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", err)}
	}
	return l.Listener.Accept()
}

// After accept fails for lack of file descriptors (or an aborted
// connection), the loop backs off, counts it and accepts again.
func TestAcceptLoopSurvivesTemporaryErrors(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	fl := &failingListener{Listener: ln, errs: []error{syscall.EMFILE, syscall.EMFILE, syscall.ENFILE, syscall.ECONNABORTED}}
	m := newConnMetrics(prometheus.NewRegistry())
	var slept []time.Duration
	sleep := func(d time.Duration) bool { slept = append(slept, d); return true }
	accepted := make(chan net.Conn, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		acceptLoop(fl, slog.New(slog.NewTextHandler(io.Discard, nil)), m, sleep, func(nc net.Conn) { accepted <- nc })
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	select {
	case nc := <-accepted:
		nc.Close()
	case <-time.After(10 * time.Second):
		t.Fatal("no connection accepted after the temporary errors")
	}
	ln.Close()
	<-done
	var got dto.Metric
	m.acceptErrors.Write(&got)
	if got := got.GetCounter().GetValue(); got != 4 {
		t.Errorf("accept errors counted: %v, want 4", got)
	}
	want := []time.Duration{5 * time.Millisecond, 10 * time.Millisecond, 20 * time.Millisecond, 40 * time.Millisecond}
	if len(slept) != len(want) {
		t.Fatalf("backoffs %v, want %v", slept, want)
	}
	for i := range want {
		if slept[i] != want[i] {
			t.Errorf("backoffs %v, want %v", slept, want)
			break
		}
	}
}

func TestConnLimits(t *testing.T) {
	l := newConnLimits()
	l.set(config.ConnectionLimits{Max: 4, PerIP: 2, Overrides: "10.0.0.9:3,[::1]:0"}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	for i, tc := range []struct{ ip, refused string }{
		{"10.0.0.1", ""}, {"10.0.0.1", ""}, {"10.0.0.1", refusedPerIP},
		{"::1", refusedPerIP},
		{"10.0.0.9", ""}, {"10.0.0.9", ""}, {"10.0.0.9", refusedMaxConnections},
	} {
		if got := l.acquire(tc.ip); got != tc.refused {
			t.Fatalf("step %d: acquire(%s) = %q, want %q", i, tc.ip, got, tc.refused)
		}
	}
	l.release("10.0.0.1")
	if got := l.acquire("10.0.0.9"); got != "" {
		t.Fatalf("after a release: %q", got)
	}
	if got := l.acquire("10.0.0.9"); got != refusedMaxConnections {
		t.Fatalf("at max.connections again: %q", got)
	}
	// Limits changed at runtime apply to the next connection; the open
	// ones stay, even past a lowered limit.
	l.set(config.ConnectionLimits{Max: 10, PerIP: 1}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if got := l.acquire("10.0.0.9"); got != refusedPerIP {
		t.Fatalf("10.0.0.9 with its override removed: %q", got)
	}
	if got := l.acquire("10.0.0.2"); got != "" {
		t.Fatalf("a new IP after max.connections was raised: %q", got)
	}
	l.release("10.0.0.9")
	if l.total != 4 || l.byIP["10.0.0.9"] != 2 {
		t.Fatalf("open connections: total %d, 10.0.0.9 %d", l.total, l.byIP["10.0.0.9"])
	}
}
