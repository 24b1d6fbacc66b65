package integration

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoalmq/shoal/internal/syncbuf"
	"github.com/shoalmq/shoal/internal/testports"
)

// clusterSettings make failure detection fast enough for tests: a dead
// broker is fenced after 4s, a stuck follower leaves the ISR after 5s.
var clusterSettings = []string{
	"broker.session.timeout.ms=4000",
	"broker.heartbeat.interval.ms=300",
	"replica.lag.time.max.ms=5000",
	"replica.fetch.wait.max.ms=200",
	"offsets.topic.num.partitions=3",
	"share.coordinator.state.topic.num.partitions=3",
	"group.initial.rebalance.delay.ms=0",
}

// cluster is several shoal processes forming one quorum: every node has
// the broker and controller roles.
type cluster struct {
	t     *testing.T
	nodes []*node
}

// unstartedNodes makes n nodes, each with its own data directory and free
// client, controller and admin ports, none of them running yet.
func unstartedNodes(t *testing.T, n int) []*node {
	ports := distinctPorts(t, 3*n)
	nodes := make([]*node, n)
	for i := range nodes {
		nodes[i] = &node{
			t:          t,
			dataDir:    t.TempDir(),
			clientPort: ports[3*i],
			ctrlPort:   ports[3*i+1],
			adminAddr:  net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[3*i+2])),
			output:     &syncbuf.Buffer{},
		}
	}
	return nodes
}

// startCluster starts n nodes (ids 1..n) with a common voter set and waits
// until every one serves metadata listing all n brokers. set are extra
// --set flags for every node.
func startCluster(t *testing.T, n int, set ...string) *cluster {
	t.Helper()
	return startClusterWith(t, n, nodeOpts{set: set})
}

// startClusterWith starts a cluster as startCluster does, every node with
// base's settings (set, configFile, clientListener, clientOpts and
// beforeFirstStart, which may add settings of its node's own).
func startClusterWith(t *testing.T, n int, base nodeOpts) *cluster {
	t.Helper()
	c := &cluster{t: t, nodes: unstartedNodes(t, n)}
	var voters []string
	for i, nd := range c.nodes {
		voters = append(voters, fmt.Sprintf("%d@127.0.0.1:%d", i+1, nd.ctrlPort))
	}
	for i, nd := range c.nodes {
		opts := base
		opts.set = append([]string{
			"node.id=" + strconv.Itoa(i+1),
			"controller.quorum.voters=" + strings.Join(voters, ","),
		}, append(slices.Clone(clusterSettings), base.set...)...)
		nd.opts = opts
		if opts.beforeFirstStart != nil {
			opts.beforeFirstStart(nd)
		}
		nd.writeConfig(strings.Join(nd.listenerSettings(), "\n")+"\n"+base.configFile, "broker,controller")
	}
	c.launchAndWait(c.nodes, c.nodes)
	return c
}

// writeConfig writes props to the node's properties file, and has the
// node killed when the test ends and its output (roles in the heading)
// logged if the test failed.
func (n *node) writeConfig(props, roles string) {
	t := n.t
	n.configPath = filepath.Join(t.TempDir(), "server.properties")
	if err := os.WriteFile(n.configPath, []byte(props), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		n.kill()
		if t.Failed() {
			t.Logf("shoal output (node %d, %s, on %s):\n%s", n.id(), roles, n.Addr(), n.output.String())
		}
	})
}

// addBroker starts a broker-only node (process.roles=broker) with the next
// node id and the first node's settings, set added, into the running
// cluster: it joins the metadata quorum as a learner and registers, as a
// machine added to a cluster does. It waits until every running broker
// lists it.
func (c *cluster) addBroker(set ...string) *node {
	c.t.Helper()
	first := c.nodes[0]
	nd := unstartedNodes(c.t, 1)[0]
	id := len(c.nodes) + 1
	nd.opts = nodeOpts{clientListener: first.opts.clientListener, clientOpts: first.opts.clientOpts,
		set: []string{"node.id=" + strconv.Itoa(id), "process.roles=broker"}}
	for _, kv := range first.opts.set {
		if !strings.HasPrefix(kv, "node.id=") {
			nd.opts.set = append(nd.opts.set, kv)
		}
	}
	nd.opts.set = append(nd.opts.set, set...)
	listener := nd.opts.clientListener
	if listener == "" {
		listener = "PLAINTEXT"
	}
	// A broker-only node has no controller listener, as in Kafka.
	nd.writeConfig("listeners="+listener+"://"+nd.Addr()+"\n"+first.opts.configFile, "broker")
	c.nodes = append(c.nodes, nd)
	nd.waitReady(nd.launch())
	c.waitBrokers(c.alive()...)
	return nd
}

