package integration

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Hostile connections: one bad client must not take the broker down or hold
// up the well-behaved ones (the bystanders) beside it.

// TestHostileControllerRPCsOnClientListener sends the controller's RPCs to
// the client listener, as an unauthenticated client could: a BrokerHeartbeat
// asking to shut broker 1 down with the "any epoch" value -1, and a
// BrokerRegistration (with the cluster id Metadata hands anyone) re-pointing
// broker 1 elsewhere. Kafka serves these only on the controller listener;
// on the client listener they close the connection and change nothing.
func TestHostileControllerRPCsOnClientListener(t *testing.T) {
	t.Parallel()
	n := startNode(t, nodeOpts{})
	b := startBystanders(t, n, "ctrl")

	rc := dialRaw(t, n.Addr())
	rc.negotiate()
	for _, key := range []int16{56, 62, 63, 67, 73} {
		if _, ok := rc.versions[key]; ok {
			t.Errorf("ApiVersions on the client listener advertises %s (key %d)", kmsg.NameForKey(key), key)
		}
	}
	meta := rc.request(kmsg.NewPtrMetadataRequest(), -1).(*kmsg.MetadataResponse)
	if meta.ClusterID == nil {
		t.Fatal("Metadata has no cluster id")
	}

	hb := kmsg.NewPtrBrokerHeartbeatRequest()
	hb.BrokerID, hb.BrokerEpoch, hb.WantShutdown = 1, -1, true
	rc.send(hb, 1)
	rc.expectClosed("BrokerHeartbeat on the client listener", 10*time.Second)

	reg := dialRaw(t, n.Addr())
	r := kmsg.NewPtrBrokerRegistrationRequest()
	r.BrokerID, r.ClusterID = 1, *meta.ClusterID
	r.IncarnationID = [16]byte{1, 2, 3}
	l := kmsg.NewBrokerRegistrationRequestListener()
	l.Name, l.Host, l.Port, l.SecurityProtocol = "PLAINTEXT", "203.0.113.9", 9, 0
	r.Listeners = append(r.Listeners, l)
	reg.send(r, 0)
	reg.expectClosed("BrokerRegistration on the client listener", 10*time.Second)

	// The node is still listed where it was, unfenced, leading its
	// partitions.
	check := dialRaw(t, n.Addr())
	mreq := kmsg.NewPtrMetadataRequest()
	mt := kmsg.NewMetadataRequestTopic()
	mt.Topic = &b.topic
	mreq.Topics = append(mreq.Topics, mt)
	m := check.request(mreq, -1).(*kmsg.MetadataResponse)
	if len(m.Brokers) != 1 || m.Brokers[0].NodeID != 1 || m.Brokers[0].Host != "127.0.0.1" || int(m.Brokers[0].Port) != n.clientPort {
		t.Errorf("brokers after the hostile RPCs: %+v, want node 1 at %s", m.Brokers, n.Addr())
	}
	if len(m.Topics) != 1 || len(m.Topics[0].Partitions) != 1 || m.Topics[0].Partitions[0].Leader != 1 {
		t.Errorf("partition leader after the hostile RPCs: %+v, want 1", m.Topics)
	}
	b.check(100)
}

// metricValue reads one series from the node's /metrics (0 when absent).
func metricValue(t *testing.T, n *node, series string) float64 {
	t.Helper()
	cl := http.Client{Timeout: 5 * time.Second}
	resp, err := cl.Get("http://" + n.AdminAddr() + "/metrics")
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(body), "\n") {
		if rest, ok := strings.CutPrefix(line, series+" "); ok {
			v, err := strconv.ParseFloat(rest, 64)
			if err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			return v
		}
	}
	return 0
}

// waitMetric waits until a counter reaches at least want.
func waitMetric(t *testing.T, n *node, series string, want float64) {
	t.Helper()
	waitFor(t, opTimeout, series, func() (bool, string) {
		got := metricValue(t, n, series)
		return got >= want, fmt.Sprintf("%s = %v, want >= %v", series, got, want)
	})
}

