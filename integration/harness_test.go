package integration

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/shoalmq/shoal/internal/syncbuf"
	"github.com/shoalmq/shoal/internal/testbin"
)

// shoalBin is the binary built once by TestMain.
var shoalBin string

// kfakeBin is the baseline broker the whole-system benchmarks compare with,
// built by TestMain only when they run (SHOAL_BENCH=1).
var kfakeBin string

func TestMain(m *testing.M) {
	if broker := os.Getenv(pipelineEnv); broker != "" {
		// This binary re-executed as a pipeline process (txn_eos_test.go).
		os.Exit(runPipeline(broker))
	}
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	pkgs := []string{"github.com/shoalmq/shoal/cmd/shoal"}
	benchmarks := os.Getenv("SHOAL_BENCH") == "1"
	if benchmarks {
		pkgs = append(pkgs, "github.com/shoalmq/shoal/bench/baseline/kfakeserver")
	}
	dir, err := testbin.Build("shoal-integration-", pkgs...)
	if err != nil {
		fmt.Fprintln(os.Stderr, "integration:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	shoalBin = filepath.Join(dir, "shoal")
	if benchmarks {
		kfakeBin = filepath.Join(dir, "kfakeserver")
	}
	return m.Run()
}

// Timeouts used across the suite. They bound waits on conditions; nothing
// sleeps for them.
const (
	startTimeout = 30 * time.Second
	stopTimeout  = 20 * time.Second
	opTimeout    = 20 * time.Second
)

// nodeOpts configure a node beyond the ports and data directory the harness
// picks.
type nodeOpts struct {
	// set are extra key=value pairs passed as --set flags, after the
	// harness's own (so they win).
	set []string
	// env are extra KEY=VALUE environment variables.
	env []string
	// configFile, when not empty, is written to a properties file passed
	// with --config.
	configFile string
	// noAdmin disables the HTTP admin listener.
	noAdmin bool
	// listenersAsFlags passes listeners and controller.quorum.voters as
	// --set flags instead of in the harness's properties file.
	listenersAsFlags bool
	// clientListener names the client listener (default PLAINTEXT);
	// configFile maps it to its security protocol.
	clientListener string
	// extraListener, when not empty, names a second client listener on
	// a port of its own (ExtraAddr); configFile maps it to its security
	// protocol.
	extraListener string
	// clientOpts are what a client needs to reach the client listener
	// (TLS, SASL); the readiness check and Client use them.
	clientOpts []kgo.Opt
	// beforeFirstStart runs once the node's ports and files are chosen,
	// before the process first starts (shoal storage format).
	beforeFirstStart func(n *node)
}

// node is one shoal process. Restart keeps its ports and data directory.
type node struct {
	t    *testing.T
	opts nodeOpts

	dataDir    string
	configPath string
	clientPort int
	extraPort  int
	ctrlPort   int
	adminAddr  string

	output *syncbuf.Buffer

	mu      sync.Mutex
	cmd     *exec.Cmd
	exited  chan struct{}
	exitErr error
	starts  int
}

// startNode starts a single-node cluster and waits until it serves metadata
// with a registered broker and an elected controller.
func startNode(t *testing.T, opts nodeOpts) *node {
	t.Helper()
	n := &node{
		t:          t,
		opts:       opts,
		dataDir:    t.TempDir(),
		clientPort: freePort(t),
		ctrlPort:   freePort(t),
		output:     &syncbuf.Buffer{},
	}
	if opts.extraListener != "" {
		n.extraPort = freePort(t)
	}
	if !opts.noAdmin {
		n.adminAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t)))
	}
	// The list-valued keys (listeners, controller.quorum.voters) go in a
	// properties file by default; opts.configFile is appended after them.
	props := opts.configFile
	if !opts.listenersAsFlags {
		props = strings.Join(n.listenerSettings(), "\n") + "\n" + props
	}
	if props != "" {
		n.configPath = filepath.Join(t.TempDir(), "server.properties")
		if err := os.WriteFile(n.configPath, []byte(props), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// Registered after TempDir, so it runs before the directories are
	// removed: the process must be gone first.
	t.Cleanup(func() {
		if t.Failed() && os.Getenv("SHOAL_TEST_STACKS") != "" {
			n.dumpStacks()
		}
		n.kill()
		if t.Failed() {
			t.Logf("shoal output (node on %s):\n%s", n.Addr(), n.output.String())
			t.Logf("data directory:\n%s", n.listDataDir())
		}
	})
	if opts.beforeFirstStart != nil {
		opts.beforeFirstStart(n)
	}
	n.start()
	return n
}

// listDataDir lists the partition files under the data directory (not the
// metadata log) with their sizes, for failure reports.
func (n *node) listDataDir() string {
	var b strings.Builder
	root := filepath.Join(n.dataDir, "data")
	filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		rel, _ := filepath.Rel(root, path)
		if d.IsDir() {
			if strings.HasPrefix(rel, "__cluster_metadata") {
				return filepath.SkipDir
			}
			return nil
		}
		if info, err := d.Info(); err == nil {
			fmt.Fprintf(&b, "  %-70s %10d\n", rel, info.Size())
		}
		return nil
	})
	return b.String()
}

