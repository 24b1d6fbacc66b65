package integration

import (
	"bufio"
	"io"
	"os/exec"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/shoalmq/shoal/internal/syncbuf"
)

// processMember is a group member run as a subprocess (kafka-python, kcat)
// that reports its assignment in lines of its output.
type processMember struct {
	cmd    *exec.Cmd
	stderr *syncbuf.Buffer
	done   chan struct{}
	once   sync.Once

	ownedPartitions
}

// startProcessMember starts cmd and follows its stdout (or, with
// fromStderr, its stderr, which is then also kept for the failure log):
// each line parse accepts sets the member's assignment. A member whose
// process has exited owns nothing.
func startProcessMember(t *testing.T, name string, cmd *exec.Cmd, fromStderr bool, parse func(line string) (owned []int32, ok bool)) *processMember {
	t.Helper()
	m := &processMember{cmd: cmd, stderr: &syncbuf.Buffer{}, done: make(chan struct{})}
	var out io.Reader
	var err error
	if fromStderr {
		out, err = cmd.StderrPipe()
	} else {
		cmd.Stderr = m.stderr
		out, err = cmd.StdoutPipe()
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(m.done)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			line := sc.Text()
			if fromStderr {
				m.stderr.Write([]byte(line + "\n"))
			}
			if owned, ok := parse(line); ok {
				m.setOwned(owned)
			}
		}
		cmd.Wait()
		m.setOwned(nil)
	}()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("%s member stderr:\n%s", name, lastLines(m.stderr.String(), 15))
		}
	})
	return m
}

func (m *processMember) setOwned(owned []int32) {
	m.mu.Lock()
	m.owned = owned
	m.mu.Unlock()
}

// close asks the process to leave the group (SIGTERM) and kills it if it
// has not exited within stopTimeout.
func (m *processMember) close() {
	m.once.Do(func() {
		m.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-m.done:
		case <-time.After(stopTimeout):
			m.cmd.Process.Kill()
			<-m.done
		}
	})
}
