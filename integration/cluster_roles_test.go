package integration

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// rolesCluster is a cluster whose nodes have different process.roles: the
// voters (ids 1..len(voters)) and the broker-only nodes after them.
type rolesCluster struct {
	*cluster // the nodes with the broker role, for clients
	all      []*node
	voters   []*node
}

// startRolesCluster starts voters nodes with voterRoles ("broker,controller"
// or "controller") and brokers broker-only nodes, and waits until every
// broker lists all of them. A controller-only node has only its controller
// listener; a broker-only node only its client listener, as in Kafka.
func startRolesCluster(t *testing.T, voters int, voterRoles string, brokers int) *rolesCluster {
	t.Helper()
	return startRolesClusterWith(t, voters, voterRoles, brokers, nodeOpts{})
}

// startRolesClusterWith is startRolesCluster with every node given base's
// configFile, clientListener and clientOpts.
func startRolesClusterWith(t *testing.T, voters int, voterRoles string, brokers int, base nodeOpts) *rolesCluster {
	t.Helper()
	total := voters + brokers
	rc := &rolesCluster{cluster: &cluster{t: t}, all: unstartedNodes(t, total)}
	var quorum []string
	for i, nd := range rc.all[:voters] {
		quorum = append(quorum, fmt.Sprintf("%d@127.0.0.1:%d", i+1, nd.ctrlPort))
	}
	clientListener := base.clientListener
	if clientListener == "" {
		clientListener = "PLAINTEXT"
	}
	for i, nd := range rc.all {
		roles := voterRoles
		if i >= voters {
			roles = "broker"
		}
		nd.opts = nodeOpts{clientListener: clientListener, clientOpts: base.clientOpts, set: append([]string{
			"node.id=" + strconv.Itoa(i+1),
			"process.roles=" + roles,
			"controller.quorum.voters=" + strings.Join(quorum, ","),
		}, clusterSettings...)}
		listeners := nd.listenerSettings()[0]
		if i >= voters {
			listeners = "listeners=" + clientListener + "://" + nd.Addr()
		} else if voterRoles == "controller" {
			listeners = "listeners=CONTROLLER://127.0.0.1:" + strconv.Itoa(nd.ctrlPort)
		}
		nd.writeConfig(listeners+"\n"+base.configFile, roles)
		if i < voters {
			rc.voters = append(rc.voters, nd)
		}
		if i >= voters || voterRoles != "controller" {
			rc.nodes = append(rc.nodes, nd)
		}
	}
	rc.launchAndWait(rc.all, rc.nodes)
	return rc
}

// byID returns the node with the given id.
func (rc *rolesCluster) byID(id int32) *node { return rc.all[id-1] }

