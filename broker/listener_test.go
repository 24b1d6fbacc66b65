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
	"github.com/shoalmq/shoal/internal/testwait"
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
	testwait.Recv(t, "a connection to be accepted after the temporary errors", accepted).Close()
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
	counted := func(step, ip string, protected bool) {
		t.Helper()
		if a := l.acquire("client", ip, protected, false); a.wait != nil || a.refused != "" {
			t.Fatalf("%s: acquire(%s) = %+v, want counted", step, ip, a)
		}
	}
	counted("first", "10.0.0.1", false)
	counted("second", "10.0.0.1", false)
	if a := l.acquire("client", "10.0.0.1", false, false); a.refused != refusedPerIP || a.wait != nil {
		t.Fatalf("third from 10.0.0.1: %+v, want refused for max.connections.per.ip", a)
	}
	if a := l.acquire("client", "::1", false, false); a.refused != refusedPerIP {
		t.Fatalf("::1 with override 0: %+v", a)
	}
	counted("fourth", "10.0.0.9", false)
	counted("fifth", "10.0.0.9", false)

	// At max.connections a connection waits; it is neither refused nor
	// counted, and the first wait starts an episode.
	a := l.acquire("client", "10.0.0.9", false, false)
	if a.wait == nil || a.refused != "" || !a.began {
		t.Fatalf("at max.connections: %+v, want a wait that begins an episode", a)
	}
	if b := l.acquire("client", "10.0.0.2", false, false); b.wait == nil || b.began {
		t.Fatalf("a second arrival at max.connections: %+v, want a wait within the episode", b)
	}
	// The inter-broker listener never waits, and counts.
	counted("inter-broker", "10.0.0.3", true)
	if l.total != 5 {
		t.Fatalf("total %d with the inter-broker connection, want 5", l.total)
	}
	select {
	case <-a.wait:
		t.Fatal("woken with no slot freed")
	default:
	}
	l.release("client", "10.0.0.3")
	l.release("client", "10.0.0.1")
	<-a.wait // a release wakes the waiters
	if b := l.acquire("client", "10.0.0.9", false, true); b.wait != nil || b.refused != "" || b.ended != nil {
		t.Fatalf("after a release: %+v, want counted within the episode", b)
	}
	// Full again: the episode goes on.
	b := l.acquire("client", "10.0.0.2", false, false)
	if b.wait == nil || b.began {
		t.Fatalf("at max.connections again: %+v, want a wait within the episode", b)
	}
	// Limits changed at runtime apply to the next connection and wake
	// the waiters; the open ones stay, even past a lowered limit.
	l.set(config.ConnectionLimits{Max: 10, PerIP: 1}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	<-b.wait
	// The first connection to find a slot free on arrival ends the
	// episode, reporting the three that waited in it.
	if c := l.acquire("client", "10.0.0.9", false, false); c.refused != refusedPerIP || c.ended[maxConnections] != 3 {
		t.Fatalf("10.0.0.9 with its override removed: %+v, want refused, ending an episode of 3 waits", c)
	}
	counted("a new IP after max.connections was raised", "10.0.0.2", false)
	l.release("client", "10.0.0.9")
	if l.total != 4 || l.byIP["10.0.0.9"] != 2 {
		t.Fatalf("open connections: total %d, 10.0.0.9 %d", l.total, l.byIP["10.0.0.9"])
	}
}

// A listener's own max.connections makes that listener's connections
// wait, the inter-broker listener's too, while other listeners go on; it
// counts only its own connections and is checked before max.connections.
func TestListenerConnLimits(t *testing.T) {
	l := newConnLimits()
	l.set(config.ConnectionLimits{Max: 3, PerIP: 10, Listeners: map[string]int{"external": 1, "replication": 1}}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	counted := func(step, listener string, protected, waited bool) {
		t.Helper()
		if a := l.acquire(listener, "10.0.0.1", protected, waited); a.wait != nil || a.refused != "" {
			t.Fatalf("%s: acquire on %s = %+v, want counted", step, listener, a)
		}
	}
	counted("first on EXTERNAL", "EXTERNAL", false, false)
	a := l.acquire("EXTERNAL", "10.0.0.1", false, false)
	if a.wait == nil || a.limit != "external" || !a.began {
		t.Fatalf("second on EXTERNAL: %+v, want a wait for the listener's limit beginning an episode", a)
	}
	if b := l.acquire("EXTERNAL", "10.0.0.2", false, false); b.wait == nil || b.began {
		t.Fatalf("third on EXTERNAL: %+v, want a wait within the episode", b)
	}
	counted("INTERNAL, no limit of its own", "INTERNAL", false, false)
	// The inter-broker listener escapes max.connections, not its own.
	counted("inter-broker", "REPLICATION", true, false)
	if b := l.acquire("REPLICATION", "10.0.0.1", true, false); b.wait == nil || b.limit != "replication" {
		t.Fatalf("second inter-broker: %+v, want a wait for its listener's limit", b)
	}
	// max.connections (3) is reached by the three counted: a listener
	// with room waits for it.
	if b := l.acquire("INTERNAL", "10.0.0.1", false, false); b.wait == nil || b.limit != maxConnections || !b.began {
		t.Fatalf("INTERNAL at max.connections: %+v, want a wait for max.connections", b)
	}
	l.release("EXTERNAL", "10.0.0.1")
	<-a.wait
	counted("EXTERNAL after its connection closed", "EXTERNAL", false, true)
	if l.total != 3 || l.byListener["external"] != 1 || l.byListener["internal"] != 1 || l.byListener["replication"] != 1 {
		t.Fatalf("counts: total %d, by listener %v", l.total, l.byListener)
	}
	// Raising the listener's limit at runtime wakes its waiters; the
	// first arrival with room ends the listener's episode.
	l.set(config.ConnectionLimits{Max: 10, PerIP: 10}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if c := l.acquire("EXTERNAL", "10.0.0.3", false, false); c.wait != nil || c.ended["external"] != 2 || c.ended[maxConnections] != 1 {
		t.Fatalf("EXTERNAL after the limits were raised: %+v, want counted, ending the episodes of external (2 waits) and max.connections (1)", c)
	}
}
