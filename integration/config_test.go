package integration

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/shoalmq/shoal/internal/syncbuf"
)

// runShoal runs the binary to completion (it must exit within timeout) and
// returns its exit code and stderr.
func runShoal(t *testing.T, env []string, args ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, shoalBin, args...)
	cmd.Env = childEnv(env)
	var stderr syncbuf.Buffer
	cmd.Stderr = &stderr
	cmd.Stdout = io.Discard
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("shoal %s did not exit within 15s; stderr:\n%s", strings.Join(args, " "), stderr.String())
	}
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, stderr.String()
	case errors.As(err, &ee):
		return ee.ExitCode(), stderr.String()
	default:
		t.Fatalf("running shoal: %v", err)
		return 0, ""
	}
}

func TestConfigErrors(t *testing.T) {
	t.Parallel()
	// Valid settings for everything else, on free ports, so a broker that
	// wrongly accepted the bad key would start without disturbing anything.
	// They go in a properties file; extra lines are appended to it.
	baseFile := func(t *testing.T, extra string) string {
		ctrl := "127.0.0.1:" + strconv.Itoa(freePort(t))
		props := strings.Join([]string{
			"# written by the test",
			"listeners=PLAINTEXT://127.0.0.1:" + strconv.Itoa(freePort(t)) + ",CONTROLLER://" + ctrl,
			"controller.quorum.voters=1@" + ctrl,
			"log.dirs=" + filepath.Join(t.TempDir(), "data"),
			"admin.addr=",
		}, "\n") + "\n" + extra
		file := filepath.Join(t.TempDir(), "server.properties")
		if err := os.WriteFile(file, []byte(props), 0o644); err != nil {
			t.Fatal(err)
		}
		return file
	}
	serveArgs := func(file string, set ...string) []string {
		args := []string{"serve", "--config", file}
		for _, kv := range set {
			args = append(args, "--set", kv)
		}
		return args
	}
	// The line must name the key (any one of keys).
	expectOneLineError := func(t *testing.T, keys []string, env []string, args []string) {
		t.Helper()
		code, stderr := runShoal(t, env, args...)
		if code == 0 {
			t.Fatalf("shoal %s exited 0, want non-zero; stderr:\n%s", strings.Join(args, " "), stderr)
		}
		lines := strings.Split(strings.TrimRight(stderr, "\n"), "\n")
		if len(lines) != 1 {
			t.Errorf("want exactly one line on stderr, got %d:\n%s", len(lines), stderr)
		}
		named := false
		for _, k := range keys {
			named = named || strings.Contains(stderr, k)
		}
		if !named {
			t.Errorf("stderr does not name %q:\n%s", keys, stderr)
		}
	}

	t.Run("UnknownFlagKey", func(t *testing.T) {
		t.Parallel()
		expectOneLineError(t, []string{"bogus.key"}, nil, serveArgs(baseFile(t, ""), "bogus.key=1"))
	})
	t.Run("BadValue", func(t *testing.T) {
		t.Parallel()
		expectOneLineError(t, []string{"num.partitions"}, nil, serveArgs(baseFile(t, ""), "num.partitions=abc"))
	})
	t.Run("ValueBelowMinimum", func(t *testing.T) {
		t.Parallel()
		expectOneLineError(t, []string{"num.partitions"}, nil, serveArgs(baseFile(t, ""), "num.partitions=0"))
	})
	t.Run("BadEnvValue", func(t *testing.T) {
		t.Parallel()
		expectOneLineError(t, []string{"SHOAL_NUM_PARTITIONS", "num.partitions"}, []string{"SHOAL_NUM_PARTITIONS=three"}, serveArgs(baseFile(t, "")))
	})
	t.Run("UnknownFileKey", func(t *testing.T) {
		t.Parallel()
		file := baseFile(t, "num.partitions=2\nbogus.file.key=1\n")
		expectOneLineError(t, []string{"bogus.file.key"}, nil, []string{"serve", "--config", file})
	})

	// A --set value may contain commas (listeners is a list): the flag
	// carries one key=value, never several.
	t.Run("ListValueInFlag", func(t *testing.T) {
		t.Parallel()
		n := startNode(t, nodeOpts{listenersAsFlags: true})
		if _, err := n.Admin(t).ListBrokers(ctxT(t, opTimeout)); err != nil {
			t.Fatalf("list brokers: %v", err)
		}
	})

	// SHOAL_NUM_PARTITIONS beats the file; --set beats SHOAL_NUM_PARTITIONS.
	autoCreatedPartitions := func(t *testing.T, n *node) int {
		t.Helper()
		topic := topicName(t, "auto")
		producer := n.Client(t, kgo.AllowAutoTopicCreation())
		if err := producer.ProduceSync(ctxT(t, opTimeout), &kgo.Record{Topic: topic, Value: []byte("x")}).FirstErr(); err != nil {
			t.Fatalf("produce to a new topic: %v", err)
		}
		tds, err := n.Admin(t).ListTopics(ctxT(t, opTimeout), topic)
		if err != nil {
			t.Fatalf("list topics: %v", err)
		}
		td := tds[topic]
		if td.Err != nil {
			t.Fatalf("auto-created topic: %v", td.Err)
		}
		return len(td.Partitions)
	}
	t.Run("EnvBeatsFile", func(t *testing.T) {
		t.Parallel()
		n := startNode(t, nodeOpts{configFile: "num.partitions=2\n", env: []string{"SHOAL_NUM_PARTITIONS=3"}})
		if got := autoCreatedPartitions(t, n); got != 3 {
			t.Errorf("auto-created topic has %d partitions with SHOAL_NUM_PARTITIONS=3 (file says 2), want 3", got)
		}
	})
	t.Run("FlagBeatsEnv", func(t *testing.T) {
		t.Parallel()
		n := startNode(t, nodeOpts{env: []string{"SHOAL_NUM_PARTITIONS=3"}, set: []string{"num.partitions=5"}})
		if got := autoCreatedPartitions(t, n); got != 5 {
			t.Errorf("auto-created topic has %d partitions with --set num.partitions=5 and SHOAL_NUM_PARTITIONS=3, want 5", got)
		}
	})
}