// Addr is the Kafka client listener.
func (n *node) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(n.clientPort)) }

// ExtraAddr is the second client listener (nodeOpts.extraListener).
func (n *node) ExtraAddr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(n.extraPort)) }

// AdminAddr is the HTTP admin listener ("" when disabled).
func (n *node) AdminAddr() string { return n.adminAddr }

// Output returns everything the process(es) wrote so far.
func (n *node) Output() string { return n.output.String() }

func (n *node) listenerSettings() []string {
	ctrl := "127.0.0.1:" + strconv.Itoa(n.ctrlPort)
	name := n.opts.clientListener
	if name == "" {
		name = "PLAINTEXT"
	}
	listeners := name + "://" + n.Addr()
	if n.opts.extraListener != "" {
		listeners += "," + n.opts.extraListener + "://" + n.ExtraAddr()
	}
	return []string{
		"listeners=" + listeners + ",CONTROLLER://" + ctrl,
		"controller.quorum.voters=1@" + ctrl,
	}
}

func (n *node) args() []string {
	args := []string{"serve"}
	if n.configPath != "" {
		args = append(args, "--config", n.configPath)
	}
	set := []string{
		"node.id=1",
		"log.dirs=" + filepath.Join(n.dataDir, "data"),
		"admin.addr=" + n.adminAddr,
	}
	if n.opts.listenersAsFlags {
		set = append(set, n.listenerSettings()...)
	}
	set = append(set, n.opts.set...)
	for _, kv := range set {
		args = append(args, "--set", kv)
	}
	return args
}

// start launches the process and waits until it serves.
func (n *node) start() {
	n.waitReady(n.launch())
}

// launch starts the process without waiting for it to serve and returns
// the channel closed when it exits.
func (n *node) launch() chan struct{} {
	t := n.t
	t.Helper()
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd != nil {
		t.Fatal("node already running")
	}
	n.starts++
	fmt.Fprintf(n.output, "----- start #%d: shoal %s\n", n.starts, strings.Join(n.args(), " "))
	cmd := exec.Command(shoalBin, n.args()...)
	cmd.Env = childEnv(n.opts.env)
	cmd.Stdout = n.output
	cmd.Stderr = n.output
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting shoal: %v", err)
	}
	exited := make(chan struct{})
	n.cmd, n.exited, n.exitErr = cmd, exited, nil
	go func() {
		err := cmd.Wait()
		n.mu.Lock()
		n.exitErr = err
		n.mu.Unlock()
		close(exited)
	}()
	return exited
}

