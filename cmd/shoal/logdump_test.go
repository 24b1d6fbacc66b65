package main

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// dumpLine is one line of "log dump --output json".
type dumpLine struct {
	dumpBatch
	Summary  bool          `json:"summary"`
	Batches  int64         `json:"total_batches"`
	Problems []dumpProblem `json:"problems"`
}

func parseDumpJSON(t *testing.T, out string) (batches []dumpBatch, summary dumpLine) {
	t.Helper()
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var l dumpLine
		if err := json.Unmarshal([]byte(line), &l); err != nil {
			t.Fatalf("%v: %q", err, line)
		}
		if l.Summary {
			summary = l
		} else {
			batches = append(batches, l.dumpBatch)
		}
	}
	return batches, summary
}

func TestLogDump(t *testing.T) {
	name := topicName(t, "t")
	createTopic(t, name, 1)
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokerAddr), kgo.ProducerBatchCompression(kgo.NoCompression()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	// Five batches: 1, 2, 3, 4 and 5 records.
	for b := 1; b <= 5; b++ {
		var recs []*kgo.Record
		for i := 0; i < b; i++ {
			recs = append(recs, &kgo.Record{Topic: name, Key: []byte("key"), Value: []byte("value-" + itoa(int64(b)) + "-" + itoa(int64(i))),
				Headers: []kgo.RecordHeader{{Key: "h", Value: []byte("x")}}})
		}
		if err := cl.ProduceSync(testCtx(t), recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	partDir := filepath.Join(logDir, name+"-0")
	if _, err := os.Stat(partDir); err != nil {
		t.Fatalf("partition directory: %v", err)
	}

	r := ok(t, "log", "dump", partDir)
	if n := strings.Count(r.stdout, "(ok)"); n != 5 {
		t.Fatalf("want 5 batches with CRC ok, got %d:\n%s", n, r.stdout)
	}
	if !strings.Contains(r.stdout, "5 batch(es), 15 record(s), 0 problem(s)") || strings.Contains(r.stdout, "BAD") {
		t.Fatalf("dump summary:\n%s", r.stdout)
	}
	if !strings.Contains(r.stdout, "baseOffset: 10 lastOffset: 14 count: 5") {
		t.Fatalf("dump lacks the last batch:\n%s", r.stdout)
	}
	r = ok(t, "log", "dump", "--records", partDir)
	if !strings.Contains(r.stdout, "| offset: 14 ") || !strings.Contains(r.stdout, "key: key value: value-5-4 headers: [h=x]") {
		t.Fatalf("dump --records lacks the last record:\n%s", r.stdout)
	}

	r = ok(t, "--output", "json", "log", "dump", partDir)
	batches, summary := parseDumpJSON(t, r.stdout)
	if len(batches) != 5 || summary.Batches != 5 || len(summary.Problems) != 0 {
		t.Fatalf("json dump: %d batches, summary %+v", len(batches), summary)
	}
	var pos int64
	for i, b := range batches {
		if b.Position != pos || !b.CRCValid || b.BaseOffset != int64(i*(i+1)/2) || b.Count != int32(i+1) {
			t.Fatalf("batch %d: %+v", i, b)
		}
		pos += int64(b.Size)
	}

	// A copy of the segment to damage.
	seg := filepath.Join(partDir, "00000000000000000000.log")
	data, err := os.ReadFile(seg)
	if err != nil {
		t.Fatal(err)
	}
	data = data[:pos] // what the dump saw; the broker may not add more, but be exact
	copyTo := func(b []byte) string {
		dir := t.TempDir()
		p := filepath.Join(dir, "00000000000000000000.log")
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}

	clean := copyTo(data)
	ok(t, "log", "dump", clean)

	// A flipped byte inside the third batch's records.
	bad := append([]byte(nil), data...)
	third := batches[2]
	bad[third.Position+int64(third.Size)-3] ^= 0xff
	r = shoal(t, "log", "dump", copyTo(bad))
	fails(t, r, "CRC mismatch")
	fails(t, r, "position "+itoa(third.Position))
	if !strings.Contains(r.stdout, "(BAD)") || strings.Count(r.stdout, "(ok)") != 4 {
		t.Fatalf("damaged dump should show one BAD batch and keep going:\n%s", r.stdout)
	}

	// A torn tail.
	r = shoal(t, "log", "dump", copyTo(data[:len(data)-10]))
	fails(t, r, "truncated batch")

	// Offsets that go backwards: the fourth batch's base offset is
	// rewritten to 0 (base offset is outside the CRC, so only the order
	// check can catch it).
	back := append([]byte(nil), data...)
	binary.BigEndian.PutUint64(back[batches[3].Position:], 0)
	fails(t, shoal(t, "log", "dump", copyTo(back)), "offsets do not increase")

	// Index files next to a copy: good entries pass, a bad one is caught.
	writeIndex := func(segPath string, entries [][2]uint32) {
		var b []byte
		for _, e := range entries {
			b = binary.BigEndian.AppendUint32(b, e[0])
			b = binary.BigEndian.AppendUint32(b, e[1])
		}
		if err := os.WriteFile(strings.TrimSuffix(segPath, ".log")+".index", b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	writeTimeIndex := func(segPath string, ts int64, rel uint32) {
		b := binary.BigEndian.AppendUint64(nil, uint64(ts))
		b = binary.BigEndian.AppendUint32(b, rel)
		if err := os.WriteFile(strings.TrimSuffix(segPath, ".log")+".timeindex", b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	indexed := copyTo(data)
	writeIndex(indexed, [][2]uint32{
		{uint32(batches[1].BaseOffset), uint32(batches[1].Position)},
		{uint32(batches[3].BaseOffset), uint32(batches[3].Position)},
	})
	writeTimeIndex(indexed, batches[4].MaxTimestamp, uint32(batches[4].BaseOffset))
	r = ok(t, "log", "dump", indexed)
	if !strings.Contains(r.stdout, "2 entries checked") || !strings.Contains(r.stdout, "1 entries checked") {
		t.Fatalf("index check not reported:\n%s", r.stdout)
	}
	writeIndex(indexed, [][2]uint32{
		{uint32(batches[1].BaseOffset), uint32(batches[1].Position)},
		{uint32(batches[3].BaseOffset), uint32(batches[3].Position + 1)},
	})
	fails(t, shoal(t, "log", "dump", indexed), "not a batch boundary")
	writeIndex(indexed, [][2]uint32{{uint32(batches[2].BaseOffset + 1), uint32(batches[2].Position)}})
	fails(t, shoal(t, "log", "dump", indexed), "holds the batch at offset 3, the index says 4")
	writeIndex(indexed, nil)
	writeTimeIndex(indexed, batches[4].MaxTimestamp+1, uint32(batches[4].BaseOffset))
	fails(t, shoal(t, "log", "dump", indexed), "time index entry 0")

	fails(t, shoal(t, "log", "dump", filepath.Join(t.TempDir(), "missing.log")), "no such file")
	fails(t, shoal(t, "log", "dump", t.TempDir()), "no .log segment files")
}

// TestLogDumpSegments dumps a partition that rolled several segments, with
// index entries the broker wrote itself.
func TestLogDumpSegments(t *testing.T) {
	name := topicName(t, "t")
	createTopic(t, name, 1, "internal.segment.bytes=400", "index.interval.bytes=1")
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokerAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for i := 0; i < 30; i++ {
		r := &kgo.Record{Topic: name, Value: []byte(strings.Repeat("v", 60) + itoa(int64(i)))}
		if err := cl.ProduceSync(testCtx(t), r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	partDir := filepath.Join(logDir, name+"-0")
	segs, _ := filepath.Glob(filepath.Join(partDir, "*.log"))
	if len(segs) < 3 {
		t.Fatalf("want several segments, have %v", segs)
	}
	r := ok(t, "--output", "json", "log", "dump", partDir)
	batches, summary := parseDumpJSON(t, r.stdout)
	if len(batches) != 30 || len(summary.Problems) != 0 {
		t.Fatalf("%d batches, problems %+v", len(batches), summary.Problems)
	}
	for i, b := range batches {
		if b.BaseOffset != int64(i) {
			t.Fatalf("batch %d has base offset %d", i, b.BaseOffset)
		}
	}
	r = ok(t, "log", "dump", partDir)
	if !strings.Contains(r.stdout, "entries checked") {
		t.Fatalf("no index checked:\n%s", r.stdout)
	}

	// Two segments out of order: swap the contents of the first two.
	dir := t.TempDir()
	first, err := os.ReadFile(segs[0])
	if err != nil {
		t.Fatal(err)
	}
	second, err := os.ReadFile(segs[1])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, filepath.Base(segs[0])), second, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, filepath.Base(segs[1])), first, 0o644); err != nil {
		t.Fatal(err)
	}
	fails(t, shoal(t, "log", "dump", dir), "is not above the last offset")
}

func grepLines(s, substr string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestLogDumpIndexes dumps the segments of a broker that has shut down,
// so every index the broker keeps is on disk, and checks them all.
func TestLogDumpIndexes(t *testing.T) {
	b, err := startBroker(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	defer func() {
		if !stopped {
			_ = b.stop()
		}
	}()
	name := "indexed"
	r := shoalIn(t, "", "--bootstrap-server", b.addr, "topic", "create", name, "--partitions", "1",
		"--config", "internal.segment.bytes=2000", "--config", "index.interval.bytes=100")
	if r.code != 0 {
		t.Fatalf("create: %s", r.stderr)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	base := time.Now().Add(-time.Hour)
	for i := 0; i < 60; i++ {
		r := &kgo.Record{Topic: name, Value: []byte(strings.Repeat("v", 50)), Timestamp: base.Add(time.Duration(i) * time.Second)}
		if err := cl.ProduceSync(testCtx(t), r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	cl.Close()
	stopped = true
	if err := b.stop(); err != nil {
		t.Fatalf("stopping the broker: %v", err)
	}

	partDir := filepath.Join(b.logDir, name+"-0")
	r = shoalIn(t, "", "log", "dump", partDir)
	if r.code != 0 {
		t.Fatalf("dump: exit %d: %s\n%s", r.code, r.stderr, r.stdout)
	}
	lines := grepLines(r.stdout, "entries checked")
	if !strings.Contains(r.stdout, "60 batch(es), 60 record(s), 0 problem(s)") {
		t.Fatalf("dump summary:\n%s", r.stdout)
	}
	checked := 0
	for _, l := range strings.Split(lines, "\n") {
		var n int
		if i := strings.LastIndex(l, ": "); i >= 0 {
			fmt.Sscanf(l[i+2:], "%d entries checked", &n)
		}
		checked += n
	}
	if checked == 0 {
		t.Fatalf("no index entries on disk after a clean shutdown:\n%s", lines)
	}
	t.Logf("%d index entries checked:\n%s", checked, lines)
}