func TestAdminEndpoints(t *testing.T) {
	t.Parallel()
	n := startNode(t, nodeOpts{})
	hc := &http.Client{Timeout: 5 * time.Second}
	get := func(path string) (int, string) {
		t.Helper()
		resp, err := hc.Get("http://" + n.AdminAddr() + path)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		return resp.StatusCode, string(body)
	}
	for _, path := range []string{"/healthz", "/readyz"} {
		if code, body := get(path); code != http.StatusOK {
			t.Errorf("GET %s: %d %s", path, code, body)
		}
	}

	topic := topicName(t, "")
	producer := n.Client(t, kgo.AllowAutoTopicCreation())
	var rs []*kgo.Record
	for i := 0; i < 20; i++ {
		rs = append(rs, &kgo.Record{Topic: topic, Value: []byte(fmt.Sprintf("metric-%d", i))})
	}
	if err := producer.ProduceSync(ctxT(t, opTimeout), rs...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
	series := fmt.Sprintf("shoal_topic_bytes_in_total{topic=%q}", topic)
	waitFor(t, 10*time.Second, series+" > 0", func() (bool, string) {
		code, body := get("/metrics")
		if code != http.StatusOK {
			return false, fmt.Sprintf("GET /metrics: %d", code)
		}
		sc := bufio.NewScanner(strings.NewReader(body))
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			if v, ok := strings.CutPrefix(line, series+" "); ok {
				f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
				if err != nil {
					return false, fmt.Sprintf("unparsable sample %q", line)
				}
				return f > 0, line
			}
		}
		return false, "series not in /metrics"
	})
}
