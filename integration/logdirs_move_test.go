package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoalmq/shoal/crashpoint"
	"github.com/shoalmq/shoal/log"
)

// moveSetup is a one-node cluster with two log dirs and a one-partition
// topic under an idempotent acks=all producer.
type moveSetup struct {
	c        *cluster
	n        *node
	topic    string
	from, to string // the partition's log dir, and the other one
	acks     *clusterAcks
	stopLoad func()
}

// startMoveSetup starts the node (with env and set) and the producer
// (clusterProducerOpts plus load), and returns once minAcks records are
// acknowledged.
func startMoveSetup(t *testing.T, env []string, load []kgo.Opt, minAcks int, set ...string) *moveSetup {
	t.Helper()
	c := startClusterWith(t, 1, nodeOpts{env: env, set: set, beforeFirstStart: func(n *node) {
		n.opts.set = append(n.opts.set, "log.dirs="+filepath.Join(n.dataDir, "data")+","+filepath.Join(n.dataDir, "data2"))
	}})
	s := &moveSetup{c: c, n: c.node(1), topic: topicName(t, "move")}
	createTopic(t, kadm.NewClient(c.Client(t)), s.topic, 1, nil)
	// The node creates the partition's log once the topic is committed,
	// after CreateTopics has answered.
	var d logDirs
	waitFor(t, opTimeout, "the partition's log in a log dir", func() (bool, string) {
		d = s.dirs(t)
		return d.dirOf(s.topic, 0) != "", fmt.Sprintf("%+v", d)
	})
	s.from = d.dirOf(s.topic, 0)
	for dir := range d.parts {
		if dir != s.from {
			s.to = dir
		}
	}
	if s.from == "" || s.to == "" {
		t.Fatalf("partition in %q, other dir %q: %+v", s.from, s.to, d)
	}
	s.acks, s.stopLoad = startClusterLoad(t, c.Client(t, append(clusterProducerOpts(s.topic), load...)...), minAcks, "before the move")
	return s
}

func (s *moveSetup) dirs(t *testing.T) logDirs {
	t.Helper()
	return describeLogDirs(t, s.c.Client(t), s.n)
}

// alterLogDir sends AlterReplicaLogDirs for partition 0 of topic to the
// node itself (a client would route it by the partition's metadata) and
// returns its error code.
func (s *moveSetup) alterLogDir(t *testing.T, topic, dir string) int16 {
	t.Helper()
	req := kmsg.NewPtrAlterReplicaLogDirsRequest()
	rd := kmsg.NewAlterReplicaLogDirsRequestDir()
	rd.Dir = dir
	rt := kmsg.NewAlterReplicaLogDirsRequestDirTopic()
	rt.Topic, rt.Partitions = topic, []int32{0}
	rd.Topics = append(rd.Topics, rt)
	req.Dirs = append(req.Dirs, rd)
	resp, err := s.c.Client(t).Broker(int(s.n.id())).Request(ctxT(t, 10*time.Second), req)
	if err != nil {
		t.Fatalf("AlterReplicaLogDirs: %v", err)
	}
	return resp.(*kmsg.AlterReplicaLogDirsResponse).Topics[0].Partitions[0].ErrorCode
}

// checkOneCopy checks that DescribeLogDirs lists the partition in dir
// alone, with no future replica, and that only dir holds its files.
func (s *moveSetup) checkOneCopy(t *testing.T, dir string) {
	t.Helper()
	d := s.dirs(t)
	if got := d.dirOf(s.topic, 0); got != dir {
		t.Fatalf("DescribeLogDirs: partition in %q, want %q", got, dir)
	}
	for fd, ts := range d.futures {
		if len(ts[s.topic]) > 0 {
			t.Fatalf("DescribeLogDirs: future replica left in %s", fd)
		}
	}
	for _, root := range []string{s.from, s.to} {
		ents, err := os.ReadDir(root)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ents {
			if !strings.HasPrefix(e.Name(), s.topic+"-0") {
				continue
			}
			if root != dir || e.Name() != s.topic+"-0" {
				t.Errorf("left on disk: %s", filepath.Join(root, e.Name()))
			}
		}
	}
}

