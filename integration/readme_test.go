package integration

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shoalmq/shoal/internal/syncbuf"
)

// readmeSections are the README sections whose shell blocks a newcomer
// runs in order: the single node, the tour, then the cluster.
var readmeSections = []string{"Set up", "Five-minute tour", "A three-node cluster"}

// trailingComment is a shell comment at the end of a README line.
var trailingComment = regexp.MustCompile(`\s+#.*$`)

// readmeCommandTimeout bounds each command of the README; every one of
// them must return by itself.
const readmeCommandTimeout = 30 * time.Second

// readmeBlocks returns the shell lines of the README's indented code blocks
// in the given section, continuation lines joined.
func readmeBlocks(t *testing.T, readme, section string) []string {
	t.Helper()
	start := strings.Index(readme, "\n## "+section+"\n")
	if start < 0 {
		t.Fatalf("README has no section %q", section)
	}
	body := readme[start+len(section)+5:]
	if end := strings.Index(body, "\n## "); end >= 0 {
		body = body[:end]
	}
	var lines []string
	pending := ""
	for _, l := range strings.Split(body, "\n") {
		if !strings.HasPrefix(l, "    ") {
			continue
		}
		l = strings.TrimSpace(l)
		if c, ok := strings.CutSuffix(l, `\`); ok {
			pending += c + " "
			continue
		}
		lines = append(lines, pending+l)
		pending = ""
	}
	return lines
}

// TestReadmeCommands runs the README's Set up, tour and cluster commands,
// as written, in a fresh directory with the built binary as ./shoal; each
// must exit 0 within readmeCommandTimeout, so the README cannot drift from
// the product. The README's fixed ports are mapped to free ones (the
// single node's defaults through SHOAL_* variables), so the test can run
// beside others. Lines that run the Go toolchain (build, tests, examples)
// are not run here: the binary is already built and the examples have a
// test of their own.
func TestReadmeCommands(t *testing.T) {
	raw, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(raw)
	dir := t.TempDir()
	if err := os.Symlink(shoalBin, filepath.Join(dir, "shoal")); err != nil {
		t.Fatal(err)
	}

	var sections [][]string
	ports := map[string]string{"9092": "", "9093": "", "9644": ""}
	portRE := regexp.MustCompile(`127\.0\.0\.1:(\d{4,5})`)
	for _, s := range readmeSections {
		lines := readmeBlocks(t, readme, s)
		for _, l := range lines {
			for _, m := range portRE.FindAllStringSubmatch(l, -1) {
				ports[m[1]] = ""
			}
		}
		sections = append(sections, lines)
	}
	for p := range ports {
		ports[p] = strconv.Itoa(freePort(t))
	}
	remap := func(s string) string {
		return portRE.ReplaceAllStringFunc(s, func(m string) string {
			return "127.0.0.1:" + ports[strings.TrimPrefix(m, "127.0.0.1:")]
		})
	}
	bootstrap := "127.0.0.1:" + ports["9092"]
	env := childEnv([]string{
		"SHOAL_BOOTSTRAP_SERVER=" + bootstrap,
		// The single node's defaults, moved to the mapped ports.
		"SHOAL_LISTENERS=PLAINTEXT://127.0.0.1:" + ports["9092"] + ",CONTROLLER://127.0.0.1:" + ports["9093"],
		"SHOAL_CONTROLLER_QUORUM_VOTERS=1@127.0.0.1:" + ports["9093"],
		"SHOAL_ADMIN_ADDR=127.0.0.1:" + ports["9644"],
	})

	var servers []*readmeServer
	t.Cleanup(func() {
		for _, s := range servers {
			s.kill()
		}
		if t.Failed() {
			for _, s := range servers {
				t.Logf("%s\noutput:\n%s", s.line, s.out.String())
			}
		}
	})
	var vars []string           // shell variable assignments seen so far
	var started []*readmeServer // servers not yet waited for
	assignRE := regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*=\S+$`)
	for i, lines := range sections {
		if readmeSections[i] == "A three-node cluster" {
			// As the README says: stop the single node first.
			for _, s := range servers {
				s.stop(t)
			}
			servers = nil
		}
		for _, line := range lines {
			cmdLine := remap(line)
			switch {
			case line == "":
			case strings.HasPrefix(line, "go "), strings.HasPrefix(line, "kgo."), strings.HasPrefix(line, "#"):
				// The toolchain, or a Go snippet shown for reading.
			case assignRE.MatchString(line):
				vars = append(vars, cmdLine)
			case strings.HasPrefix(line, "./shoal serve"):
				// Run in the foreground of its own shell, so the test
				// holds the process: no trailing comment or "&".
				serve := strings.TrimSpace(trailingComment.ReplaceAllString(cmdLine, ""))
				s := startReadmeServer(t, dir, env, vars, strings.TrimSpace(strings.TrimSuffix(serve, "&")))
				servers = append(servers, s)
				started = append(started, s)
			case strings.HasPrefix(line, "./shoal "), strings.Contains(line, "| ./shoal "):
				if len(started) > 0 {
					waitReadmeBrokers(t, bootstrap, len(started), started)
					started = nil
				}
				runReadmeCommand(t, dir, env, vars, line, cmdLine)
			default:
				t.Errorf("README line the test does not know how to run (add a case): %s", line)
			}
		}
	}
}

// readmeServer is a ./shoal serve started from the README.
type readmeServer struct {
	line   string
	cmd    *exec.Cmd
	cancel context.CancelFunc // kills its process group
	out    *syncbuf.Buffer
	exited chan struct{}
}

func startReadmeServer(t *testing.T, dir string, env, vars []string, line string) *readmeServer {
	t.Helper()
	script := strings.Join(append(append([]string{}, vars...), "exec "+line), "\n")
	s := &readmeServer{line: line, out: &syncbuf.Buffer{}, exited: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	s.cmd = exec.CommandContext(ctx, "bash", "-c", script)
	s.cmd.Dir, s.cmd.Env = dir, env
	inOwnGroup(s.cmd)
	s.cmd.Stdout, s.cmd.Stderr = s.out, s.out
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("%s: %v", line, err)
	}
	go func() {
		s.cmd.Wait()
		close(s.exited)
	}()
	return s
}

// stop sends SIGTERM and waits for the process to end.
func (s *readmeServer) stop(t *testing.T) {
	t.Helper()
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(stopTimeout):
		t.Fatalf("%s: still running %v after SIGTERM", s.line, stopTimeout)
	}
}

