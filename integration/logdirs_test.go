package integration

import (
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// mountSmallDisk mounts a tmpfs of size bytes, unmounted when the test ends
// (after the nodes, whose cleanups are registered later, are gone). A real
// full file system is what this tests; it is skipped only where mounting
// is refused (not root, no CAP_SYS_ADMIN).
func mountSmallDisk(t *testing.T, size int) string {
	t.Helper()
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%d", size), "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("a small disk to fill needs mount -t tmpfs, which was refused: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			exec.Command("umount", "-l", dir).Run()
			t.Logf("umount %s: %v: %s (detached lazily)", dir, err, out)
		}
	})
	return dir
}

// TestFullLogDirGoesOffline fills one of node 1's two log dirs (a small
// tmpfs) until ENOSPC in a three-node cluster. The producer gets
// KAFKA_STORAGE_ERROR for what was not written; the dir goes offline
// (DescribeLogDirs) and the controller moves leadership of its partitions
// to the other replicas and out of node 1's hands; node 1 keeps leading
// and serving the partitions in its other dir. Once the space is freed and
// node 1 restarted, it catches up, and every acknowledged record is
// readable from it.
func TestFullLogDirGoesOffline(t *testing.T) {
	const diskSize = 2 << 20
	spill := mountSmallDisk(t, diskSize)
	filler := filepath.Join(spill, "filler")
	if err := os.WriteFile(filler, make([]byte, diskSize-640<<10), 0o644); err != nil {
		t.Fatal(err)
	}
	c := startClusterWith(t, 3, nodeOpts{beforeFirstStart: func(n *node) {
		if n.id() == 1 {
			n.opts.set = append(n.opts.set, "log.dirs="+filepath.Join(n.dataDir, "data")+","+spill)
		}
	}})
	n1 := c.node(1)
	// Node 1's report must cross the wire (AssignReplicasToDirs to the
	// active controller), so node 1 must not be the controller itself.
	if id, err := controllerOn(t, n1); err != nil || id == 1 {
		n1.Stop()
		n1.Restart()
		waitFor(t, opTimeout, "another node as the active controller", func() (bool, string) {
			id, err := controllerOn(t, n1)
			return err == nil && id > 1, fmt.Sprintf("controller %d, %v", id, err)
		})
	}
	cl := c.Client(t)
	topic := topicName(t, "disk")

	// Four partitions, all led by node 1, spread over its two dirs.
	create := kmsg.NewPtrCreateTopicsRequest()
	ct := kmsg.NewCreateTopicsRequestTopic()
	ct.Topic, ct.NumPartitions, ct.ReplicationFactor = topic, -1, -1
	for p := range int32(4) {
		a := kmsg.NewCreateTopicsRequestTopicReplicaAssignment()
		a.Partition, a.Replicas = p, []int32{1, 2, 3}
		ct.ReplicaAssignment = append(ct.ReplicaAssignment, a)
	}
	create.Topics = append(create.Topics, ct)
	create.TimeoutMillis = 10000
	resp, err := create.RequestWith(ctxT(t, 15*time.Second), cl)
	if err != nil || resp.Topics[0].ErrorCode != 0 {
		t.Fatalf("create topic: %v %+v", err, resp)
	}
	for p := range int32(4) {
		c.waitPartition(n1, topic, p, "node 1 leading a full ISR", func(s partitionState) bool { return s.leader == 1 && len(s.isr) == 3 })
	}
	// The metadata lists a new partition's full ISR before node 1 has
	// created its log, which it does once the topic is committed.
	var dirs logDirs
	waitFor(t, opTimeout, "node 1's logs of the four partitions", func() (bool, string) {
		dirs = describeLogDirs(t, cl, n1)
		for p := range int32(4) {
			if dirs.dirOf(topic, p) == "" {
				return false, fmt.Sprintf("partition %d in no dir: %+v", p, dirs)
			}
		}
		return true, ""
	})
	var onSpill, onData []int32
	for p := range int32(4) {
		if d := dirs.dirOf(topic, p); d == filepath.Clean(spill) {
			onSpill = append(onSpill, p)
		} else if d != "" {
			onData = append(onData, p)
		}
	}
	if len(onSpill) == 0 || len(onData) == 0 {
		t.Fatalf("partitions not spread over both dirs: spill %v, data %v (%+v)", onSpill, onData, dirs)
	}
	full, healthy := onSpill[0], onData[0]

	// Fill the small disk through one partition. Retries are off so the
	// failure reaches the producer instead of being retried elsewhere.
	acks := newClusterAcks()
	strict := c.Client(t, kgo.RequiredAcks(kgo.AllISRAcks()), kgo.DisableIdempotentWrite(), kgo.RecordRetries(0),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerBatchCompression(kgo.NoCompression()))
	noise := make([]byte, 16<<10)
	var failure error
	for i := 0; i < 200 && failure == nil; i++ {
		rand.Read(noise) // incompressible, whatever the codec
		v := fmt.Sprintf("%d-%x", i, noise)
		failure = strict.ProduceSync(ctxT(t, 10*time.Second), &kgo.Record{Topic: topic, Partition: full, Value: []byte(v)}).FirstErr()
		if failure == nil {
			acks.add(full, v)
		}
	}
	if !errors.Is(failure, kerr.KafkaStorageError) {
		t.Fatalf("filling the disk ended with %v, want KAFKA_STORAGE_ERROR", failure)
	}
	t.Logf("%d records acknowledged before the disk filled", acks.count())

	// Leadership of every partition in the failed dir moves away, and
	// node 1 leaves their ISRs; node 1 keeps leading its other dir's.
	for _, p := range onSpill {
		c.waitPartition(c.node(2), topic, p, "leadership moved off the offline dir", func(s partitionState) bool {
			return s.leader > 1 && !slices.Contains(s.isr, 1)
		})
	}
	if st := c.waitPartition(c.node(2), topic, healthy, "metadata", func(partitionState) bool { return true }); st.leader != 1 || !slices.Contains(st.isr, 1) {
		t.Fatalf("partition %d in node 1's healthy dir changed: %+v", healthy, st)
	}
	waitFor(t, 10*time.Second, "the operator's log line", func() (bool, string) {
		return strings.Contains(n1.Output(), "log directory "+filepath.Clean(spill)+" is offline"), ""
	})
	dirs = describeLogDirs(t, cl, n1)
	if code := dirs.errs[filepath.Clean(spill)]; code != kerr.KafkaStorageError.Code {
		t.Fatalf("DescribeLogDirs error of the offline dir: %d, want KAFKA_STORAGE_ERROR", code)
	}
	if dirs.dirOf(topic, healthy) == "" {
		t.Fatalf("DescribeLogDirs lost partition %d of the healthy dir", healthy)
	}

	// Producing goes on: to the moved partition through its new leader,
	// to node 1's healthy partition through node 1.
	prod := c.Client(t, kgo.RequiredAcks(kgo.AllISRAcks()), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	for i := range 20 {
		for _, p := range []int32{full, healthy} {
			v := fmt.Sprintf("after-%d-%d", p, i)
			if err := prod.ProduceSync(ctxT(t, 10*time.Second), &kgo.Record{Topic: topic, Partition: p, Value: []byte(v)}).FirstErr(); err != nil {
				t.Fatalf("produce to partition %d after the dir failed: %v", p, err)
			}
			acks.add(p, v)
		}
	}
	healthyRecs := readPartitions(t, c, topic)[healthy]
	if len(healthyRecs) != 20 {
		t.Fatalf("fetched %d records of the healthy partition, want 20", len(healthyRecs))
	}

	// Node 1 does not fetch for its offline replicas, so none of them
	// crept back into an ISR meanwhile (the one no record was produced to
	// since would have, had it kept fetching).
	adm := kadm.NewClient(cl)
	for _, p := range onSpill {
		if st, err := partitionOn(t, adm, topic, p); err != nil || slices.Contains(st.isr, 1) {
			t.Fatalf("offline replica of partition %d back in the ISR: %+v %v", p, st, err)
		}
	}

	// Free the space and restart node 1: it recovers the dir, catches up
	// and rejoins the ISRs; led by node 1 again, every acknowledged
	// record is read from it.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(n1.output, "----- SIGTERM\n")
	if err := n1.signal(syscall.SIGTERM, stopTimeout); err != nil {
		t.Logf("node 1 exited with %v (its offline dir could not close cleanly)", err)
	}
	n1.Restart()
	for _, p := range onSpill {
		c.waitPartition(c.node(2), topic, p, "node 1 back in the ISR", func(s partitionState) bool { return slices.Contains(s.isr, 1) })
	}
	waitFor(t, 20*time.Second, "node 1 leading every partition again", func() (bool, string) {
		if _, err := adm.ElectLeaders(ctxT(t, 5*time.Second), kadm.ElectPreferredReplica, kadm.TopicsSet{topic: {0: {}, 1: {}, 2: {}, 3: {}}}); err != nil {
			return false, err.Error()
		}
		for p := range int32(4) {
			if st, err := partitionOn(t, adm, topic, p); err != nil || st.leader != 1 {
				return false, fmt.Sprintf("partition %d: %+v %v", p, st, err)
			}
		}
		return true, ""
	})
	checkAcked(t, c, topic, acks)
}

// logDirs is one node's DescribeLogDirs answer.
type logDirs struct {
	errs    map[string]int16              // dir -> error code
	parts   map[string]map[string][]int32 // dir -> topic -> partitions (current replicas)
	futures map[string]map[string][]int32 // dir -> topic -> partitions (IsFuture)
}

func (d logDirs) dirOf(topic string, p int32) string {
	for dir, ts := range d.parts {
		if slices.Contains(ts[topic], p) {
			return dir
		}
	}
	return ""
}

// describeLogDirs asks node n itself for its log dirs.
func describeLogDirs(t *testing.T, cl *kgo.Client, n *node) logDirs {
	t.Helper()
	req := kmsg.NewPtrDescribeLogDirsRequest()
	resp, err := cl.Broker(int(n.id())).Request(ctxT(t, 5*time.Second), req)
	if err != nil {
		t.Fatalf("DescribeLogDirs on node %d: %v", n.id(), err)
	}
	out := logDirs{errs: map[string]int16{}, parts: map[string]map[string][]int32{}, futures: map[string]map[string][]int32{}}
	for _, d := range resp.(*kmsg.DescribeLogDirsResponse).Dirs {
		dir := filepath.Clean(d.Dir)
		out.errs[dir] = d.ErrorCode
		out.parts[dir] = map[string][]int32{}
		out.futures[dir] = map[string][]int32{}
		for _, tp := range d.Topics {
			for _, p := range tp.Partitions {
				if p.IsFuture {
					out.futures[dir][tp.Topic] = append(out.futures[dir][tp.Topic], p.Partition)
				} else {
					out.parts[dir][tp.Topic] = append(out.parts[dir][tp.Topic], p.Partition)
				}
			}
		}
	}
	return out
}