// TestMovePartitionBetweenLogDirs moves a partition to the node's other
// log dir with `shoal topic move-dir` while an acks=all producer keeps
// writing to it. The copy starts throttled
// (replica.alter.log.dirs.io.max.bytes.per.second) below what the producer
// writes, so DescribeLogDirs shows the future replica in the target dir
// falling behind; `shoal config set` then raises the throttle (a dynamic
// key), and the copy catches up and swaps. Afterwards the
// partition is in the target dir alone, the old dir is gone, and every
// acknowledged record reads back in order. Then `shoal topic reassign
// --execute` with a plan naming the old dir in log_dirs moves it back.
// Bad requests get Kafka's codes.
func TestMovePartitionBetweenLogDirs(t *testing.T) {
	s := startMoveSetup(t, nil, nil, 5000, "replica.alter.log.dirs.io.max.bytes.per.second=20000")
	if code := s.alterLogDir(t, s.topic, filepath.Join(s.n.dataDir, "elsewhere")); code != kerr.LogDirNotFound.Code {
		t.Errorf("unknown dir answered %d, want LOG_DIR_NOT_FOUND", code)
	}
	if code := s.alterLogDir(t, s.topic+"-absent", s.to); code != kerr.UnknownTopicOrPartition.Code {
		t.Errorf("unknown topic answered %d, want UNKNOWN_TOPIC_OR_PARTITION", code)
	}

	type result struct {
		code int
		out  string
	}
	done := make(chan result, 1)
	go func() {
		code, out := runShoal(t, nil, "--bootstrap-server", s.n.Addr(), "topic", "move-dir", s.topic,
			"--broker", "1", "--dir", s.to, "--timeout", "13s")
		done <- result{code, out}
	}()
	waitFor(t, opTimeout, "DescribeLogDirs to show the future replica in "+s.to, func() (bool, string) {
		d := s.dirs(t)
		return slices.Contains(d.futures[s.to][s.topic], 0) && d.dirOf(s.topic, 0) == s.from, fmt.Sprintf("%+v", d)
	})
	if code, out := runShoal(t, nil, "--bootstrap-server", s.n.Addr(), "config", "set", "--broker", "1",
		"--set", "replica.alter.log.dirs.io.max.bytes.per.second=200000000"); code != 0 {
		t.Fatalf("raising the throttle: exit %d: %s", code, out)
	}
	var r result
	select {
	case r = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("shoal topic move-dir did not return")
	}
	if r.code != 0 {
		t.Fatalf("shoal topic move-dir: exit %d: %s", r.code, r.out)
	}
	s.checkOneCopy(t, s.to)

	// And back, through a reassignment plan's log_dirs, as Kafka's
	// kafka-reassign-partitions.sh would send it.
	plan := filepath.Join(t.TempDir(), "plan.json")
	if err := os.WriteFile(plan, []byte(fmt.Sprintf(`{"version":1,"partitions":[{"topic":%q,"partition":0,"replicas":[1],"log_dirs":[%q]}]}`, s.topic, s.from)), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, out := runShoal(t, nil, "--bootstrap-server", s.n.Addr(), "topic", "reassign", "--execute", "--plan", plan, "--timeout", "13s"); code != 0 {
		t.Fatalf("shoal topic reassign --execute with log_dirs: exit %d: %s", code, out)
	}
	s.checkOneCopy(t, s.from)

	// The producer kept going through the moves and after them.
	after := s.acks.count()
	waitFor(t, opTimeout, "records acknowledged after the move", func() (bool, string) {
		return s.acks.count() >= after+500, fmt.Sprint(s.acks.count())
	})
	s.stopLoad()
	checkAcked(t, s.c, s.topic, s.acks)
	if !strings.Contains(s.n.Output(), "moved partition to another log directory") {
		t.Error("no log line for the finished move")
	}
}

// TestMovePartitionCrash kills the node (SIGKILL from a crash point)
// during a move under an acks=all producer: while the future replica is
// being copied, and just after the swap committed (the new dir renamed
// into place, the old one not yet removed). After a restart the partition
// is in exactly one dir (the old one before the commit, the new one
// after), nothing of the move is left, and every acknowledged record is
// there.
func TestMovePartitionCrash(t *testing.T) {
	for _, tc := range []struct {
		point string
		moved bool
	}{
		{log.CrashMoveCopying, false},
		{log.CrashMoveRenamed, true},
	} {
		t.Run(tc.point, func(t *testing.T) {
			s := startMoveSetup(t, []string{crashpoint.Env + "=" + tc.point}, nil, 5000)
			if code := s.alterLogDir(t, s.topic, s.to); code != 0 {
				t.Fatalf("AlterReplicaLogDirs: error %d", code)
			}
			waitFor(t, opTimeout, "the node to crash at "+tc.point, func() (bool, string) {
				return !s.n.Alive(), "still running"
			})
			if !strings.Contains(s.n.Output(), "crashpoint: "+tc.point+" reached") {
				t.Fatalf("the node died, but not at %s", tc.point)
			}
			s.n.Kill9() // reap the process
			s.n.opts.env = nil
			s.n.Restart()
			want := s.from
			if tc.moved {
				want = s.to
			}
			s.checkOneCopy(t, want)
			before := s.acks.count()
			waitFor(t, opTimeout, "records acknowledged after the restart", func() (bool, string) {
				return s.acks.count() >= before+1000, fmt.Sprint(s.acks.count())
			})
			s.stopLoad()
			checkAcked(t, s.c, s.topic, s.acks)
		})
	}
}