// describeQuorum asks broker n about the metadata quorum.
func describeQuorum(t *testing.T, n *node) (*kmsg.DescribeQuorumResponse, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(n.Addr()), kgo.DialTimeout(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	req := kmsg.NewPtrDescribeQuorumRequest()
	rt := kmsg.NewDescribeQuorumRequestTopic()
	rt.Topic = "__cluster_metadata"
	rt.Partitions = []kmsg.DescribeQuorumRequestTopicPartition{kmsg.NewDescribeQuorumRequestTopicPartition()}
	req.Topics = append(req.Topics, rt)
	resp, err := cl.SeedBrokers()[0].Request(ctxT(t, 2*time.Second), req)
	if err != nil {
		return nil, err
	}
	r := resp.(*kmsg.DescribeQuorumResponse)
	if len(r.Topics) != 1 || len(r.Topics[0].Partitions) != 1 {
		return nil, fmt.Errorf("describe quorum: %+v", r)
	}
	return r, nil
}

// waitQuorum waits until node n reports the metadata quorum's voters and
// observers (learners) as the given ids, in ascending order.
func waitQuorum(t *testing.T, n *node, voters, observers []int32) {
	t.Helper()
	waitFor(t, opTimeout, fmt.Sprintf("voters %v and learners %v in the quorum", voters, observers), func() (bool, string) {
		r, err := describeQuorum(t, n)
		if err != nil {
			return false, err.Error()
		}
		p := r.Topics[0].Partitions[0]
		v, o := replicaIDs(p.CurrentVoters), replicaIDs(p.Observers)
		return slices.Equal(v, voters) && slices.Equal(o, observers), fmt.Sprintf("voters %v, observers %v", v, o)
	})
}

func replicaIDs(rs []kmsg.DescribeQuorumResponseTopicPartitionReplicaState) []int32 {
	var out []int32
	for _, r := range rs {
		out = append(out, r.ReplicaID)
	}
	slices.Sort(out)
	return out
}

// createTopicOn creates a topic by asking broker n itself (which relays to
// the active controller), with an explicit assignment when given.
func createTopicOn(t *testing.T, n *node, topic string, partitions int32, rf int16, assign [][]int32) {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(n.Addr()), kgo.DialTimeout(time.Second)}, n.opts.clientOpts...)...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	req := kmsg.NewPtrCreateTopicsRequest()
	req.TimeoutMillis = 20000
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = topic, partitions, rf
	if assign != nil {
		rt.NumPartitions, rt.ReplicationFactor = -1, -1
		for p, replicas := range assign {
			a := kmsg.NewCreateTopicsRequestTopicReplicaAssignment()
			a.Partition, a.Replicas = int32(p), replicas
			rt.ReplicaAssignment = append(rt.ReplicaAssignment, a)
		}
	}
	c := kmsg.NewCreateTopicsRequestTopicConfig()
	c.Name, c.Value = "min.insync.replicas", strp("2")
	rt.Configs = append(rt.Configs, c)
	req.Topics = append(req.Topics, rt)
	waitFor(t, opTimeout, "topic "+topic+" created through node "+strconv.Itoa(int(n.id())), func() (bool, string) {
		resp, err := cl.SeedBrokers()[0].Request(ctxT(t, 10*time.Second), req)
		if err != nil {
			return false, err.Error()
		}
		r := resp.(*kmsg.CreateTopicsResponse)
		if len(r.Topics) != 1 {
			return false, fmt.Sprintf("%+v", r)
		}
		code := r.Topics[0].ErrorCode
		return code == 0 || code == 36, fmt.Sprintf("error code %d", code) // 36: TOPIC_ALREADY_EXISTS (a retry)
	})
}

// produceThrough writes count records to each partition through a client
// seeded with seed, with acks=all, and returns the values written.
func produceThrough(t *testing.T, seed *node, topic string, partitions int32, count int, tag string) int {
	t.Helper()
	cl := seed.Client(t, kgo.RequiredAcks(kgo.AllISRAcks()), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	var recs []*kgo.Record
	for p := range partitions {
		for i := range count {
			recs = append(recs, &kgo.Record{Topic: topic, Partition: p, Value: fmt.Appendf(nil, "%s-%d-%d", tag, p, i)})
		}
	}
	if err := cl.ProduceSync(ctxT(t, 30*time.Second), recs...).FirstErr(); err != nil {
		t.Fatalf("produce through node %d: %v", seed.id(), err)
	}
	return len(recs)
}

// consumeThrough reads the whole topic through a client seeded with seed
// and checks it holds exactly want records, none twice.
func consumeThrough(t *testing.T, seed *node, topic string, want int) {
	t.Helper()
	cl := seed.Client(t, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(200*time.Millisecond))
	seen := map[string]bool{}
	ctx := ctxT(t, 40*time.Second)
	for len(seen) < want {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consume through node %d: %d of %d records", seed.id(), len(seen), want)
		}
		fs.EachError(func(topic string, p int32, err error) { t.Logf("fetch %s-%d: %v", topic, p, err) })
		fs.EachRecord(func(r *kgo.Record) {
			if seen[string(r.Value)] {
				t.Errorf("record %q read twice", r.Value)
			}
			seen[string(r.Value)] = true
		})
	}
}