// launchAndWait launches every node of all at once (a cluster node cannot
// serve before a quorum of its peers runs), then waits until each of
// brokers serves and lists all of brokers.
func (c *cluster) launchAndWait(all, brokers []*node) {
	for _, nd := range all {
		nd.launch()
	}
	for _, nd := range brokers {
		nd.mu.Lock()
		exited := nd.exited
		nd.mu.Unlock()
		nd.waitReady(exited)
	}
	c.waitBrokers(brokers...)
}

// distinctPorts returns k free ports, all different.
func distinctPorts(t *testing.T, k int) []int {
	t.Helper()
	ports, err := testports.Pick(k)
	if err != nil {
		t.Fatal(err)
	}
	return ports
}

// id is the node's node.id.
func (n *node) id() int32 {
	for _, kv := range n.opts.set {
		if v, ok := strings.CutPrefix(kv, "node.id="); ok {
			id, _ := strconv.Atoi(v)
			return int32(id)
		}
	}
	return 1
}

// node returns the node with the given id.
func (c *cluster) node(id int32) *node { return c.nodes[id-1] }

// alive returns the running nodes.
func (c *cluster) alive() []*node {
	var out []*node
	for _, n := range c.nodes {
		if n.Alive() {
			out = append(out, n)
		}
	}
	return out
}

// Client returns a kgo client seeded with every running node.
func (c *cluster) Client(t *testing.T, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	var seeds []string
	for _, n := range c.nodes {
		seeds = append(seeds, n.Addr())
	}
	return clientWith(t, []kgo.Opt{kgo.SeedBrokers(seeds...), kgo.MetadataMinAge(100 * time.Millisecond), kgo.DialTimeout(time.Second)},
		c.nodes[0].opts.clientOpts, opts...)
}

// adminOn returns an admin client that talks only to n.
func adminOn(t *testing.T, n *node) *kadm.Client {
	t.Helper()
	return kadm.NewClient(clientWith(t,
		[]kgo.Opt{kgo.SeedBrokers(n.Addr()), kgo.MetadataMinAge(100 * time.Millisecond), kgo.DialTimeout(time.Second), kgo.RetryTimeout(2 * time.Second)},
		n.opts.clientOpts))
}

// waitBrokers waits until every node in want lists exactly the nodes of
// want as its (unfenced) brokers.
func (c *cluster) waitBrokers(want ...*node) {
	c.t.Helper()
	var ids []int32
	for _, n := range want {
		ids = append(ids, n.id())
	}
	slices.Sort(ids)
	for _, n := range want {
		waitFor(c.t, startTimeout, fmt.Sprintf("node %d to list brokers %v", n.id(), ids), func() (bool, string) {
			m, err := metadataOn(c.t, n)
			if err != nil {
				return false, err.Error()
			}
			var got []int32
			for _, b := range m.Brokers {
				got = append(got, b.NodeID)
			}
			slices.Sort(got)
			return slices.Equal(got, ids) && m.ControllerID >= 0, fmt.Sprintf("brokers %v, controller %d", got, m.ControllerID)
		})
	}
}

// partitionState is one partition as a node's metadata reports it.
type partitionState struct {
	leader   int32
	epoch    int32
	replicas []int32
	isr      []int32
}

// partitionOn reads a partition's metadata from node n.
func partitionOn(t *testing.T, adm *kadm.Client, topic string, p int32) (partitionState, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	m, err := adm.Metadata(ctx, topic)
	if err != nil {
		return partitionState{}, err
	}
	td, ok := m.Topics[topic]
	if !ok || td.Err != nil {
		return partitionState{}, fmt.Errorf("topic %s: %v", topic, td.Err)
	}
	pd, ok := td.Partitions[p]
	if !ok {
		return partitionState{}, fmt.Errorf("no partition %d", p)
	}
	return partitionState{leader: pd.Leader, epoch: pd.LeaderEpoch, replicas: pd.Replicas, isr: pd.ISR}, nil
}