// TestHostileAcceptAfterFDExhaustion runs the broker out of file
// descriptors: accept fails with EMFILE while idle connections hold them.
// Once they close, new clients must be served again (the accept loop used
// to end on the first failure, leaving a live process with a dead port).
func TestHostileAcceptAfterFDExhaustion(t *testing.T) {
	t.Parallel()
	n := startNode(t, nodeOpts{})
	n.mu.Lock()
	pid := n.cmd.Process.Pid
	n.mu.Unlock()
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	// Room for a few more descriptors only.
	limit := len(fds) + 8
	if out, err := exec.Command("prlimit", "--pid", strconv.Itoa(pid), fmt.Sprintf("--nofile=%d:%d", limit, limit)).CombinedOutput(); err != nil {
		t.Skipf("prlimit: %v %s", err, out)
	}
	var hogs []net.Conn
	for range 40 {
		c, err := net.DialTimeout("tcp", n.Addr(), 2*time.Second)
		if err != nil {
			break
		}
		hogs = append(hogs, c)
	}
	// The admin listener is out of descriptors too: watch the log.
	waitFor(t, opTimeout, "accept to fail", func() (bool, string) {
		return strings.Contains(n.Output(), "accept failed; retrying"), fmt.Sprintf("%d connections open, no accept failure logged", len(hogs))
	})
	for _, c := range hogs {
		c.Close()
	}
	// The descriptors are free again: a new client is served.
	waitFor(t, opTimeout, "a client served after EMFILE", func() (bool, string) {
		c, err := net.DialTimeout("tcp", n.Addr(), time.Second)
		if err != nil {
			return false, err.Error()
		}
		defer c.Close()
		rc := &rawConn{t: t, c: c, r: bufio.NewReader(c)}
		req := kmsg.NewPtrApiVersionsRequest()
		req.SetVersion(0)
		frame := kmsg.NewRequestFormatter().AppendRequest(nil, req, 1)
		if err := rc.write(frame); err != nil {
			return false, err.Error()
		}
		if _, err := rc.readFrame(time.Second); err != nil {
			return false, "ApiVersions: " + err.Error()
		}
		return true, ""
	})
	waitMetric(t, n, "shoal_accept_errors_total", 1)
	if !n.Alive() {
		t.Fatal("shoal exited")
	}
}

// TestHostileIdleAndSlowConnections: an idle connection is closed after
// connections.max.idle.ms and one that starts a frame and stalls (a
// slowloris) after socket.request.read.timeout.ms, while the bystanders,
// whose long polls outlast the idle time, keep their connections.
func TestHostileIdleAndSlowConnections(t *testing.T) {
	t.Parallel()
	n := startNode(t, nodeOpts{set: []string{"connections.max.idle.ms=300", "socket.request.read.timeout.ms=300"}})
	b := startBystanders(t, n, "slow")

	idle := dialRaw(t, n.Addr())
	idle.expectClosed("idle connection", 5*time.Second)

	halfSize := dialRaw(t, n.Addr())
	halfSize.write([]byte{0, 0})
	halfSize.expectClosed("half a size prefix", 5*time.Second)

	slow := dialRaw(t, n.Addr())
	slow.write(append(binary.BigEndian.AppendUint32(nil, 1000), 0, 3, 0, 0))
	slow.expectClosed("a frame that stops arriving", 5*time.Second)

	// A long poll longer than the idle time is not idleness.
	poller := n.Client(t, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{b.topic: {0: kgo.NewOffset().AtEnd()}}),
		kgo.FetchMaxWait(time.Second))
	fs := poller.PollFetches(ctxT(t, 1500*time.Millisecond))
	fs.EachError(func(topic string, p int32, err error) {
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("long-polling consumer: %s/%d: %v", topic, p, err)
		}
	})

	waitMetric(t, n, `shoal_connections_closed_by_broker_total{reason="idle"}`, 1)
	waitMetric(t, n, `shoal_connections_closed_by_broker_total{reason="request_read_timeout"}`, 2)
	// The operator's log names each reason.
	for _, reason := range []string{`reason="idle timeout"`, `reason="request read timeout"`} {
		waitFor(t, opTimeout, "a closed-connection line with "+reason, func() (bool, string) {
			return strings.Contains(n.Output(), reason), "not logged yet"
		})
	}
	b.check(100)
}

