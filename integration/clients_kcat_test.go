package integration

import (
	"bytes"
	"encoding/json"
	"io"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// TestClientMatrixKcat runs the client matrix with kcat (Debian's package,
// built on the librdkafka it bundles), one kcat process per step.
func TestClientMatrixKcat(t *testing.T) {
	t.Parallel()
	if out, err := exec.Command("kcat", "-V").CombinedOutput(); err != nil {
		t.Fatalf("kcat is not installed (.ci/run installs it): %v\n%s", err, out)
	}
	n := startNode(t, matrixOpts)
	runMatrix(t, n, &kcatDriver{n: n})
}

type kcatDriver struct {
	unsupportedSteps
	n *node
}

func (d *kcatDriver) skip(step string) string {
	switch step {
	case stepCreateTopic:
		return "kcat cannot create topics"
	case stepCommitted:
		return "kcat cannot fetch committed offsets"
	case stepDescribeGroup, stepListGroups:
		return "kcat cannot describe or list groups"
	case stepDescribeConfig:
		return "kcat cannot describe configs"
	case stepDeleteRecords:
		return "kcat cannot delete records"
	case stepDeleteTopic:
		return "kcat cannot delete topics"
	}
	return ""
}

// setsTimestamps: kcat's producer reads records from lines of input and
// has no way to give one a timestamp; librdkafka stamps the produce time.
func (d *kcatDriver) setsTimestamps() bool { return false }

// run runs kcat with args and stdin, returning its standard output.
func (d *kcatDriver) run(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	cmd := exec.CommandContext(ctxT(t, matrixConsumeTimeout), "kcat", append([]string{"-b", d.n.Addr()}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("kcat %v: %v\n%s", args, err, lastLines(stderr.String(), 15))
	}
	return stdout.String()
}

// produce writes one "key<TAB>value" line per record; headers are given on
// the command line, so they must be the same for every record (the
// scenario's are).
func (d *kcatDriver) produce(t *testing.T, topic, codec string, recs []mRecord) {
	d.produceWith(t, topic, recs, "-X", "compression.codec="+codec)
}

func (d *kcatDriver) produceIdempotent(t *testing.T, topic string, recs []mRecord) {
	d.produceWith(t, topic, recs, "-X", "enable.idempotence=true")
}

func (d *kcatDriver) produceWith(t *testing.T, topic string, recs []mRecord, extra ...string) {
	var in strings.Builder
	// Lines trickle in from a pipe: a long linger makes whole batches,
	// which librdkafka compresses (it sends a batch that does not shrink
	// uncompressed).
	args := append([]string{"-P", "-t", topic, "-K", "\t", "-X", "linger.ms=200"}, extra...)
	for i, r := range recs {
		if i == 0 {
			for _, h := range r.Headers {
				args = append(args, "-H", h.Key+"="+h.Value)
			}
		} else if !slices.Equal(r.Headers, recs[0].Headers) {
			t.Fatal("kcat gives every record the same headers")
		}
		in.WriteString(r.Key + "\t" + r.Value + "\n")
	}
	d.run(t, in.String(), args...)
}

// kcatRecord is kcat's -J envelope.
type kcatRecord struct {
	Partition int32    `json:"partition"`
	Offset    int64    `json:"offset"`
	Ts        int64    `json:"ts"`
	Key       string   `json:"key"`
	Payload   string   `json:"payload"`
	Headers   []string `json:"headers"`
}

// consumeGroup runs kcat -G with -e: kcat exits by itself once every
// assigned partition has reached its end, committing on the way out.
func (d *kcatDriver) consumeGroup(t *testing.T, group, topic string, _ map[int32]int64) []mRecord {
	stdout := d.run(t, "", "-G", group, "-e", "-J",
		"-X", "auto.offset.reset=earliest", "-X", "fetch.wait.max.ms=200",
		"-X", "session.timeout.ms=6000", "-X", "heartbeat.interval.ms=300", topic)
	var out []mRecord
	for _, line := range strings.Split(strings.TrimSpace(stdout), "\n") {
		if line == "" {
			continue
		}
		var k kcatRecord
		if err := json.Unmarshal([]byte(line), &k); err != nil {
			t.Fatalf("kcat printed %q: %v", line, err)
		}
		r := mRecord{Partition: k.Partition, Offset: k.Offset, Key: k.Key, Value: k.Payload, TimestampMs: k.Ts}
		for i := 0; i+1 < len(k.Headers); i += 2 {
			r.Headers = append(r.Headers, mHeader{k.Headers[i], k.Headers[i+1]})
		}
		out = append(out, r)
	}
	return out
}

// kcatRebalanced matches the line kcat -G prints on stderr after each
// rebalance, e.g. "% Group g rebalanced (memberid m): assigned: t [0], t [2]".
var kcatRebalanced = regexp.MustCompile(`^% Group \S+ rebalanced \(memberid [^)]*\): (assigned|revoked): (.*)$`)

// kcatPartition matches one "topic [N]" of that line.
var kcatPartition = regexp.MustCompile(`\[(\d+)\]`)

func (d *kcatDriver) startMember(t *testing.T, group, topic string) matrixMember {
	cmd := exec.Command("kcat", "-b", d.n.Addr(), "-G", group,
		"-X", "session.timeout.ms=6000", "-X", "heartbeat.interval.ms=300", "-X", "fetch.wait.max.ms=200", topic)
	cmd.Stdout = io.Discard
	return startProcessMember(t, "kcat", cmd, true, func(line string) ([]int32, bool) {
		g := kcatRebalanced.FindStringSubmatch(line)
		if g == nil {
			return nil, false
		}
		if g[1] != "assigned" {
			return nil, true
		}
		var parts []int32
		for _, p := range kcatPartition.FindAllStringSubmatch(g[2], -1) {
			n, _ := strconv.Atoi(p[1])
			parts = append(parts, int32(n))
		}
		return parts, true
	})
}

// kcatOffset matches a line of kcat -Q's answer: "topic [N] offset O".
var kcatOffset = regexp.MustCompile(`\[(\d+)\]\s+offset\s+(-?\d+)`)

func (d *kcatDriver) offsetsForTime(t *testing.T, topic string, partitions int32, ms int64) map[int32]int64 {
	args := []string{"-Q"}
	for p := range partitions {
		args = append(args, "-t", topic+":"+strconv.Itoa(int(p))+":"+strconv.FormatInt(ms, 10))
	}
	out := map[int32]int64{}
	for _, g := range kcatOffset.FindAllStringSubmatch(d.run(t, "", args...), -1) {
		p, _ := strconv.Atoi(g[1])
		o, _ := strconv.ParseInt(g[2], 10, 64)
		out[int32(p)] = o
	}
	return out
}