// waitPartition waits until the partition's metadata on node n satisfies
// cond and returns it.
func (c *cluster) waitPartition(n *node, topic string, p int32, what string, cond func(partitionState) bool) partitionState {
	c.t.Helper()
	adm := adminOn(c.t, n)
	var st partitionState
	waitFor(c.t, 40*time.Second, what, func() (bool, string) {
		var err error
		st, err = partitionOn(c.t, adm, topic, p)
		if err != nil {
			return false, err.Error()
		}
		return cond(st), fmt.Sprintf("%+v", st)
	})
	return st
}

// createReplicated creates a topic through adm and waits until the first
// node sees every partition with a full ISR of rf replicas.
func (c *cluster) createReplicated(adm *kadm.Client, topic string, partitions int32, rf int16, configs map[string]*string) {
	c.t.Helper()
	createTopicRF(c.t, adm, topic, partitions, rf, configs)
	for p := int32(0); p < partitions; p++ {
		c.waitPartition(c.nodes[0], topic, p, "a full ISR", func(s partitionState) bool { return len(s.isr) == int(rf) })
	}
}

// createLedPartition creates topic with one partition on three replicas and
// returns its state once the first node sees a leader and a full ISR.
func (c *cluster) createLedPartition(topic string, configs map[string]*string) partitionState {
	c.t.Helper()
	createTopicRF(c.t, kadm.NewClient(c.Client(c.t)), topic, 1, 3, configs)
	return c.waitPartition(c.nodes[0], topic, 0, "a full ISR", func(s partitionState) bool { return len(s.isr) == 3 && s.leader > 0 })
}

// partitionLog returns the concatenated segment data of a partition in a
// node's data directory.
func (n *node) partitionLog(topic string, p int32) ([]byte, error) {
	dir := filepath.Join(n.dataDir, "data", fmt.Sprintf("%s-%d", topic, p))
	segs, err := filepath.Glob(filepath.Join(dir, "*.log"))
	if err != nil {
		return nil, err
	}
	slices.Sort(segs)
	var all []byte
	for _, s := range segs {
		b, err := os.ReadFile(s)
		if err != nil {
			return nil, err
		}
		all = append(all, b...)
	}
	return all, nil
}

// waitIdenticalLogs waits until the partition's segment bytes are the same
// on every given node (followers catch up asynchronously).
func waitIdenticalLogs(t *testing.T, topic string, p int32, nodes ...*node) {
	t.Helper()
	waitFor(t, 40*time.Second, fmt.Sprintf("identical replicas of %s-%d", topic, p), func() (bool, string) {
		var first []byte
		var sizes []string
		same := true
		for i, n := range nodes {
			b, err := n.partitionLog(topic, p)
			if err != nil {
				return false, err.Error()
			}
			sizes = append(sizes, fmt.Sprintf("node %d: %d bytes", n.id(), len(b)))
			if i == 0 {
				first = b
			} else if !bytes.Equal(first, b) {
				same = false
			}
		}
		return same && len(first) > 0, strings.Join(sizes, ", ")
	})
}

// clusterAcks records the values a producer got acknowledgements for, per
// partition, in acknowledgement order.
type clusterAcks struct {
	mu    sync.Mutex
	acked map[int32][]string
}

func newClusterAcks() *clusterAcks { return &clusterAcks{acked: map[int32][]string{}} }

// startClusterLoad runs a clusterProducer on producer until stop is called
// (at the latest when the test ends) and waits until it has at least n
// acknowledged records. stop waits for the producer; calling it again does
// nothing.
func startClusterLoad(t *testing.T, producer *kgo.Client, n int, what string) (acks *clusterAcks, stop func()) {
	t.Helper()
	acks = newClusterAcks()
	stopCh := make(chan struct{})
	wait := clusterProducer(producer, acks, stopCh)
	var once sync.Once
	stop = func() { once.Do(func() { close(stopCh); wait() }) }
	t.Cleanup(stop)
	waitFor(t, opTimeout, "records acknowledged "+what, func() (bool, string) {
		return acks.count() >= n, fmt.Sprint(acks.count())
	})
	return acks, stop
}

