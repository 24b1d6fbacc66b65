package integration

import (
	"bytes"
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
)

// scriptDriver runs the client matrix with a client of another language
// through a driver script that performs one step per process: the step's
// arguments go in as JSON on stdin (with "addr", the broker's address), the
// answer comes back as JSON on stdout, and a failure is a non-zero exit with
// the client's error on stderr. The kafka-python and KafkaJS drivers
// (testdata/) speak it; "member" runs until SIGTERM, printing the member's
// assignment as a JSON list whenever it changes.
type scriptDriver struct {
	name string
	// argv runs the script; the operation's name is appended.
	argv []string
	// skips names the steps the client cannot do, with the reason.
	skips map[string]string
	n     *node
}

func (d *scriptDriver) skip(step string) string { return d.skips[step] }

func (d *scriptDriver) setsTimestamps() bool { return true }

// run performs op with args (plus the broker address) and decodes the
// script's answer into out.
func (d *scriptDriver) run(t *testing.T, op string, args map[string]any, out any) {
	t.Helper()
	args["addr"] = d.n.Addr()
	in, err := json.Marshal(args)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctxT(t, matrixConsumeTimeout), d.argv[0], append(d.argv[1:], op)...)
	cmd.Stdin = bytes.NewReader(in)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s", d.name, op, err, lastLines(stderr.String(), 15))
	}
	if err := json.Unmarshal(stdout.Bytes(), out); err != nil {
		t.Fatalf("%s %s answered %q: %v\n%s", d.name, op, stdout.String(), err, lastLines(stderr.String(), 15))
	}
}

// lastLines is the tail of a process's output, enough to show its error.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

func (d *scriptDriver) createTopic(t *testing.T, topic string, partitions int32, configs map[string]string) {
	d.run(t, "create_topic", map[string]any{"topic": topic, "partitions": partitions, "configs": configs}, &struct{}{})
}

func (d *scriptDriver) produce(t *testing.T, topic, codec string, recs []mRecord) {
	d.run(t, "produce", map[string]any{"topic": topic, "codec": codec, "records": recs}, &struct{}{})
}

func (d *scriptDriver) produceIdempotent(t *testing.T, topic string, recs []mRecord) {
	d.run(t, "produce_idempotent", map[string]any{"topic": topic, "records": recs}, &struct{}{})
}

func (d *scriptDriver) consumeGroup(t *testing.T, group, topic string, ends map[int32]int64) []mRecord {
	var got []mRecord
	d.run(t, "consume_group", map[string]any{"topic": topic, "group": group, "ends": ends}, &got)
	return got
}

func (d *scriptDriver) committed(t *testing.T, group, topic string) map[int32]int64 {
	var got map[int32]int64
	d.run(t, "committed", map[string]any{"topic": topic, "group": group}, &got)
	return got
}

func (d *scriptDriver) startMember(t *testing.T, group, topic string) matrixMember {
	in, _ := json.Marshal(map[string]any{"addr": d.n.Addr(), "group": group, "topic": topic})
	cmd := exec.Command(d.argv[0], append(d.argv[1:], "member")...)
	cmd.Stdin = bytes.NewReader(in)
	return startProcessMember(t, d.name, cmd, false, func(line string) ([]int32, bool) {
		var owned []int32
		return owned, json.Unmarshal([]byte(line), &owned) == nil
	})
}

func (d *scriptDriver) describeGroup(t *testing.T, group string) mGroup {
	var g mGroup
	d.run(t, "describe_group", map[string]any{"group": group}, &g)
	return g
}

func (d *scriptDriver) listGroups(t *testing.T) []string {
	var gs []string
	d.run(t, "list_groups", map[string]any{}, &gs)
	return gs
}

func (d *scriptDriver) offsetsForTime(t *testing.T, topic string, partitions int32, ms int64) map[int32]int64 {
	var got map[int32]int64
	d.run(t, "offsets_for_time", map[string]any{"topic": topic, "partitions": partitions, "ms": ms}, &got)
	return got
}

func (d *scriptDriver) describeTopicConfig(t *testing.T, topic, key string) string {
	var v string
	d.run(t, "describe_config", map[string]any{"topic": topic, "key": key}, &v)
	return v
}

func (d *scriptDriver) deleteRecords(t *testing.T, topic string, partition int32, before int64) {
	d.run(t, "delete_records", map[string]any{"topic": topic, "partition": partition, "before": before}, &struct{}{})
}

func (d *scriptDriver) deleteTopic(t *testing.T, topic string) {
	d.run(t, "delete_topic", map[string]any{"topic": topic}, &struct{}{})
}