// waitReady polls Metadata until the node lists itself as a broker and names
// a controller, failing at once if the process exits.
func (n *node) waitReady(exited chan struct{}) {
	t := n.t
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(n.Addr()), kgo.RetryTimeout(time.Second),
		kgo.DialTimeout(time.Second)}, n.opts.clientOpts...)...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	deadline := time.Now().Add(startTimeout)
	var last string
	for {
		select {
		case <-exited:
			t.Fatalf("shoal exited during start-up: %v\n%s", n.exitError(), n.Output())
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		m, err := adm.BrokerMetadata(ctx)
		cancel()
		switch {
		case err != nil:
			last = err.Error()
		case len(m.Brokers) == 0:
			last = "no brokers in metadata"
		case m.Controller < 0:
			last = "no controller in metadata"
		default:
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("shoal not ready after %v: %s", startTimeout, last)
		}
		select {
		case <-exited:
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (n *node) exitError() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.exitErr
}

// Alive reports whether the process is running.
func (n *node) Alive() bool {
	n.mu.Lock()
	exited := n.exited
	n.mu.Unlock()
	if exited == nil {
		return false
	}
	select {
	case <-exited:
		return false
	default:
		return true
	}
}

// signal sends sig and waits for the process to exit, returning its exit
// error (nil for exit status 0).
func (n *node) signal(sig syscall.Signal, timeout time.Duration) error {
	t := n.t
	t.Helper()
	n.mu.Lock()
	cmd, exited := n.cmd, n.exited
	n.mu.Unlock()
	if cmd == nil {
		t.Fatal("node is not running")
	}
	if err := cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		t.Fatalf("signal %v: %v", sig, err)
	}
	select {
	case <-exited:
	case <-time.After(timeout):
		// SIGQUIT makes the Go runtime print every goroutine's stack into
		// the captured output before the process dies.
		cmd.Process.Signal(syscall.SIGQUIT)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
		n.mu.Lock()
		n.cmd = nil
		n.mu.Unlock()
		t.Fatalf("shoal did not exit within %v of %v (goroutine dump in the output below)", timeout, sig)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.cmd = nil
	return n.exitErr
}

// Kill9 kills the process with SIGKILL and waits for it.
func (n *node) Kill9() {
	n.t.Helper()
	fmt.Fprintf(n.output, "----- SIGKILL\n")
	n.signal(syscall.SIGKILL, stopTimeout)
}

// Stop sends SIGTERM and asserts a clean exit (status 0).
func (n *node) Stop() {
	n.t.Helper()
	fmt.Fprintf(n.output, "----- SIGTERM\n")
	if err := n.signal(syscall.SIGTERM, stopTimeout); err != nil {
		n.t.Fatalf("shoal did not exit cleanly on SIGTERM: %v", err)
	}
}

// Restart starts the process again with the same ports and data directory.
func (n *node) Restart() {
	n.t.Helper()
	n.start()
}

// kill is the cleanup path: SIGKILL if still running, no assertions.
// dumpStacks has a failed test's node print every goroutine's stack (Go
// does on SIGQUIT, then exits) into its output: where a node hung.
func (n *node) dumpStacks() {
	n.mu.Lock()
	cmd, exited := n.cmd, n.exited
	n.mu.Unlock()
	if cmd == nil {
		return
	}
	cmd.Process.Signal(syscall.SIGQUIT)
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
	}
}

func (n *node) kill() {
	n.mu.Lock()
	cmd, exited := n.cmd, n.exited
	n.cmd = nil
	n.mu.Unlock()
	if cmd == nil {
		return
	}
	cmd.Process.Kill()
	<-exited
}

// Client returns a kgo client seeded with this node, closed when the test
// ends. opts come after the harness defaults.
func (n *node) Client(t *testing.T, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	return clientWith(t, []kgo.Opt{kgo.SeedBrokers(n.Addr()), kgo.MetadataMinAge(100 * time.Millisecond)}, n.opts.clientOpts, opts...)
}

// clientWith returns a kgo client made of defaults (seeds, timeouts), then
// listener (the TLS or SASL options the nodes' client listener needs), then
// opts, so a test's own options win. It is closed when the test ends.
func clientWith(t *testing.T, defaults, listener []kgo.Opt, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(slices.Concat(defaults, listener, opts)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// Admin returns a kadm client over a fresh kgo client.
func (n *node) Admin(t *testing.T) *kadm.Client {
	t.Helper()
	return kadm.NewClient(n.Client(t))
}

// childEnv is the test's environment without any SHOAL_ variable (shoal
// rejects unknown ones), plus extra.
func childEnv(extra []string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "SHOAL_") {
			continue
		}
		env = append(env, kv)
	}
	return append(env, extra...)
}

// freePort returns a free loopback port no other call returned.
func freePort(t *testing.T) int {
	t.Helper()
	return distinctPorts(t, 1)[0]
}

// childProc is the test binary run again as a helper process, for a client
// that must be able to die by SIGKILL rather than by Close. It reports on
// stdout, one line per event.
type childProc struct {
	cmd    *exec.Cmd
	stderr *syncbuf.Buffer
	exited chan struct{} // closed once stdout is drained and the process reaped
}

// startChild starts the test binary, running no tests, with env added to
// this process's environment, and hands each line it prints to line (from
// one goroutine). When the test ends the child is killed and, if the test
// failed, report is given what the child wrote to stderr.
func startChild(t *testing.T, what string, env []string, line func(string), report func(stderr string)) *childProc {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), env...)
	p := &childProc{cmd: cmd, stderr: &syncbuf.Buffer{}, exited: make(chan struct{})}
	cmd.Stderr = p.stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", what, err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line(sc.Text())
		}
		cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		p.kill9()
		if t.Failed() {
			report(p.stderr.String())
		}
	})
	return p
}

