package integration

import (
	"bytes"
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
)

// kafkaPython is Debian's interpreter, the one python3-kafka installs into
// (not whatever python3 comes first on PATH).
const kafkaPython = "/usr/bin/python3"

// kafkaPythonScript performs one step per run; see its doc string.
const kafkaPythonScript = "testdata/kafka_python_driver.py"

// TestClientMatrixKafkaPython runs the client matrix with kafka-python
// (Debian's python3-kafka), one Python process per step.
func TestClientMatrixKafkaPython(t *testing.T) {
	t.Parallel()
	if out, err := exec.Command(kafkaPython, "-c", "import kafka").CombinedOutput(); err != nil {
		t.Fatalf("kafka-python is not installed for %s (.ci/run installs python3-kafka): %v\n%s", kafkaPython, err, out)
	}
	n := startNode(t, matrixOpts)
	runMatrix(t, n, &kafkaPythonDriver{n: n})
}

type kafkaPythonDriver struct {
	unsupportedSteps
	n *node
}

func (d *kafkaPythonDriver) skip(step string) string {
	switch step {
	case stepIdempotent:
		return "kafka-python 2.0 has no idempotent producer"
	case stepDeleteRecords:
		return "kafka-python 2.0 has no DeleteRecords API"
	}
	return ""
}

func (d *kafkaPythonDriver) setsTimestamps() bool { return true }

// run performs op with args (plus the broker address) and decodes the
// script's answer into out.
func (d *kafkaPythonDriver) run(t *testing.T, op string, args map[string]any, out any) {
	t.Helper()
	args["addr"] = d.n.Addr()
	in, err := json.Marshal(args)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctxT(t, matrixConsumeTimeout), kafkaPython, kafkaPythonScript, op)
	cmd.Stdin = bytes.NewReader(in)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("kafka-python %s: %v\n%s", op, err, lastLines(stderr.String(), 15))
	}
	if err := json.Unmarshal(stdout.Bytes(), out); err != nil {
		t.Fatalf("kafka-python %s answered %q: %v", op, stdout.String(), err)
	}
}

// lastLines is the tail of a process's output, enough to show its error.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

func (d *kafkaPythonDriver) createTopic(t *testing.T, topic string, partitions int32, configs map[string]string) {
	d.run(t, "create_topic", map[string]any{"topic": topic, "partitions": partitions, "configs": configs}, &struct{}{})
}

func (d *kafkaPythonDriver) produce(t *testing.T, topic, codec string, recs []mRecord) {
	d.run(t, "produce", map[string]any{"topic": topic, "codec": codec, "records": recs}, &struct{}{})
}

func (d *kafkaPythonDriver) consumeGroup(t *testing.T, group, topic string, ends map[int32]int64) []mRecord {
	var got []mRecord
	d.run(t, "consume_group", map[string]any{"topic": topic, "group": group, "ends": ends}, &got)
	return got
}

func (d *kafkaPythonDriver) committed(t *testing.T, group, topic string) map[int32]int64 {
	var got map[int32]int64
	d.run(t, "committed", map[string]any{"topic": topic, "group": group}, &got)
	return got
}

func (d *kafkaPythonDriver) startMember(t *testing.T, group, topic string) matrixMember {
	in, _ := json.Marshal(map[string]any{"addr": d.n.Addr(), "group": group, "topic": topic})
	cmd := exec.Command(kafkaPython, kafkaPythonScript, "member")
	cmd.Stdin = bytes.NewReader(in)
	// The member prints its assignment as a JSON list whenever it
	// changes, and leaves on SIGTERM.
	return startProcessMember(t, "kafka-python", cmd, false, func(line string) ([]int32, bool) {
		var owned []int32
		return owned, json.Unmarshal([]byte(line), &owned) == nil
	})
}

func (d *kafkaPythonDriver) describeGroup(t *testing.T, group string) mGroup {
	var g mGroup
	d.run(t, "describe_group", map[string]any{"group": group}, &g)
	return g
}

func (d *kafkaPythonDriver) listGroups(t *testing.T) []string {
	var gs []string
	d.run(t, "list_groups", map[string]any{}, &gs)
	return gs
}

func (d *kafkaPythonDriver) offsetsForTime(t *testing.T, topic string, partitions int32, ms int64) map[int32]int64 {
	var got map[int32]int64
	d.run(t, "offsets_for_time", map[string]any{"topic": topic, "partitions": partitions, "ms": ms}, &got)
	return got
}

func (d *kafkaPythonDriver) describeTopicConfig(t *testing.T, topic, key string) string {
	var v string
	d.run(t, "describe_config", map[string]any{"topic": topic, "key": key}, &v)
	return v
}

func (d *kafkaPythonDriver) deleteTopic(t *testing.T, topic string) {
	d.run(t, "delete_topic", map[string]any{"topic": topic}, &struct{}{})
}
