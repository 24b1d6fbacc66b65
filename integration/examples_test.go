package integration

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/shoalmq/shoal/internal/testbin"
)

// TestExamples builds each program under examples/ and runs it against a
// fresh node, checking its exit status and the exact counts on its summary
// line.
func TestExamples(t *testing.T) {
	cases := []struct {
		name    string
		summary string // regexp for the last line
	}{
		{"jobs", `^jobs: produced=10000 done=10000 unique=10000 duplicates=0 workers=8 lag=0$`},
		{"replay", `^replay: billing=15 audit=15 replayer=10 total=15$`},
		{"pipeline", `^pipeline: sent=200 done=192 retried=20 retries=40 dead-lettered=8 duplicates=0$`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir, err := testbin.Build("shoal-example-", "github.com/shoalmq/shoal/examples/"+c.name)
			if err != nil {
				t.Fatalf("example: %v", err)
			}
			t.Cleanup(func() { os.RemoveAll(dir) })
			exe := filepath.Join(dir, c.name)
			n := startNode(t, nodeOpts{})
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, exe, "--bootstrap-server", n.Addr())
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err = cmd.Run()
			if ctx.Err() != nil {
				t.Fatalf("example %s still running after 3m\nstdout:\n%s\nstderr:\n%s", c.name, stdout.String(), stderr.String())
			}
			if err != nil {
				t.Fatalf("example %s: %v\nstdout:\n%s\nstderr:\n%s", c.name, err, stdout.String(), stderr.String())
			}
			lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
			last := lines[len(lines)-1]
			if !regexp.MustCompile(c.summary).MatchString(last) {
				t.Fatalf("example %s summary %q does not match %q\nstdout:\n%s", c.name, last, c.summary, stdout.String())
			}
			t.Logf("%s: %s", c.name, last)
		})
	}
}