func (a *clusterAcks) add(p int32, v string) {
	a.mu.Lock()
	a.acked[p] = append(a.acked[p], v)
	a.mu.Unlock()
}

func (a *clusterAcks) count() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := 0
	for _, vs := range a.acked {
		n += len(vs)
	}
	return n
}

// checkAcked reads every partition of topic from the start to its end
// and checks that every acknowledged value is there exactly once, in the
// order it was acknowledged, and that no value appears twice.
func checkAcked(t *testing.T, c *cluster, topic string, acks *clusterAcks) {
	t.Helper()
	got := map[int32][]string{}
	for p, recs := range readPartitions(t, c, topic) {
		for i, r := range recs {
			if r.Offset != int64(i) {
				t.Errorf("partition %d: offset %d at position %d (gap or repeat)", p, r.Offset, i)
			}
			got[p] = append(got[p], string(r.Value))
		}
	}
	acks.mu.Lock()
	defer acks.mu.Unlock()
	for p, vs := range acks.acked {
		pos := map[string]int{}
		for i, v := range got[p] {
			if _, dup := pos[v]; dup {
				t.Errorf("partition %d: value %q stored twice", p, v)
			}
			pos[v] = i
		}
		last := -1
		for _, v := range vs {
			i, ok := pos[v]
			if !ok {
				t.Errorf("partition %d: acknowledged value %q is missing", p, v)
				continue
			}
			if i <= last {
				t.Errorf("partition %d: acknowledged value %q out of order", p, v)
			}
			last = i
		}
	}
}

// readPartitions reads every partition of topic from the start to its end
// offset (as of the call).
func readPartitions(t *testing.T, c *cluster, topic string) map[int32][]*kgo.Record {
	t.Helper()
	cl := c.Client(t, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(200*time.Millisecond))
	want := waitEndOffsets(t, kadm.NewClient(cl), topic)
	got := map[int32][]*kgo.Record{}
	for p := range want {
		got[p] = nil
	}
	done := func() bool {
		for p, end := range want {
			if n := len(got[p]); n > 0 && got[p][n-1].Offset+1 >= end || n == 0 && end == 0 {
				continue
			}
			return false
		}
		return true
	}
	ctx := ctxT(t, 60*time.Second)
	for !done() {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			have := map[int32]int{}
			for p, rs := range got {
				have[p] = len(rs)
			}
			t.Fatalf("reading %s back: timed out (have %v records, want end offsets %v)", topic, have, want)
		}
		fs.EachRecord(func(rec *kgo.Record) {
			if rec.Offset < want[rec.Partition] {
				got[rec.Partition] = append(got[rec.Partition], rec)
			}
		})
	}
	return got
}

// controllerOn asks node n itself (not whichever broker a client picks)
// which node is the active controller.
func controllerOn(t *testing.T, n *node) (int32, error) {
	m, err := metadataOn(t, n)
	if err != nil {
		return -1, err
	}
	return m.ControllerID, nil
}

// metadataOn asks node n itself for the brokers and the controller. It
// sends a Metadata request on a fresh connection rather than using
// kadm.BrokerMetadata: that answers from the client's cached broker list,
// which a client refreshes only every metadata.max.age.ms, so a client
// that first asked before the last broker registered keeps missing it.
func metadataOn(t *testing.T, n *node) (*kmsg.MetadataResponse, error) {
	return metadataAt(t, n.Addr(), n.opts.clientOpts...)
}

// metadataAt is metadataOn for any broker address.
func metadataAt(t *testing.T, addr string, opts ...kgo.Opt) (*kmsg.MetadataResponse, error) {
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr), kgo.DialTimeout(time.Second)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	req := kmsg.NewPtrMetadataRequest()
	req.Topics = []kmsg.MetadataRequestTopic{}
	resp, err := cl.SeedBrokers()[0].Request(ctx, req)
	if err != nil {
		return nil, err
	}
	return resp.(*kmsg.MetadataResponse), nil
}