func (s *readmeServer) kill() {
	s.cancel()
	<-s.exited
}

// inOwnGroup runs cmd in a process group of its own, killed as a whole on
// Cancel (a context's end), and bounds how long Wait waits for output
// after that: a README line that leaves a process behind cannot hang the
// test.
func inOwnGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
}

// waitReadmeBrokers waits until the broker at bootstrap lists n brokers
// and a controller, failing at once if a server exits. Each poll asks the
// seed broker itself with a fresh client: kgo answers Metadata requests
// from its own cache for a while.
func waitReadmeBrokers(t *testing.T, bootstrap string, n int, servers []*readmeServer) {
	t.Helper()
	waitFor(t, startTimeout, fmt.Sprintf("%d brokers from the README's serve lines", n), func() (bool, string) {
		for _, s := range servers {
			select {
			case <-s.exited:
				t.Fatalf("%s: exited during start-up:\n%s", s.line, s.out.String())
			default:
			}
		}
		m, err := metadataAt(t, bootstrap)
		if err != nil {
			return false, err.Error()
		}
		ids := make([]int, 0, len(m.Brokers))
		for _, b := range m.Brokers {
			ids = append(ids, int(b.NodeID))
		}
		sort.Ints(ids)
		return len(m.Brokers) >= n && m.ControllerID >= 0, fmt.Sprintf("brokers %v, controller %d", ids, m.ControllerID)
	})
}

// runReadmeCommand runs one README command line in bash, failing the test
// when it exits non-zero or does not return in time.
func runReadmeCommand(t *testing.T, dir string, env, vars []string, line, cmdLine string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), readmeCommandTimeout)
	defer cancel()
	script := strings.Join(append(append([]string{"set -o pipefail"}, vars...), cmdLine), "\n")
	cmd := exec.CommandContext(ctx, "bash", "-c", script)
	cmd.Dir, cmd.Env = dir, env
	inOwnGroup(cmd)
	start := time.Now()
	out, err := cmd.CombinedOutput()
	switch {
	case ctx.Err() != nil:
		t.Errorf("README command did not return within %v: %s\n%s", readmeCommandTimeout, line, out)
	case err != nil:
		t.Errorf("README command failed (%v): %s\n%s", err, line, out)
	default:
		t.Logf("%s (%v)", line, time.Since(start).Round(time.Millisecond))
	}
}