// dialFrom connects to addr from a chosen loopback address, so a test can be
// several client IPs.
func dialFrom(t *testing.T, from, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial %s from %s: %v", addr, from, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// served reports whether the broker answers an ApiVersions on c (false if it
// closed the connection).
func served(t *testing.T, c net.Conn) bool {
	t.Helper()
	rc := &rawConn{t: t, c: c, r: bufio.NewReader(c)}
	req := kmsg.NewPtrApiVersionsRequest()
	req.SetVersion(0)
	if err := rc.write(kmsg.NewRequestFormatter().AppendRequest(nil, req, 1)); err != nil {
		return false
	}
	_, err := rc.readFrame(5 * time.Second)
	return err == nil
}

// slotWaitsSeries counts connections that waited for a max.connections
// slot.
const slotWaitsSeries = "shoal_connection_slot_waits_total"

// pendingRequest sends an ApiVersions on c and returns where the outcome of
// reading its answer arrives: nil once answered, an error if c was closed.
func pendingRequest(t *testing.T, c net.Conn) <-chan error {
	t.Helper()
	rc := &rawConn{t: t, c: c, r: bufio.NewReader(c)}
	req := kmsg.NewPtrApiVersionsRequest()
	req.SetVersion(0)
	answer := make(chan error, 1)
	if err := rc.write(kmsg.NewRequestFormatter().AppendRequest(nil, req, 1)); err != nil {
		answer <- err
		return answer
	}
	go func() {
		_, err := rc.readFrame(5 * time.Minute)
		answer <- err
	}()
	return answer
}

// dialUntilWaiting dials addr from the address from, one connection at a time, each
// sending a request, until one is left unanswered while the broker counts
// a connection waiting for a max.connections slot. It returns the
// connections served before it, the waiting one and where its answer will
// arrive. More than most served fails the test.
func dialUntilWaiting(t *testing.T, n *node, addr, from string, most int) (open []net.Conn, waiting net.Conn, answer <-chan error) {
	t.Helper()
	waits := metricValue(t, n, slotWaitsSeries)
	for {
		if len(open) > most {
			t.Fatalf("%d connections from %s served and none waits for a slot", len(open), from)
		}
		c := dialFrom(t, from, addr)
		answer := pendingRequest(t, c)
		answered := false
		waitFor(t, opTimeout, "a connection from "+from+" served or waiting for a slot", func() (bool, string) {
			select {
			case err := <-answer:
				if err != nil {
					t.Fatalf("connection %d from %s closed: %v", len(open)+1, from, err)
				}
				answered = true
				return true, ""
			default:
			}
			got := metricValue(t, n, slotWaitsSeries)
			return got > waits, fmt.Sprintf("unanswered, %s = %v", slotWaitsSeries, got)
		})
		if !answered {
			return open, c, answer
		}
		open = append(open, c)
	}
}

// expectAnswered waits for a pendingRequest's answer, failing the test if
// the connection was closed instead or no answer came within opTimeout.
func expectAnswered(t *testing.T, answer <-chan error, what string) {
	t.Helper()
	select {
	case err := <-answer:
		if err != nil {
			t.Fatalf("%s: %v, want served", what, err)
		}
	case <-time.After(opTimeout):
		t.Fatalf("%s: not served within %v", what, opTimeout)
	}
}

// waitClientConns waits until the broker holds want client connections.
func waitClientConns(t *testing.T, n *node, want float64) {
	t.Helper()
	waitFor(t, opTimeout, fmt.Sprintf("%v client connections", want), func() (bool, string) {
		got := metricValue(t, n, "shoal_client_connections")
		return got == want, fmt.Sprintf("%v open", got)
	})
}

// TestHostileMaxConnectionsWait: as Kafka's acceptor, at max.connections a
// new connection is not closed: it is accepted and left unread until a
// connection closes, then served; the operator's log says so once. Past
// max.connections.per.ip a connection is still closed at once.
func TestHostileMaxConnectionsWait(t *testing.T) {
	t.Parallel()
	n := startNode(t, nodeOpts{set: []string{
		"max.connections=2",
		"max.connections.per.ip=1",
		"max.connections.per.ip.overrides=127.0.0.11:5",
	}})
	waitClientConns(t, n, 0) // the readiness check's client has gone

	held, waiting, answer := dialUntilWaiting(t, n, n.Addr(), "127.0.0.11", 2)
	if len(held) != 2 {
		t.Fatalf("%d connections served before one waited, want max.connections=2", len(held))
	}
	select {
	case err := <-answer:
		t.Fatalf("the connection past max.connections ended before a slot was freed: %v", err)
	default:
	}
	held[0].Close()
	expectAnswered(t, answer, "the waiting connection, once another closed")
	// One line for the episode, naming what to do.
	waitFor(t, opTimeout, "the log line saying max.connections was reached", func() (bool, string) {
		got := strings.Count(n.Output(), "max.connections reached on ")
		return got == 1 && strings.Contains(n.Output(), "Raise max.connections"), fmt.Sprintf("%d lines", got)
	})

	// Per IP: with slots free, 127.0.0.12's second connection is closed.
	held[1].Close()
	waitClientConns(t, n, 1)
	if !served(t, dialFrom(t, "127.0.0.12", n.Addr())) {
		t.Fatal("127.0.0.12's first connection was not served")
	}
	waiting.Close()
	waitClientConns(t, n, 1)
	refused := &rawConn{t: t, c: dialFrom(t, "127.0.0.12", n.Addr())}
	refused.r = bufio.NewReader(refused.c)
	refused.expectClosed("127.0.0.12's second connection, past max.connections.per.ip", opTimeout)
	waitMetric(t, n, `shoal_connections_refused_total{reason="max_connections_per_ip"}`, 1)
}

// TestHostileMaxConnectionsInterBrokerListener: as in Kafka, the
// inter-broker listener of a broker with another listener never waits for
// max.connections, so clients filling the broker cannot keep replication
// out; its connections count, and a client connection waits until the
// total is below the limit again.
func TestHostileMaxConnectionsInterBrokerListener(t *testing.T) {
	t.Parallel()
	n := startNode(t, nodeOpts{
		extraListener: "EXTERNAL",
		configFile:    "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,EXTERNAL:PLAINTEXT,CONTROLLER:PLAINTEXT\ninter.broker.listener.name=PLAINTEXT\n",
		set:           []string{"max.connections=1"},
	})
	waitClientConns(t, n, 0)
	held, _, answer := dialUntilWaiting(t, n, n.ExtraAddr(), "127.0.0.21", 1)
	if len(held) != 1 {
		t.Fatalf("%d connections served on EXTERNAL before one waited, want max.connections=1", len(held))
	}
	var inter []net.Conn
	for i := range 2 {
		c := dialFrom(t, "127.0.0.22", n.Addr())
		if !served(t, c) {
			t.Fatalf("inter-broker listener connection %d not served at max.connections", i+1)
		}
		inter = append(inter, c)
	}
	waitClientConns(t, n, 3)
	for _, c := range append(inter, held...) {
		c.Close()
	}
	expectAnswered(t, answer, "the EXTERNAL connection waiting for a slot, once the others closed")
}

// TestHostileConnectionLimits: past max.connections.per.ip (with an override
// for one address) new connections are closed at once and counted; past
// max.connections they wait until one closes; the bystanders' connections
// keep working.
func TestHostileConnectionLimits(t *testing.T) {
	t.Parallel()
	const maxConns = 30
	n := startNode(t, nodeOpts{set: []string{
		fmt.Sprintf("max.connections=%d", maxConns),
		"max.connections.per.ip=3",
		"max.connections.per.ip.overrides=127.0.0.1:20,127.0.0.3:100",
	}})
	b := startBystanders(t, n, "limits")

	// 127.0.0.2 has the default per-IP limit: three, then refused.
	for i := range 5 {
		c := dialFrom(t, "127.0.0.2", n.Addr())
		if got, want := served(t, c), i < 3; got != want {
			t.Errorf("connection %d from 127.0.0.2: served %v, want %v", i+1, got, want)
		}
	}
	waitMetric(t, n, `shoal_connections_refused_total{reason="max_connections_per_ip"}`, 2)

	// 127.0.0.3 may open 100, but the broker holds maxConns in all: the
	// next one waits, unanswered but open.
	open, _, answer := dialUntilWaiting(t, n, n.Addr(), "127.0.0.3", maxConns)
	if len(open) > maxConns-3 {
		t.Errorf("127.0.0.3 was served %d connections; max.connections=%d with 3 from 127.0.0.2 and the bystanders'", len(open), maxConns)
	}
	// Closing a connection frees its slot for the waiting one.
	open[0].Close()
	expectAnswered(t, answer, "the connection waiting for a slot, once another closed")
	for _, c := range open[1:] {
		c.Close()
	}
	b.check(100)
}

// metadataBombFrame is a Metadata v4 request of size bytes whose topic array
// claims as many elements as there are bytes left: what made kmsg allocate
// ~49 times the frame before finding the elements missing.
func metadataBombFrame(size int) []byte {
	frame := make([]byte, 4+size)
	binary.BigEndian.PutUint32(frame, uint32(size))
	h := frame[4:]
	binary.BigEndian.PutUint16(h[0:], 3) // Metadata
	binary.BigEndian.PutUint16(h[2:], 4) // v4
	binary.BigEndian.PutUint32(h[4:], 1) // correlation id
	binary.BigEndian.PutUint16(h[8:], 0) // client id ""
	binary.BigEndian.PutUint32(h[10:], uint32(size-14))
	return frame
}

// tagCountBombFrame is a 19-byte Metadata v12 request whose body ends in a
// tagged-field count of 2^32-1 with no tags after it.
func tagCountBombFrame() []byte {
	body := []byte("\x00\x03\x00\x0c\x00\x00\x00\x01\xff\xff\x00\x01\x00\x00\xff\xff\xff\xff\x0f")
	return append(binary.BigEndian.AppendUint32(nil, uint32(len(body))), body...)
}

// produceBombFrame is a Produce v9 request of size bytes with one topic
// whose partition array claims as many elements as there are bytes left.
func produceBombFrame(size int) []byte {
	frame := make([]byte, 4+size)
	binary.BigEndian.PutUint32(frame, uint32(size))
	b := frame[4:4]
	b = binary.BigEndian.AppendUint16(b, 0) // Produce
	b = binary.BigEndian.AppendUint16(b, 9) // v9 (flexible)
	b = binary.BigEndian.AppendUint32(b, 1)
	b = binary.BigEndian.AppendUint16(b, 0) // client id ""
	b = append(b, 0)                        // header tags
	b = append(b, 0)                        // transactional id: null
	b = binary.BigEndian.AppendUint16(b, 1) // acks
	b = binary.BigEndian.AppendUint32(b, 1000)
	b = append(b, 2, 2, 't') // one topic, named "t"
	binary.AppendUvarint(b, uint64(size-len(b)))
	return frame
}

// TestHostileOversizedRequests sends, at once, array-bomb frames and frames
// that announce socket.request.max.bytes and then trickle, and checks the
// broker's peak RSS stays bounded by queued.max.request.bytes (not by the
// number or the claims of the requests) while the bystanders carry on.
func TestHostileOversizedRequests(t *testing.T) {
	t.Parallel()
	const (
		bombs     = 4
		bombSize  = 32 << 20
		tricklers = 4
		queued    = 32 << 20
		// produceBombs of produceBombSize: more than the budget at once.
		produceBombs    = 4
		produceBombSize = 16 << 20
	)
	// Frames that stop arriving hold their reservation until the read
	// timeout, shortened here so the test does not wait 30 s for them.
	n := startNode(t, nodeOpts{set: []string{fmt.Sprintf("queued.max.request.bytes=%d", queued), "socket.request.read.timeout.ms=1000"}})
	b := startBystanders(t, n, "oversized")
	before := n.peakRSS()

	bomb := metadataBombFrame(bombSize)
	produceBomb := produceBombFrame(produceBombSize)
	var wg sync.WaitGroup
	// sendBombs sends frame, in full, on count connections at once; the
	// broker must close each.
	sendBombs := func(count int, frame []byte, what string) {
		for range count {
			rc := dialRaw(t, n.Addr())
			wg.Add(1)
			go func() {
				defer wg.Done()
				rc.c.SetWriteDeadline(time.Now().Add(opTimeout))
				rc.c.Write(frame) // the broker may close before taking it all
				rc.expectClosed(what, opTimeout)
			}()
		}
	}
	sendBombs(bombs, bomb, "Metadata array bomb")
	sendBombs(bombs, tagCountBombFrame(), "tagged-field count bomb")
	// Produce frames that announce 100 MB and send 1 MiB: each is held
	// until the read timeout.
	for range tricklers {
		rc := dialRaw(t, n.Addr())
		head := binary.BigEndian.AppendUint32(nil, 100<<20)
		head = binary.BigEndian.AppendUint16(head, 0) // Produce
		head = binary.BigEndian.AppendUint16(head, 9) // v9
		rc.write(append(head, make([]byte, 1<<20)...))
		wg.Add(1)
		go func() {
			defer wg.Done()
			rc.expectClosed("100 MB Produce frame that stops arriving", opTimeout)
		}()
	}
	// Produce, the one API whose frames may be large, is read in full and
	// walked: bogus partition counts in fully sent frames.
	sendBombs(produceBombs, produceBomb, "Produce array bomb")
	wg.Wait()
	after := n.peakRSS()
	// The bound: what the broker held before, plus three times the
	// request budget (frames held within it; the buffers a frame outgrew
	// as it arrived, at most its size; the Go heap's growth past what is
	// live before it collects), plus 2 MiB per connection for what frames
	// read before their header could be refused, plus 64 MiB of runtime
	// slack. Without the bounds, each Metadata bomb alone took ~1.6 GB.
	bound := before + 3*queued + (bombs+tricklers+produceBombs)*(2<<20) + 64<<20
	t.Logf("peak RSS: %d MiB before, %d MiB after %d x %d MiB Metadata and %d x %d MiB Produce array bombs and %d x 100 MB announced frames (bound %d MiB)",
		before>>20, after>>20, bombs, bombSize>>20, produceBombs, produceBombSize>>20, tricklers, bound>>20)
	if after > bound {
		t.Errorf("peak RSS %d MiB exceeds %d MiB", after>>20, bound>>20)
	}
	// The hostile side pushes ~100 MB through loopback, read by the broker
	// at full speed, on a 2-core machine: the bystanders share the CPU
	// with that transfer and were measured stalling up to ~500 ms under a
	// loaded machine's scheduling (with no request waiting on the memory
	// budget: theirs are under smallRequest), and 1.67 s once with the
	// machine's load average at 10-15. The bound here is two seconds.
	b.checkWithin(100, 2*time.Second)
}

// TestHostileWildcardListener: listeners on 0.0.0.0 without
// advertised.listeners stops start-up with one line naming the key (as
// Kafka refuses to advertise the meta-address); it used to advertise
// 127.0.0.1, which remote clients cannot reach.
func TestHostileWildcardListener(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	port, ctrl := freePort(t), freePort(t)
	cmd := exec.Command(shoalBin, "serve",
		"--set", fmt.Sprintf("listeners=PLAINTEXT://0.0.0.0:%d,CONTROLLER://127.0.0.1:%d", port, ctrl),
		"--set", fmt.Sprintf("controller.quorum.voters=1@127.0.0.1:%d", ctrl),
		"--set", "log.dirs="+dir, "--set", "admin.addr=")
	cmd.Env = childEnv(nil)
	done := make(chan struct{})
	var out []byte
	var err error
	go func() { out, err = cmd.CombinedOutput(); close(done) }()
	select {
	case <-done:
	case <-time.After(startTimeout):
		cmd.Process.Kill()
		<-done
		t.Fatalf("shoal with listeners on 0.0.0.0 kept running:\n%s", out)
	}
	if err == nil || !strings.Contains(string(out), "advertised.listeners") {
		t.Fatalf("exit %v, want a start-up error naming advertised.listeners:\n%s", err, out)
	}
}

// TestHostileAdminListener: admin.addr on a wildcard address logs a warning,
// and /debug/pprof is served only with admin.pprof.enable.
func TestHostileAdminListener(t *testing.T) {
	t.Parallel()
	pprofStatus := func(n *node) int {
		resp, err := http.Get("http://" + n.AdminAddr() + "/debug/pprof/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	port := freePort(t)
	n := startNode(t, nodeOpts{set: []string{fmt.Sprintf("admin.addr=0.0.0.0:%d", port)}})
	n.adminAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	if !strings.Contains(n.Output(), "admin.addr listens beyond loopback") {
		t.Errorf("no warning for admin.addr=0.0.0.0 in the output:\n%s", n.Output())
	}
	if got := pprofStatus(n); got != http.StatusNotFound {
		t.Errorf("/debug/pprof/ without admin.pprof.enable: status %d, want 404", got)
	}
	on := startNode(t, nodeOpts{set: []string{"admin.pprof.enable=true"}})
	if got := pprofStatus(on); got != http.StatusOK {
		t.Errorf("/debug/pprof/ with admin.pprof.enable: status %d, want 200", got)
	}
}
