package integration

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// kafkaJSDir holds the KafkaJS driver and the packages it runs with
// (package.json, package-lock.json); .ci/run installs them with npm ci.
const kafkaJSDir = "testdata/kafkajs"

// kafkaJSDriver starts the KafkaJS driver against n, failing t when Node.js
// or the driver's packages are not installed.
func kafkaJSDriver(t *testing.T, n *node) *scriptDriver {
	t.Helper()
	if _, err := exec.LookPath("node"); err != nil {
		t.Fatalf("node is not installed: %v", err)
	}
	if _, err := os.Stat(kafkaJSDir + "/node_modules/kafkajs"); err != nil {
		t.Fatalf("KafkaJS is not installed (.ci/run runs npm ci --prefix integration/%s): %v", kafkaJSDir, err)
	}
	return &scriptDriver{
		name: "KafkaJS",
		argv: []string{"node", kafkaJSDir + "/driver.js"},
		skips: map[string]string{
			stepProduce + "/lz4":  "KafkaJS's lz4 codec package is a native addon",
			stepProduce + "/zstd": "KafkaJS's zstd codec package is a native addon",
		},
		n: n,
	}
}

// TestClientMatrixKafkaJS runs the client matrix with KafkaJS 2.2, the
// pure-JavaScript Node.js client, one Node process per step
// (testdata/kafkajs/driver.js). KafkaJS speaks older API versions than the
// other clients (Fetch v11, JoinGroup v5, Produce v7) and only the classic
// group protocol.
func TestClientMatrixKafkaJS(t *testing.T) {
	t.Parallel()
	n := startNode(t, matrixOpts)
	runMatrix(t, n, kafkaJSDriver(t, n))
}

// KafkaJS's transactional producer, which consumes in a group: each
// transaction writes records and commits the group's input offsets with
// them (AddOffsetsToTxn, TxnOffsetCommit), each by a new producer instance
// under the same transactional id (InitProducerId bumps the epoch). The
// committed transactions' records are read by read_committed consumers of
// both clients and the aborted one's are not; the group's offsets are those
// of the last committed transaction, never the aborted one's.
func TestKafkaJSTransactions(t *testing.T) {
	t.Parallel()
	n, adm, input, _ := startNodeWithTopic(t, txnOpts, matrixPartitions)
	output := input + "-out"
	createTopic(t, adm, output, matrixPartitions, nil)
	d := kafkaJSDriver(t, n)
	group := input + "-pipeline"

	batch := func(prefix string, count int) []mRecord {
		recs := make([]mRecord, count)
		for i := range recs {
			recs[i] = mRecord{Key: fmt.Sprintf("%s-key-%d", prefix, i), Value: fmt.Sprintf("%s-%d", prefix, i), TimestampMs: 1}
		}
		return recs
	}
	transact := func(recs []mRecord, offsets map[int32]int64, abort bool) {
		t.Helper()
		d.run(t, "transact", map[string]any{"topic": output, "input": input, "group": group, "txnId": input + "-tx",
			"records": recs, "offsets": offsets, "abort": abort}, &struct{}{})
	}
	first, aborted, second := batch("first", 40), batch("aborted", 30), batch("second", 20)
	transact(first, map[int32]int64{0: 5, 1: 7, 2: 3}, false)
	transact(aborted, map[int32]int64{0: 50, 1: 70, 2: 30}, true)
	lastOffsets := map[int32]int64{0: 9, 1: 11, 2: 4}
	transact(second, lastOffsets, false)

	var want []string
	for _, r := range append(slices.Clone(first), second...) {
		want = append(want, r.Value)
	}
	slices.Sort(want)

	// read_committed with kgo, as many records as were committed: an
	// aborted record read would stand in for a committed one.
	cl := n.Client(t, kgo.ConsumeTopics(output), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	defer cl.Close()
	var got []string
	ctx := ctxT(t, opTimeout)
	for len(got) < len(want) {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read_committed read %v before timeout, want %d records", got, len(want))
		}
		fs.EachError(func(_ string, _ int32, err error) { t.Fatalf("fetch: %v", err) })
		fs.EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
	}
	slices.Sort(got)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("kgo read_committed read %v,\nwant %v", got, want)
	}

	// read_committed with KafkaJS.
	var js []mRecord
	d.run(t, "read", map[string]any{"topic": output, "group": input + "-reader", "want": len(want)}, &js)
	got = got[:0]
	for _, r := range js {
		got = append(got, r.Value)
	}
	slices.Sort(got)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("KafkaJS read_committed read %v,\nwant %v", got, want)
	}

	if c := kadmCommitted(t, adm, group, input); fmt.Sprint(c) != fmt.Sprint(lastOffsets) {
		t.Errorf("group %s committed %v, want the last committed transaction's %v", group, c, lastOffsets)
	}
}