// kill9 kills the child with SIGKILL and waits until it is gone.
func (p *childProc) kill9() {
	p.cmd.Process.Kill()
	<-p.exited
}

// waitFor polls cond until it reports true or timeout passes; on timeout the
// test fails with what and cond's last explanation.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, why := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s: %s", timeout, what, why)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// ctxT is a context bounded by d and cancelled when the test ends.
func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// topicName derives a unique, valid topic name from the test name.
func topicName(t *testing.T, suffix string) string {
	name := strings.NewReplacer("/", ".", " ", "_").Replace(t.Name())
	if suffix != "" {
		name += "-" + suffix
	}
	return name
}

// startNodeWithTopic starts a node with opts and creates a topic named
// after the test with the given number of partitions.
func startNodeWithTopic(t *testing.T, opts nodeOpts, partitions int32) (n *node, adm *kadm.Client, topic string, id kadm.TopicID) {
	t.Helper()
	n = startNode(t, opts)
	adm = n.Admin(t)
	topic = topicName(t, "")
	return n, adm, topic, createTopic(t, adm, topic, partitions, nil).ID
}

// createTopic creates a topic through kadm and fails the test on error.
func createTopic(t *testing.T, adm *kadm.Client, topic string, partitions int32, configs map[string]*string) kadm.CreateTopicResponse {
	t.Helper()
	return createTopicRF(t, adm, topic, partitions, 1, configs)
}

// createTopicRF is createTopic with rf replicas per partition, for the
// cluster tests.
func createTopicRF(t *testing.T, adm *kadm.Client, topic string, partitions int32, rf int16, configs map[string]*string) kadm.CreateTopicResponse {
	t.Helper()
	resp, err := adm.CreateTopic(ctxT(t, opTimeout), partitions, rf, configs, topic)
	if err != nil {
		t.Fatalf("create topic %s: %v", topic, err)
	}
	if resp.Err != nil {
		t.Fatalf("create topic %s: %v (%s)", topic, resp.Err, resp.ErrMessage)
	}
	return resp
}

func strp(s string) *string { return &s }

// consumeN reads exactly want records from cl (which must already be
// assigned partitions), failing on fetch errors or timeout.
func consumeN(t *testing.T, cl *kgo.Client, want int, timeout time.Duration) []*kgo.Record {
	t.Helper()
	ctx := ctxT(t, timeout)
	var out []*kgo.Record
	for len(out) < want {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d of %d records before timeout", len(out), want)
		}
		fs.EachError(func(topic string, p int32, err error) {
			t.Errorf("fetch %s/%d: %v", topic, p, err)
		})
		if t.Failed() {
			t.FailNow()
		}
		out = append(out, fs.Records()...)
	}
	if len(out) > want {
		t.Fatalf("consumed %d records, want %d", len(out), want)
	}
	return out
}
