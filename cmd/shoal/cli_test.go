package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/shoalmq/shoal/internal/syncbuf"
	"github.com/shoalmq/shoal/internal/testbin"
	"github.com/shoalmq/shoal/internal/testports"
)

// The tests in this package run the real shoal binary: TestMain builds it,
// starts one broker with it, and every test drives the client commands
// against that broker, checking their output with kadm/kgo.
var (
	shoalBin   string // the built binary
	brokerAddr string // the broker's client listener
	logDir     string // the broker's log.dirs
)

const (
	startTimeout = 60 * time.Second
	cmdTimeout   = 30 * time.Second
)

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	dir, err := testbin.Build("shoal-cli-test-", "github.com/shoalmq/shoal/cmd/shoal")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	shoalBin = filepath.Join(dir, "shoal")

	b, err := startBroker(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "starting broker:", err)
		return 1
	}
	brokerAddr, logDir = b.addr, b.logDir
	code := m.Run()
	if err := b.stop(); err != nil {
		fmt.Fprintln(os.Stderr, "stopping broker:", err)
		if code == 0 {
			code = 1
		}
	}
	return code
}

// freePort returns a free loopback port no other call returned.
func freePort() (int, error) {
	ports, err := testports.Pick(1)
	if err != nil {
		return 0, err
	}
	return ports[0], nil
}

// testBroker is one "shoal serve" process.
type testBroker struct {
	addr   string
	logDir string
	stop   func() error // SIGTERM, then wait for a clean exit
}

// startBroker runs "shoal serve" with its data under dir, on free ports,
// and waits until it serves metadata with a registered broker and an
// elected controller.
func startBroker(dir string) (*testBroker, error) {
	clientPort, err := freePort()
	if err != nil {
		return nil, err
	}
	ctrlPort, err := freePort()
	if err != nil {
		return nil, err
	}
	b := &testBroker{
		addr:   net.JoinHostPort("127.0.0.1", strconv.Itoa(clientPort)),
		logDir: filepath.Join(dir, "data"),
	}
	ctrl := net.JoinHostPort("127.0.0.1", strconv.Itoa(ctrlPort))

	// The list-valued keys go in a properties file: serve's --set is a
	// string slice flag, which splits its values at commas. The acl
	// commands need an authorizer (without one Kafka keeps no ACLs); the
	// anonymous principal of the PLAINTEXT listener is a super user, so
	// nothing else is refused.
	props := filepath.Join(dir, "server.properties")
	if err := os.WriteFile(props, []byte(
		"listeners=PLAINTEXT://"+b.addr+",CONTROLLER://"+ctrl+"\n"+
			"controller.quorum.voters=1@"+ctrl+"\n"+
			"authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer\n"+
			"super.users=User:ANONYMOUS\n"), 0o644); err != nil {
		return nil, err
	}
	out, err := os.Create(filepath.Join(dir, "broker.log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(shoalBin, "serve", "--config", props,
		"--set", "node.id=1",
		"--set", "log.dirs="+b.logDir,
		"--set", "admin.addr=")
	cmd.Env = testEnv()
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		out.Close()
		return nil, err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	b.stop = func() error {
		defer out.Close()
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-exited:
			return err
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
			return errors.New("broker did not stop within 20s of SIGTERM")
		}
	}

	cl, err := kgo.NewClient(kgo.SeedBrokers(b.addr), kgo.DialTimeout(time.Second), kgo.RetryTimeout(time.Second))
	if err != nil {
		_ = b.stop()
		return nil, err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	deadline := time.Now().Add(startTimeout)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		md, err := adm.BrokerMetadata(ctx)
		cancel()
		if err == nil && len(md.Brokers) > 0 && md.Controller >= 0 {
			return b, nil
		}
		select {
		case err := <-exited:
			log, _ := os.ReadFile(out.Name())
			return nil, fmt.Errorf("broker exited (%v):\n%s", err, log)
		case <-tick.C:
		}
		if time.Now().After(deadline) {
			_ = b.stop()
			log, _ := os.ReadFile(out.Name())
			return nil, fmt.Errorf("broker not ready within %s (last error: %v):\n%s", startTimeout, err, log)
		}
	}
}

// testEnv is the environment without SHOAL_* variables, so the caller's
// settings cannot leak into the tests.
func testEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SHOAL_") {
			env = append(env, kv)
		}
	}
	return env
}

// result is one run of the binary.
type result struct {
	stdout, stderr string
	code           int
	took           time.Duration
}

// shoal runs the binary against the test broker.
func shoal(t *testing.T, args ...string) result {
	t.Helper()
	return shoalIn(t, "", append([]string{"--bootstrap-server", brokerAddr}, args...)...)
}