// kafkaJSAdminOpts are the matrix's node settings plus a small transaction
// log, with the StandardAuthorizer so that ACLs can be created: the
// PLAINTEXT listener's principal, User:ANONYMOUS, is a super user and may do
// everything.
var kafkaJSAdminOpts = nodeOpts{
	set: slices.Concat(matrixOpts.set, txnOpts.set),
	configFile: "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer\n" +
		"super.users=User:ANONYMOUS\n",
}

// The KafkaJS admin and consumer calls the client matrix does not make,
// each checked against what the broker holds, read with kadm. KafkaJS
// speaks older versions of these APIs than franz-go: Metadata v6,
// CreatePartitions v1, AlterConfigs v1 (which replaces a topic's whole
// config set), DescribeConfigs v2, ListOffsets v3, OffsetCommit v5,
// OffsetFetch v4, DeleteGroups v1, CreateAcls/DescribeAcls/DeleteAcls v1,
// Fetch v11 without fetch sessions. Where KafkaJS itself differs from the
// Java client the test holds it to what Kafka would answer KafkaJS: its
// admin's metadata requests never create topics, resetOffsets commits the
// earliest or latest marker (-2, -1) as the offset, and its admin lists
// offsets read_committed.
func TestKafkaJSAdminAndConsumerAPIs(t *testing.T) {
	t.Parallel()
	n := startNode(t, kafkaJSAdminOpts)
	adm := n.Admin(t)
	d := kafkaJSDriver(t, n)
	topic := topicName(t, "")
	createTopic(t, adm, topic, 2, map[string]*string{"retention.ms": strp("3600000")})

	// Ten records in each partition; the first three of partition 0 are
	// then deleted, so its log starts at 3.
	const perPartition = 10
	produced := map[int32][]string{}
	pcl := n.Client(t, kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	for p := range int32(2) {
		for i := range perPartition {
			v := fmt.Sprintf("p%d-%d", p, i)
			produced[p] = append(produced[p], v)
			if err := pcl.ProduceSync(ctxT(t, opTimeout), &kgo.Record{Partition: p, Value: []byte(v)}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
	const logStart0 = 3
	dr, err := adm.DeleteRecords(ctxT(t, opTimeout), kadm.Offsets{topic: {0: {Topic: topic, Partition: 0, At: logStart0}}})
	if err != nil || dr.Error() != nil {
		t.Fatalf("delete records: %v %v", err, dr.Error())
	}

	t.Run("topics", func(t *testing.T) {
		var listed []string
		d.run(t, "list_topics", map[string]any{}, &listed)
		topics, err := adm.ListTopicsWithInternal(ctxT(t, opTimeout))
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(listed)
		if want := topics.Names(); fmt.Sprint(listed) != fmt.Sprint(want) {
			t.Errorf("listTopics: %v, the broker has %v", listed, want)
		}

		type partition struct {
			Partition, Leader int32
			Replicas, Isr     []int32
		}
		var described struct {
			Partitions []partition
			Error      string
		}
		d.run(t, "topic_metadata", map[string]any{"topic": topic}, &described)
		var want []partition
		for _, p := range topics[topic].Partitions.Sorted() {
			want = append(want, partition{p.Partition, p.Leader, p.Replicas, p.ISR})
		}
		got := described.Partitions
		slices.SortFunc(got, func(a, b partition) int { return int(a.Partition - b.Partition) })
		if fmt.Sprint(got) != fmt.Sprint(want) || described.Error != "" {
			t.Errorf("fetchTopicMetadata: %v %s, the broker has %v", got, described.Error, want)
		}

		// KafkaJS's admin does not let metadata requests create topics;
		// its producer does (auto.create.topics.enable is on by default).
		auto := topic + "-auto"
		described.Partitions = nil
		d.run(t, "topic_metadata", map[string]any{"topic": auto}, &described)
		if described.Error != "UNKNOWN_TOPIC_OR_PARTITION" {
			t.Errorf("fetchTopicMetadata of missing %s answered %+v, want UNKNOWN_TOPIC_OR_PARTITION", auto, described)
		}
		if listed, err := adm.ListTopics(ctxT(t, opTimeout), auto); err != nil || !errors.Is(listed[auto].Err, kerr.UnknownTopicOrPartition) {
			t.Fatalf("after fetchTopicMetadata of missing %s the broker has %+v %v", auto, listed[auto], err)
		}
		d.produce(t, auto, "none", []mRecord{{Key: "k", Value: "v", TimestampMs: 1}})
		created, err := adm.ListTopics(ctxT(t, opTimeout), auto)
		if err != nil {
			t.Fatal(err)
		}
		if c := created[auto]; c.Err != nil || len(c.Partitions) != 1 {
			t.Errorf("producing to missing %s: the broker has %+v, want it created with 1 partition", auto, c)
		}
		if ends := endOffsets(t, adm, auto); fmt.Sprint(ends) != "map[0:1]" {
			t.Errorf("producing one record to missing %s: end offsets %v", auto, ends)
		}

		var cluster struct {
			ClusterID  string
			Controller int32
			Brokers    []struct {
				NodeID int32
				Host   string
				Port   int32
			}
		}
		d.run(t, "describe_cluster", map[string]any{}, &cluster)
		md, err := adm.BrokerMetadata(ctxT(t, opTimeout))
		if err != nil {
			t.Fatal(err)
		}
		b := md.Brokers[0]
		if cluster.ClusterID != md.Cluster || cluster.Controller != md.Controller || len(cluster.Brokers) != 1 ||
			cluster.Brokers[0].NodeID != b.NodeID || cluster.Brokers[0].Host != b.Host || cluster.Brokers[0].Port != b.Port {
			t.Errorf("describeCluster: %+v, the broker has cluster %s controller %d brokers %v", cluster, md.Cluster, md.Controller, md.Brokers)
		}
	})

	t.Run("createPartitions", func(t *testing.T) {
		for _, c := range []struct {
			count        int
			validateOnly bool
			err          string
			want         int
		}{
			{4, true, "", 2},
			{1, false, "INVALID_PARTITIONS", 2},
			{3, false, "", 3},
		} {
			var answer struct{ Error string }
			d.run(t, "create_partitions", map[string]any{"topic": topic, "count": c.count, "validateOnly": c.validateOnly}, &answer)
			topics, err := adm.ListTopics(ctxT(t, opTimeout), topic)
			if err != nil {
				t.Fatal(err)
			}
			if got := len(topics[topic].Partitions); answer.Error != c.err || got != c.want {
				t.Errorf("createPartitions to %d (validateOnly %v) answered %q and left %d partitions, want %q and %d",
					c.count, c.validateOnly, answer.Error, got, c.err, c.want)
			}
		}
	})

	t.Run("offsets", func(t *testing.T) {
		var got map[int32][2]int64
		d.run(t, "topic_offsets", map[string]any{"topic": topic}, &got)
		starts, err := adm.ListStartOffsets(ctxT(t, opTimeout), topic)
		if err != nil {
			t.Fatal(err)
		}
		ends, err := adm.ListEndOffsets(ctxT(t, opTimeout), topic)
		if err != nil {
			t.Fatal(err)
		}
		want := map[int32][2]int64{}
		ends.Each(func(o kadm.ListedOffset) { want[o.Partition] = [2]int64{starts[topic][o.Partition].Offset, o.Offset} })
		if fmt.Sprint(want) != fmt.Sprint(map[int32][2]int64{0: {logStart0, perPartition}, 1: {0, perPartition}, 2: {0, 0}}) {
			t.Fatalf("the broker's offsets are %v", want)
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("fetchTopicOffsets: %v, the broker has %v", got, want)
		}
	})

	t.Run("configs", func(t *testing.T) {
		// AlterConfigs replaces the topic's config set: retention.ms,
		// set when the topic was created, returns to its default. The
		// same call validating only changes nothing.
		alter := map[string]any{"topic": topic, "configs": map[string]string{"max.message.bytes": "2000000"}, "validateOnly": true}
		d.run(t, "alter_configs", alter, &struct{}{})
		if got := topicConfig(t, adm, topic, "retention.ms"); got.MaybeValue() != "3600000" || got.Source != kmsg.ConfigSourceDynamicTopicConfig {
			t.Errorf("after alterConfigs validating only retention.ms is %q from %v", got.MaybeValue(), got.Source)
		}
		alter["validateOnly"] = false
		d.run(t, "alter_configs", alter, &struct{}{})
		rcs, err := adm.DescribeTopicConfigs(ctxT(t, opTimeout), topic)
		if err != nil {
			t.Fatal(err)
		}
		rc, err := rcs.On(topic, nil)
		if err != nil || rc.Err != nil {
			t.Fatalf("describe %s: %v %v", topic, err, rc.Err)
		}
		configs := map[string]kadm.Config{}
		for _, c := range rc.Configs {
			configs[c.Key] = c
		}
		if c := configs["max.message.bytes"]; c.Source != kmsg.ConfigSourceDynamicTopicConfig || c.MaybeValue() != "2000000" {
			t.Errorf("after alterConfigs max.message.bytes is %q from %v", c.MaybeValue(), c.Source)
		}
		if c := configs["retention.ms"]; c.Source == kmsg.ConfigSourceDynamicTopicConfig {
			t.Errorf("after alterConfigs without retention.ms it is still the topic's %q", c.MaybeValue())
		}

		kafkaJSDescribeConfigs(t, d, "TOPIC", topic, rc.Configs)
		md, err := adm.BrokerMetadata(ctxT(t, opTimeout))
		if err != nil {
			t.Fatal(err)
		}
		brokerID := md.Brokers[0].NodeID
		brcs, err := adm.DescribeBrokerConfigs(ctxT(t, opTimeout), brokerID)
		if err != nil {
			t.Fatal(err)
		}
		brc, err := brcs.On(strconv.Itoa(int(brokerID)), nil)
		if err != nil || brc.Err != nil {
			t.Fatalf("describe broker configs: %v %v", err, brc.Err)
		}
		kafkaJSDescribeConfigs(t, d, "BROKER", brc.Name, brc.Configs)
	})

	setGroup, earliestGroup, latestGroup := topic+"-set", topic+"-earliest", topic+"-latest"
	// The group, ACL and consumer calls run side by side, each on groups
	// and resources of its own: setting offsets takes KafkaJS seconds
	// (testdata/kafkajs/driver.js's set_offsets).
	t.Run("sideBySide", func(t *testing.T) {
		t.Run("groupOffsets", func(t *testing.T) {
			t.Parallel()
			set := map[int32]int64{0: 5, 1: 7, 2: 0}
			d.run(t, "set_offsets", map[string]any{"topic": topic, "groups": []map[string]any{
				{"group": setGroup, "offsets": set},
				{"group": earliestGroup, "reset": "earliest"},
				{"group": latestGroup, "reset": "latest"},
			}}, &struct{}{})
			// resetOffsets commits the earliest (-2) or latest (-1)
			// marker; fetchOffsets with resolveOffsets turns them into
			// the log's start or end offsets and commits those.
			markers := func(m int64) map[int32]int64 { return map[int32]int64{0: m, 1: m, 2: m} }
			resolved := map[string]map[int32]int64{
				setGroup:      set,
				earliestGroup: {0: logStart0, 1: 0, 2: 0},
				latestGroup:   {0: perPartition, 1: perPartition, 2: 0},
			}
			for group, want := range map[string]map[int32]int64{setGroup: set, earliestGroup: markers(-2), latestGroup: markers(-1)} {
				if got := kadmCommitted(t, adm, group, topic); fmt.Sprint(got) != fmt.Sprint(want) {
					t.Errorf("after setOffsets or resetOffsets %s committed %v, want %v", group, got, want)
				}
			}
			var fetched map[string]map[string]map[int32]int64
			d.run(t, "fetch_offsets", map[string]any{"groups": []map[string]any{
				{"group": setGroup, "resolve": false},
				{"group": earliestGroup, "resolve": true},
				{"group": latestGroup, "resolve": true},
			}}, &fetched)
			for group, want := range resolved {
				if got := fetched[group]; len(got) != 1 || fmt.Sprint(got[topic]) != fmt.Sprint(want) {
					t.Errorf("fetchOffsets of %s: %v, want %s: %v", group, got, topic, want)
				}
				if got := kadmCommitted(t, adm, group, topic); fmt.Sprint(got) != fmt.Sprint(want) {
					t.Errorf("after fetchOffsets %s committed %v, want %v", group, got, want)
				}
			}
		})
		t.Run("acls", func(t *testing.T) {
			t.Parallel()
			kafkaJSACLs(t, d, adm, topic)
		})
		t.Run("seekPauseResume", func(t *testing.T) {
			t.Parallel()
			kafkaJSSeekPauseResume(t, d, topic, logStart0, produced)
		})
		t.Run("readUncommitted", func(t *testing.T) {
			t.Parallel()
			kafkaJSReadUncommitted(t, n, adm, d, topic+"-txn")
		})
	})

	t.Run("deleteGroups", func(t *testing.T) {
		// A group with a member is not deleted; an unknown one is not
		// found.
		busy := topic + "-busy"
		member := n.Client(t, kgo.ConsumerGroup(busy), kgo.ConsumeTopics(topic))
		waitFor(t, opTimeout, busy+" stable", func() (bool, string) {
			member.PollRecords(ctxT(t, 100*time.Millisecond), 1)
			gs, err := adm.DescribeGroups(ctxT(t, opTimeout), busy)
			if err != nil {
				return false, err.Error()
			}
			return gs[busy].State == "Stable", gs[busy].State
		})
		absent := topic + "-absent"
		var codes map[string]int16
		d.run(t, "delete_groups", map[string]any{"groups": []string{setGroup, earliestGroup, latestGroup, busy, absent}}, &codes)
		want := map[string]int16{setGroup: 0, earliestGroup: 0, latestGroup: 0, busy: kerr.NonEmptyGroup.Code, absent: kerr.GroupIDNotFound.Code}
		if fmt.Sprint(codes) != fmt.Sprint(want) {
			t.Errorf("deleteGroups answered %v, want %v", codes, want)
		}
		listed, err := adm.ListGroups(ctxT(t, opTimeout))
		if err != nil {
			t.Fatal(err)
		}
		for _, g := range []string{setGroup, earliestGroup, latestGroup, busy} {
			if _, ok := listed[g]; ok != (g == busy) {
				t.Errorf("after deleteGroups the broker lists groups %v: deleted %s %v", listed.Groups(), g, g != busy)
			}
		}
		if got := kadmCommitted(t, adm, setGroup, topic); len(got) != 0 {
			t.Errorf("deleted group %s still has offsets %v", setGroup, got)
		}
	})
}

// kafkaJSDescribeConfigs describes the resource of type typ ("TOPIC" or
// "BROKER") named name with KafkaJS and checks that it describes the
// configs kadm does, want, with their sources and synonyms.
func kafkaJSDescribeConfigs(t *testing.T, d *scriptDriver, typ, name string, want []kadm.Config) {
	t.Helper()
	type synonym struct {
		Name   string
		Value  *string
		Source int8
	}
	var described map[string]struct {
		Value     *string
		Source    int8
		Sensitive bool
		Synonyms  []synonym
	}
	d.run(t, "describe_configs", map[string]any{"type": typ, "name": name}, &described)
	if len(described) != len(want) {
		t.Errorf("describeConfigs of %s %s described %d configs, kadm %d", typ, name, len(described), len(want))
	}
	format := func(value *string, source int8, sensitive bool, synonyms []synonym) string {
		s := fmt.Sprintf("%s (source %d, sensitive %v), synonyms", ptrString(value), source, sensitive)
		for _, y := range synonyms {
			s += fmt.Sprintf(" %s=%s (source %d)", y.Name, ptrString(y.Value), y.Source)
		}
		return s
	}
	for _, c := range want {
		js, ok := described[c.Key]
		if !ok {
			t.Errorf("describeConfigs of %s %s did not describe %s", typ, name, c.Key)
			continue
		}
		var synonyms []synonym
		for _, y := range c.Synonyms {
			synonyms = append(synonyms, synonym{y.Key, y.Value, int8(y.Source)})
		}
		got, exp := format(js.Value, js.Source, js.Sensitive, js.Synonyms), format(c.Value, int8(c.Source), c.Sensitive, synonyms)
		if got != exp {
			t.Errorf("describeConfigs of %s %s: %s = %s,\nkadm: %s", typ, name, c.Key, got, exp)
		}
	}
}

func ptrString(s *string) string {
	if s == nil {
		return "null"
	}
	return *s
}

// jsACL is an ACL binding, or a filter, as the driver's ACL ops take it:
// the enums by name (TOPIC, LITERAL, READ, ALLOW; ANY in a filter), an
// empty name, principal or host matching any in a filter.
type jsACL struct{ resource, name, pattern, principal, host, op, permission string }

func (a jsACL) arg() map[string]string {
	m := map[string]string{"resourceType": a.resource, "patternType": a.pattern, "operation": a.op, "permission": a.permission}
	for k, v := range map[string]string{"resourceName": a.name, "principal": a.principal, "host": a.host} {
		if v != "" {
			m[k] = v
		}
	}
	return m
}

// line is the binding as the driver's describe_acls writes it.
func (a jsACL) line(t *testing.T) string {
	t.Helper()
	rt, err1 := kmsg.ParseACLResourceType(a.resource)
	pt, err2 := kmsg.ParseACLResourcePatternType(a.pattern)
	op, err3 := kmsg.ParseACLOperation(a.op)
	perm, err4 := kmsg.ParseACLPermissionType(a.permission)
	if err := errors.Join(err1, err2, err3, err4); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%d:%d:%s %s %s %d %d", rt, pt, a.name, a.principal, a.host, op, perm)
}

// kafkaJSACLs creates ACLs with KafkaJS, describes some and deletes some,
// checking each step against the ACLs kadm describes.
func kafkaJSACLs(t *testing.T, d *scriptDriver, adm *kadm.Client, topic string) {
	aliceTopic := jsACL{"TOPIC", topic, "LITERAL", "User:alice", "*", "READ", "ALLOW"}
	aliceGroups := jsACL{"GROUP", "app-", "PREFIXED", "User:alice", "*", "READ", "ALLOW"}
	bobTopic := jsACL{"TOPIC", topic, "LITERAL", "User:bob", "10.0.0.1", "WRITE", "DENY"}
	carolPrefix := jsACL{"TOPIC", topic[:len(topic)-3], "PREFIXED", "User:carol", "*", "DESCRIBE", "ALLOW"}
	carolAll := jsACL{"TOPIC", "*", "LITERAL", "User:carol", "*", "DESCRIBE", "ALLOW"}
	carolOther := jsACL{"TOPIC", topic + "-other", "LITERAL", "User:carol", "*", "DESCRIBE", "ALLOW"}
	lines := func(acls ...jsACL) []string {
		var ls []string
		for _, a := range acls {
			ls = append(ls, a.line(t))
		}
		slices.Sort(ls)
		return ls
	}
	checkBroker := func(step string, want ...jsACL) {
		t.Helper()
		if got, want := kadmACLs(t, adm), lines(want...); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("after %s the broker has ACLs\n%s\nwant\n%s", step, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	}
	var args []map[string]string
	for _, a := range []jsACL{aliceTopic, aliceGroups, bobTopic, carolPrefix, carolAll, carolOther} {
		args = append(args, a.arg())
	}
	d.run(t, "create_acls", map[string]any{"acls": args}, &struct{}{})
	checkBroker("createAcls", aliceTopic, aliceGroups, bobTopic, carolPrefix, carolAll, carolOther)

	// A principal's ACLs; a MATCH filter's: those applying to the topic,
	// literal, prefixed or the wildcard.
	for _, c := range []struct {
		filter jsACL
		want   []string
	}{
		{jsACL{"ANY", "", "ANY", "User:alice", "", "ANY", "ANY"}, lines(aliceTopic, aliceGroups)},
		{jsACL{"TOPIC", topic, "MATCH", "", "", "ANY", "ANY"}, lines(aliceTopic, bobTopic, carolPrefix, carolAll)},
	} {
		var described []string
		d.run(t, "describe_acls", map[string]any{"filter": c.filter.arg()}, &described)
		if fmt.Sprint(described) != fmt.Sprint(c.want) {
			t.Errorf("describeAcls %+v:\n%s\nwant\n%s", c.filter, strings.Join(described, "\n"), strings.Join(c.want, "\n"))
		}
	}

	var matched []int
	d.run(t, "delete_acls", map[string]any{"filters": []map[string]string{
		jsACL{"ANY", "", "ANY", "User:bob", "", "ANY", "ANY"}.arg(),
		jsACL{"TOPIC", topic + "-other", "MATCH", "User:carol", "", "ANY", "ANY"}.arg(),
		jsACL{"ANY", "", "ANY", "User:dave", "", "ANY", "ANY"}.arg(),
	}}, &matched)
	if fmt.Sprint(matched) != fmt.Sprint([]int{1, 3, 0}) {
		t.Errorf("deleteAcls of bob's, those of carol's applying to %s-other and dave's matched %v ACLs, want [1 3 0]", topic, matched)
	}
	checkBroker("deleteAcls", aliceTopic, aliceGroups)
}

// kadmACLs are every ACL the broker holds, as the driver's describe_acls
// writes them, sorted.
func kadmACLs(t *testing.T, adm *kadm.Client) []string {
	t.Helper()
	b := kadm.NewACLs().AnyResource().Allow().AllowHosts().Deny().DenyHosts().
		Operations(kadm.OpAny).ResourcePatternType(kadm.ACLPatternAny)
	res, err := adm.DescribeACLs(ctxT(t, opTimeout), b)
	if err != nil {
		t.Fatalf("describe ACLs: %v", err)
	}
	var lines []string
	for _, r := range res {
		if r.Err != nil {
			t.Fatalf("describe ACLs: %v %s", r.Err, r.ErrMessage)
		}
		for _, a := range r.Described {
			lines = append(lines, fmt.Sprintf("%d:%d:%s %s %s %d %d", a.Type, a.Pattern, a.Name, a.Principal, a.Host, a.Operation, a.Permission))
		}
	}
	slices.Sort(lines)
	return slices.Compact(lines)
}

// kafkaJSSeekPauseResume reads topic (produced holds its records by
// partition; partition 0's log starts at 3, and a third partition is
// empty) with a KafkaJS consumer that, before its first fetch, pauses
// partition 1 and seeks it to offset 4, and seeks partition 0 to offset 1,
// below its log start: the fetch is answered OFFSET_OUT_OF_RANGE, and
// KafkaJS resets to the earliest offset. It resumes partition 1 once the
// others are read to their ends.
func kafkaJSSeekPauseResume(t *testing.T, d *scriptDriver, topic string, logStart0 int, produced map[int32][]string) {
	const seek1 = 4
	ends := map[int32]int64{0: int64(len(produced[0])), 1: int64(len(produced[1])), 2: 0}
	var got []mRecord
	d.run(t, "seek_pause", map[string]any{"topic": topic, "group": topic + "-seek", "ends": ends,
		"pause": 1, "seek": map[int32]int64{0: 1, 1: seek1}}, &got)
	// Partition 1's records come after all of partition 0's; within a
	// partition in offset order.
	var want []string
	for i := logStart0; i < len(produced[0]); i++ {
		want = append(want, fmt.Sprintf("0@%d=%s", i, produced[0][i]))
	}
	for i := seek1; i < len(produced[1]); i++ {
		want = append(want, fmt.Sprintf("1@%d=%s", i, produced[1][i]))
	}
	var read []string
	for _, r := range got {
		read = append(read, fmt.Sprintf("%d@%d=%s", r.Partition, r.Offset, r.Value))
	}
	if fmt.Sprint(read) != fmt.Sprint(want) {
		t.Errorf("seeking 0@1 and 1@%d with 1 paused until 0 was read read\n%v,\nwant\n%v", seek1, read, want)
	}
}

// kafkaJSReadUncommitted reads, with a KafkaJS consumer set to
// readUncommitted, a topic holding a committed, an aborted and an open
// transaction: it reads all three, as a read_uncommitted kgo consumer
// does, where a read_committed one stops before the open transaction.
func kafkaJSReadUncommitted(t *testing.T, n *node, adm *kadm.Client, d *scriptDriver, topic string) {
	createTopic(t, adm, topic, 1, nil)
	txn := n.Client(t, kgo.TransactionalID(topic+"-tx"), kgo.DefaultProduceTopic(topic))
	produceTxn(t, txn, topic, true, "committed-0", "committed-1", "committed-2")
	produceTxn(t, txn, topic, false, "aborted-0", "aborted-1")
	if err := txn.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"open-0", "open-1"} {
		if err := txn.ProduceSync(ctxT(t, opTimeout), &kgo.Record{Value: []byte(v)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	defer txn.EndTransaction(ctxT(t, opTimeout), kgo.TryAbort)

	// KafkaJS's admin lists offsets read_committed: the end is the last
	// stable offset, where the open transaction starts.
	stable, err := adm.ListCommittedOffsets(ctxT(t, opTimeout), topic)
	if err != nil {
		t.Fatal(err)
	}
	lso, hw := stable[topic][0].Offset, endOffsets(t, adm, topic)[0]
	if lso >= hw {
		t.Fatalf("with a transaction open the last stable offset is %d, the high watermark %d", lso, hw)
	}
	var offsets map[int32][2]int64
	d.run(t, "topic_offsets", map[string]any{"topic": topic}, &offsets)
	if offsets[0] != [2]int64{0, lso} {
		t.Errorf("fetchTopicOffsets with a transaction open: %v, want [0 %d]", offsets[0], lso)
	}

	const all = 7
	cl := n.Client(t, kgo.ConsumeTopics(topic), kgo.FetchIsolationLevel(kgo.ReadUncommitted()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	var want []string
	for _, r := range consumeN(t, cl, all, opTimeout) {
		want = append(want, fmt.Sprintf("%d=%s", r.Offset, r.Value))
	}
	var got []mRecord
	d.run(t, "read", map[string]any{"topic": topic, "group": topic + "-reader", "want": all, "uncommitted": true}, &got)
	var read []string
	for _, r := range got {
		read = append(read, fmt.Sprintf("%d=%s", r.Offset, r.Value))
	}
	if fmt.Sprint(read) != fmt.Sprint(want) {
		t.Errorf("KafkaJS readUncommitted read %v,\nkgo read_uncommitted %v", read, want)
	}
}
