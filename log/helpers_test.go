package log

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoalmq/shoal/internal/firsterr"
	"github.com/shoalmq/shoal/internal/testcompress"
)

// Test batches are built with kmsg, independently of the package's own
// decoder, so round trips check the package against a real encoder.

type testRec struct {
	key, value []byte
	tsDelta    int64
	headers    []kmsg.Header
}

type batchSpec struct {
	recs   []testRec
	baseTs int64
	codec  int8
	xerial bool // snappy with the Java client's xerial framing
	pid    int64
	epoch  int16
	seq    int32
	txn    bool // transactional attribute
}

func encodeRecords(recs []testRec) []byte {
	var out []byte
	for i, r := range recs {
		rec := kmsg.Record{TimestampDelta64: r.tsDelta, OffsetDelta: int32(i), Key: r.key, Value: r.value, Headers: r.headers}
		body := rec.AppendTo(nil)[1:] // Length 0 encodes as one byte
		rec.Length = int32(len(body))
		out = rec.AppendTo(out)
	}
	return out
}

func buildBatch(t testing.TB, s batchSpec) []byte {
	t.Helper()
	payload := testcompress.Records(t, s.codec, s.xerial, encodeRecords(s.recs))
	maxTs := s.baseTs
	for _, r := range s.recs {
		maxTs = max(maxTs, s.baseTs+r.tsDelta)
	}
	pid := s.pid
	if pid == 0 {
		pid = -1
	}
	rb := kmsg.RecordBatch{
		FirstOffset: 0, PartitionLeaderEpoch: -1, Magic: 2,
		Attributes: int16(s.codec), LastOffsetDelta: int32(len(s.recs) - 1),
		FirstTimestamp: s.baseTs, MaxTimestamp: maxTs,
		ProducerID: pid, ProducerEpoch: s.epoch, FirstSequence: s.seq,
		NumRecords: int32(len(s.recs)), Records: payload,
	}
	if pid < 0 {
		rb.ProducerEpoch, rb.FirstSequence = -1, -1
	}
	if s.txn {
		rb.Attributes |= attrTransactional
	}
	rb.Length = int32(BatchHeaderSize - 12 + len(payload))
	b := rb.AppendTo(nil)
	binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[21:], crc32.MakeTable(crc32.Castagnoli)))
	return b
}

// simpleBatch makes n records "prefix-i" with timestamps baseTs+i.
func simpleBatch(t testing.TB, n int, baseTs int64, prefix string) []byte {
	recs := make([]testRec, n)
	for i := range recs {
		recs[i] = testRec{key: []byte(fmt.Sprintf("k%d", i)), value: []byte(fmt.Sprintf("%s-%d", prefix, i)), tsDelta: int64(i)}
	}
	return buildBatch(t, batchSpec{recs: recs, baseTs: baseTs})
}

func idemBatch(t testing.TB, n int, pid int64, epoch int16, seq int32) []byte {
	recs := make([]testRec, n)
	for i := range recs {
		recs[i] = testRec{value: []byte(fmt.Sprintf("v%d", i))}
	}
	return buildBatch(t, batchSpec{recs: recs, baseTs: 1000, pid: pid, epoch: epoch, seq: seq})
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func openManager(t testing.TB, dirs ...string) *Manager {
	t.Helper()
	m, err := Open(ManagerConfig{Dirs: dirs, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// mustCreate creates partition of topic in m, failing the test if it cannot.
func mustCreate(t testing.TB, m *Manager, topic string, partition int32, id [16]byte, cfg PartitionConfig) *Partition {
	t.Helper()
	p, err := m.CreatePartition(topic, partition, id, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// workers runs the goroutines of a concurrency test and keeps the first
// error one of them returns.
type workers struct {
	wg    sync.WaitGroup
	first firsterr.Keeper
}

func (w *workers) Go(f func() error) {
	w.wg.Go(func() { w.first.Set(f()) })
}

// Wait waits for every goroutine and returns the first error.
func (w *workers) Wait() error {
	w.wg.Wait()
	return w.first.Err()
}

var testNow = time.UnixMilli(1_700_000_000_000)

// mustAppend validates and appends a copy of b, returning the result.
func mustAppend(t testing.TB, p *Partition, b []byte, epoch int32) AppendResult {
	t.Helper()
	res, err := appendCopy(p, b, epoch)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// mustRoll starts a new active segment on p, as an append that does not
// fit the active one does.
func mustRoll(t testing.TB, p *Partition) {
	t.Helper()
	p.appendMu.Lock()
	err := p.roll()
	p.appendMu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
}

// mustCompact runs a cleaning pass on p at testNow.
func mustCompact(t testing.TB, p *Partition) {
	t.Helper()
	if err := p.CompactNow(testNow); err != nil {
		t.Fatal(err)
	}
}

func appendCopy(p *Partition, b []byte, epoch int32) (AppendResult, error) {
	b = bytes.Clone(b)
	h, err := ValidateProduceBatch(b, 1<<30)
	if err != nil {
		return AppendResult{}, err
	}
	return p.Append(b, h, epoch, testNow)
}

// splitBatches splits Read data into batches, failing on anything malformed.
func splitBatches(t testing.TB, data []byte) [][]byte {
	t.Helper()
	var out [][]byte
	for len(data) > 0 {
		h, err := ParseBatchHeader(data)
		if err != nil || h.Size() > len(data) {
			t.Fatalf("malformed read data: %v", err)
		}
		out = append(out, data[:h.Size()])
		data = data[h.Size():]
	}
	return out
}

// removeSnapshots deletes a closed partition's producer snapshots, so its
// next open rebuilds the producer state from the log alone.
func removeSnapshots(dir string) {
	snaps, _ := filepath.Glob(filepath.Join(dir, "*"+snapshotSuffix))
	for _, s := range snaps {
		os.Remove(s)
	}
}