// shoalIn runs the binary with stdin and exactly the given arguments.
func shoalIn(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, shoalBin, args...)
	cmd.Env = testEnv()
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	r := result{stdout: stdout.String(), stderr: stderr.String(), took: time.Since(start)}
	if ctx.Err() != nil {
		t.Fatalf("shoal %s: still running after %s\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), cmdTimeout, r.stdout, r.stderr)
	}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	default:
		t.Fatalf("shoal %s: %v", strings.Join(args, " "), err)
	}
	return r
}

// ok runs the binary and fails the test unless it exits 0.
func ok(t *testing.T, args ...string) result {
	t.Helper()
	r := shoal(t, args...)
	if r.code != 0 {
		t.Fatalf("shoal %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r
}

// runningShoal is the binary running against the test broker while the
// test watches its output.
type runningShoal struct {
	cmd            *exec.Cmd
	name           string // "shoal" and the arguments, for messages
	stdout, stderr syncbuf.Buffer
	exited         chan error // the result of Wait, once it exits
}

// startShoal starts the binary against the test broker; it is killed when
// the test ends if it is still running.
func startShoal(t *testing.T, args ...string) *runningShoal {
	t.Helper()
	r := &runningShoal{name: "shoal " + strings.Join(args, " "), exited: make(chan error, 1)}
	r.cmd = exec.Command(shoalBin, append([]string{"--bootstrap-server", brokerAddr}, args...)...)
	r.cmd.Env = testEnv()
	r.cmd.Stdout, r.cmd.Stderr = &r.stdout, &r.stderr
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { r.exited <- r.cmd.Wait() }()
	t.Cleanup(func() { r.cmd.Process.Kill() })
	return r
}

// interrupt sends SIGINT, as Ctrl-C does, and waits for a clean exit.
func (r *runningShoal) interrupt(t *testing.T) {
	t.Helper()
	if err := r.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-r.exited:
		if err != nil {
			t.Fatalf("%s after SIGINT: %v: %s", r.name, err, r.stderr.String())
		}
	case <-time.After(cmdTimeout):
		t.Fatalf("%s did not exit within %v of SIGINT", r.name, cmdTimeout)
	}
}

// okJSON runs the binary as ok does and decodes its output, which must be
// one JSON value, into a T.
func okJSON[T any](t *testing.T, args ...string) T {
	t.Helper()
	r := ok(t, args...)
	var v T
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil {
		t.Fatalf("shoal %s: %v\n%s", strings.Join(args, " "), err, r.stdout)
	}
	return v
}

// okJSONListed runs a list command with JSON output and returns the entry
// of the list that is the one wanted, failing the test if there is none.
func okJSONListed[T any](t *testing.T, wanted func(T) bool, args ...string) T {
	t.Helper()
	list := okJSON[[]T](t, args...)
	i := slices.IndexFunc(list, wanted)
	if i < 0 {
		t.Fatalf("shoal %s lists no such entry: %+v", strings.Join(args, " "), list)
	}
	return list[i]
}

// fails runs the binary and checks it fails with one line on stderr that
// contains want.
func fails(t *testing.T, r result, want string) {
	t.Helper()
	if r.code == 0 {
		t.Fatalf("exit 0, want failure\nstdout:\n%s\nstderr:\n%s", r.stdout, r.stderr)
	}
	msg := strings.TrimSuffix(r.stderr, "\n")
	if msg == "" || strings.Contains(msg, "\n") {
		t.Fatalf("want exactly one line on stderr, got:\n%s", r.stderr)
	}
	if !strings.HasPrefix(msg, "shoal: ") {
		t.Errorf("stderr %q does not start with %q", msg, "shoal: ")
	}
	if strings.Contains(msg, "goroutine ") || strings.Contains(msg, "panic") {
		t.Fatalf("stderr looks like a crash: %s", msg)
	}
	if !strings.Contains(msg, want) {
		t.Fatalf("stderr %q does not contain %q", msg, want)
	}
}

func testAdmin(t *testing.T) (*kgo.Client, *kadm.Client) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokerAddr), kgo.DialTimeout(3*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl, kadm.NewClient(cl)
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	t.Cleanup(cancel)
	return ctx
}

var topicSeq atomic.Int64

// topicName makes a topic name unique to the test and the run (the broker
// outlives a test run with -count).
func topicName(t *testing.T, suffix string) string {
	name := strings.NewReplacer("/", "-", "_", "-").Replace(t.Name())
	return strings.ToLower(name) + "-" + suffix + "-" + itoa(topicSeq.Add(1))
}

func createTopic(t *testing.T, name string, partitions int, configs ...string) {
	t.Helper()
	args := []string{"topic", "create", name, "--partitions", strconv.Itoa(partitions)}
	for _, c := range configs {
		args = append(args, "--config", c)
	}
	ok(t, args...)
}

type kadmConfig = kadm.Config

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

type kadmListedOffset = kadm.ListedOffset