// Three combined nodes and one broker-only node: the broker follows the
// metadata log as a raft learner, holds and leads partitions, serves
// clients, and after kill -9 rejoins and catches up on what changed while
// it was down.
func TestClusterRolesBrokerOnly(t *testing.T) {
	rc := startRolesCluster(t, 3, "broker,controller", 1)
	b4 := rc.byID(4)

	waitQuorum(t, rc.byID(1), []int32{1, 2, 3}, []int32{4})

	// Four partitions over four brokers: broker 4 leads partition 0 and
	// follows two others.
	topic := topicName(t, "")
	assign := [][]int32{{4, 1, 2}, {1, 4, 3}, {2, 3, 4}, {3, 1, 2}}
	createTopicOn(t, b4, topic, 0, 0, assign)
	for p, replicas := range assign {
		rc.waitPartition(b4, topic, int32(p), fmt.Sprintf("partition %d led by its first replica with a full ISR", p), func(s partitionState) bool {
			return s.leader == replicas[0] && len(s.isr) == 3
		})
	}
	n := produceThrough(t, b4, topic, 4, 200, "a")
	consumeThrough(t, b4, topic, n)

	// kill -9 the broker; the cluster moves on without it.
	b4.Kill9()
	rc.waitPartition(rc.byID(1), topic, 0, "partition 0 led elsewhere", func(s partitionState) bool {
		return s.leader > 0 && s.leader != 4
	})
	n += produceThrough(t, rc.byID(1), topic, 4, 100, "b")
	later := topicName(t, "later")
	createTopicOn(t, rc.byID(2), later, 2, 3, nil)

	// It rejoins: it learns the topic created meanwhile, catches up on the
	// data and is back in every ISR it belongs to.
	b4.Restart()
	waitFor(t, opTimeout, "broker 4 to know the topic created while it was down", func() (bool, string) {
		st, err := partitionOn(t, adminOn(t, b4), later, 1)
		if err != nil {
			return false, err.Error()
		}
		return len(st.replicas) == 3, fmt.Sprintf("%+v", st)
	})
	for p, replicas := range assign {
		if !slices.Contains(replicas, 4) {
			continue
		}
		rc.waitPartition(rc.byID(1), topic, int32(p), fmt.Sprintf("broker 4 back in the ISR of partition %d", p), func(s partitionState) bool {
			return slices.Contains(s.isr, 4) && len(s.isr) == 3
		})
	}
	rc.waitBrokers(rc.nodes...)
	waitIdenticalLogs(t, topic, 0, rc.byID(1), rc.byID(2), b4)
	consumeThrough(t, b4, topic, n)
	if got := produceThrough(t, b4, later, 2, 50, "c"); got != 100 {
		t.Fatalf("produced %d", got)
	}
	consumeThrough(t, b4, later, 100)
}

// Three controller-only nodes and two broker-only nodes: the brokers hold
// every partition and reach the active controller on its controller
// listener, also after it is killed and another voter takes over.
func TestClusterRolesControllerOnly(t *testing.T) {
	rc := startRolesCluster(t, 3, "controller", 2)
	b4, b5 := rc.byID(4), rc.byID(5)

	topic := topicName(t, "")
	createTopicOn(t, b4, topic, 4, 2, nil)
	for p := range int32(4) {
		st := rc.waitPartition(b5, topic, p, fmt.Sprintf("partition %d with a full ISR", p), func(s partitionState) bool {
			return s.leader > 0 && len(s.isr) == 2
		})
		for _, r := range st.replicas {
			if r < 4 {
				t.Fatalf("partition %d placed on controller-only node %d: %+v", p, r, st)
			}
		}
	}
	n := produceThrough(t, b4, topic, 4, 100, "a")
	consumeThrough(t, b5, topic, n)

	// Kill the active controller; the brokers follow the new one.
	var ctrl int32
	waitFor(t, opTimeout, "an active controller", func() (bool, string) {
		r, err := describeQuorum(t, b4)
		if err != nil {
			return false, err.Error()
		}
		ctrl = r.Topics[0].Partitions[0].LeaderID
		return ctrl >= 1 && ctrl <= 3, fmt.Sprint(ctrl)
	})
	rc.byID(ctrl).Kill9()
	waitFor(t, opTimeout, "a new active controller", func() (bool, string) {
		r, err := describeQuorum(t, b5)
		if err != nil {
			return false, err.Error()
		}
		id := r.Topics[0].Partitions[0].LeaderID
		return id >= 1 && id <= 3 && id != ctrl, fmt.Sprint(id)
	})
	later := topicName(t, "later")
	createTopicOn(t, b5, later, 2, 2, nil)
	rc.waitPartition(b4, later, 1, "the new topic with a full ISR", func(s partitionState) bool {
		return s.leader >= 4 && len(s.isr) == 2
	})
	n += produceThrough(t, b5, topic, 4, 50, "b")
	consumeThrough(t, b4, topic, n)
}
