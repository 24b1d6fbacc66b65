package coordinator

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

var txnT0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// seqProducerIDs hands out ids from next on; fail makes the next call fail.
type seqProducerIDs struct {
	next int64
	fail bool
}

func (a *seqProducerIDs) NextProducerID() (int64, error) {
	if a.fail {
		a.fail = false
		return -1, errors.New("no producer id block")
	}
	a.next++
	return a.next - 1, nil
}

// txnHarness drives one TxnShard from a datadriven script (testdata/txn).
// Every drained record is kept as the partition's log, so "replay" can load
// a new shard from it and compare.
type txnHarness struct {
	t     *testing.T
	cfg   TxnConfig
	ids   *seqProducerIDs
	s     *TxnShard
	epoch int32
	now   time.Time
	log   []Record
	// trace ("new trace") prints every state change, logged or not.
	trace []TxnTransition
}

func TestTxnDatadriven(t *testing.T) {
	datadriven.Walk(t, "testdata/txn", func(t *testing.T, path string) {
		h := &txnHarness{t: t}
		datadriven.RunTest(t, path, h.run)
	})
}

func (h *txnHarness) at(d *datadriven.TestData) time.Time {
	if d.HasArg("at") {
		h.now = txnT0.Add(txnDur(h.t, d, "at", "0s"))
	}
	return h.now
}

func txnDur(t *testing.T, d *datadriven.TestData, key, def string) time.Duration {
	s := def
	if d.HasArg(key) {
		d.ScanArgs(t, key, &s)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		d.Fatalf(t, "bad %s=%s: %v", key, s, err)
	}
	return v
}

func txnInt(t *testing.T, d *datadriven.TestData, key string, def int64) int64 {
	if !d.HasArg(key) {
		return def
	}
	var s string
	d.ScanArgs(t, key, &s)
	if s == "max" {
		return math.MaxInt16 - 1
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		d.Fatalf(t, "bad %s=%s", key, s)
	}
	return v
}

func txnStr(t *testing.T, d *datadriven.TestData, key, def string) string {
	if !d.HasArg(key) {
		return def
	}
	var s string
	d.ScanArgs(t, key, &s)
	return s
}

// txnParts parses "a-0,b-1".
func txnParts(t *testing.T, d *datadriven.TestData) []TxnPartition {
	var out []TxnPartition
	for _, e := range strings.Split(txnStr(t, d, "parts", ""), ",") {
		if e == "" {
			continue
		}
		i := strings.LastIndexByte(e, '-')
		p, err := strconv.Atoi(e[i+1:])
		if i < 0 || err != nil {
			d.Fatalf(t, "bad partition %q", e)
		}
		out = append(out, TxnPartition{Topic: e[:i], Partition: int32(p)})
	}
	return out
}

func errStr(e *kerr.Error) string {
	if e == nil {
		return "NONE"
	}
	return e.Message
}

func (h *txnHarness) run(t *testing.T, d *datadriven.TestData) string {
	h.t = t
	var b strings.Builder
	id := txnStr(t, d, "id", "t")
	pid := txnInt(t, d, "pid", 1000)
	epoch := int16(txnInt(t, d, "epoch", 0))
	now := h.at(d)
	switch d.Cmd {
	case "new":
		h.cfg = DefaultTxnConfig()
		h.cfg.MaxTimeout = txnDur(t, d, "max-timeout", "15m")
		h.cfg.IDExpiration = txnDur(t, d, "expiration", "168h")
		h.ids = &seqProducerIDs{next: txnInt(t, d, "first-pid", 1000)}
		h.epoch = int32(txnInt(t, d, "coord-epoch", 0))
		h.s = NewTxnShard(h.cfg, h.ids, h.epoch)
		h.now, h.log, h.trace = txnT0, nil, nil
		if d.HasArg("trace") {
			h.s.OnTransition(func(tr TxnTransition) { h.trace = append(h.trace, tr) })
		}
		return "ok\n"

	case "init":
		if d.HasArg("fail-alloc") {
			h.ids.fail = true
		}
		req := InitProducerIDRequest{TransactionalID: id, Timeout: txnDur(t, d, "timeout", "60s"), ExpectedProducerID: -1, ExpectedEpoch: -1}
		if d.HasArg("expect-pid") {
			req.ExpectedProducerID = txnInt(t, d, "expect-pid", -1)
			req.ExpectedEpoch = int16(txnInt(t, d, "expect-epoch", -1))
		}
		gotPid, gotEpoch, err := h.s.InitProducerID(now, req)
		fmt.Fprintf(&b, "> init %s: %s pid=%d epoch=%d\n", id, errStr(err), gotPid, gotEpoch)

	case "add":
		req := AddPartitionsRequest{TransactionalID: id, ProducerID: pid, ProducerEpoch: epoch, Partitions: txnParts(t, d), VerifyOnly: d.HasArg("verify"), V2: d.HasArg("v2")}
		res, err := h.s.AddPartitions(now, req)
		fmt.Fprintf(&b, "> add %s: %s", id, errStr(err))
		for _, tp := range req.Partitions {
			if e, ok := res[tp]; ok {
				fmt.Fprintf(&b, " %s-%d=%s", tp.Topic, tp.Partition, errStr(e))
			}
		}
		b.WriteString("\n")

	case "add-offsets":
		err := h.s.AddOffsets(now, id, pid, epoch, int32(txnInt(t, d, "offsets-partition", 0)))
		fmt.Fprintf(&b, "> add-offsets %s: %s\n", id, errStr(err))

	case "end":
		req := EndTxnRequest{TransactionalID: id, ProducerID: pid, ProducerEpoch: epoch, Commit: d.HasArg("commit"), V2: d.HasArg("v2")}
		if d.HasArg("fail-alloc") {
			h.ids.fail = true
		}
		gotPid, gotEpoch, err := h.s.EndTxn(now, req)
		fmt.Fprintf(&b, "> end %s: %s", id, errStr(err))
		if req.V2 {
			fmt.Fprintf(&b, " pid=%d epoch=%d", gotPid, gotEpoch)
		}
		b.WriteString("\n")

	case "markers-written":
		h.s.MarkersWritten(now, id, pid, epoch, txnParts(t, d))

	case "tick":
		h.s.Tick(now)

	case "describe":
		for _, id := range strings.Split(txnStr(t, d, "ids", "t"), ",") {
			desc, err := h.s.Describe(id)
			if err != nil {
				fmt.Fprintf(&b, "> describe %s: %s\n", id, errStr(err))
				continue
			}
			fmt.Fprintf(&b, "> describe %s: state=%s pid=%d epoch=%d timeout=%s start=%s parts=%s\n", id, desc.State, desc.ProducerID, desc.ProducerEpoch, desc.Timeout, txnRel(desc.StartMs), fmtParts(desc.Partitions))
		}
		return b.String()

	case "list":
		f := TxnListFilter{MinDuration: -1}
		if d.HasArg("min-duration") {
			f.MinDuration = txnDur(t, d, "min-duration", "0s")
		}
		if d.HasArg("pattern") {
			re, err := CompileWholeMatch(txnStr(t, d, "pattern", ""))
			if err != nil {
				return fmt.Sprintf("bad pattern: %v\n", err)
			}
			f.IDPattern = re
		}
		for _, name := range strings.Split(txnStr(t, d, "states", ""), ",") {
			if name != "" {
				f.States = append(f.States, name)
			}
		}
		for _, p := range strings.Split(txnStr(t, d, "pids", ""), ",") {
			if p != "" {
				v, _ := strconv.ParseInt(p, 10, 64)
				f.ProducerIDs = append(f.ProducerIDs, v)
			}
		}
		rows, unknown := h.s.List(now, f)
		for _, l := range rows {
			fmt.Fprintf(&b, "%s pid=%d %s\n", l.TransactionalID, l.ProducerID, l.State)
		}
		if len(unknown) > 0 {
			fmt.Fprintf(&b, "unknown state filters %v\n", unknown)
		}
		if b.Len() == 0 {
			return "(none)\n"
		}
		return b.String()

	case "replay":
		// A new coordinator (coordinator epoch bumped) loads the log and
		// must hold the same state and resend the pending markers.
		h.epoch++
		fresh := NewTxnShard(h.cfg, h.ids, h.epoch)
		for _, r := range h.log {
			if err := fresh.Replay(r); err != nil {
				t.Fatalf("replay: %v", err)
			}
		}
		// Marker progress is not logged (a new coordinator resends every
		// marker of a Prepare* transaction), so pending is not compared.
		want, got := h.dump(h.s, false), h.dump(fresh, false)
		if want != got {
			t.Fatalf("replayed state differs:\nlive:\n%sreplayed:\n%s", want, got)
		}
		h.s = fresh
		fmt.Fprintf(&b, "replayed %d records, coordinator epoch %d\n", len(h.log), h.epoch)
		for _, mk := range fresh.PendingMarkers() {
			b.WriteString(fmtMarkers(mk))
		}
		b.WriteString(h.dump(fresh, true))
		return b.String()

	case "dump":
		return h.dump(h.s, true)

	case "force-epoch":
		// Setup only: moves an id's epoch (reaching epoch exhaustion by
		// 32k calls would make the script unreadable).
		h.s.txns[id].epoch = epoch
		return h.dumpOne(h.s, id, true)

	default:
		d.Fatalf(t, "unknown command %s", d.Cmd)
	}
	for _, tr := range h.trace {
		fmt.Fprintf(&b, "transition %s: %s -> %s pid=%d epoch=%d\n", tr.TransactionalID, tr.From, tr.To, tr.ProducerID, tr.ProducerEpoch)
	}
	h.trace = h.trace[:0]
	recs, markers := h.s.Drain()
	h.log = append(h.log, recs...)
	for _, r := range recs {
		b.WriteString(fmtTxnRecord(t, r))
	}
	for _, mk := range markers {
		b.WriteString(fmtMarkers(mk))
	}
	if _, err := h.s.Describe(id); err == nil {
		b.WriteString(h.dumpOne(h.s, id, true))
	}
	return b.String()
}

func txnRel(ms int64) string {
	if ms < 0 {
		return "-"
	}
	return time.UnixMilli(ms).Sub(txnT0).String()
}

func fmtParts(ps []TxnPartition) string {
	var s []string
	for _, p := range ps {
		s = append(s, fmt.Sprintf("%s-%d", p.Topic, p.Partition))
	}
	return "[" + strings.Join(s, " ") + "]"
}

func fmtMarkers(mk TxnMarkers) string {
	kind := "abort"
	if mk.Commit {
		kind = "commit"
	}
	return fmt.Sprintf("markers %s: %s pid=%d epoch=%d coord=%d %s\n", mk.TransactionalID, kind, mk.ProducerID, mk.ProducerEpoch, mk.CoordinatorEpoch, fmtParts(mk.Partitions))
}

// fmtTxnRecord decodes a record with kmsg alone, as a Kafka tool would.
func fmtTxnRecord(t *testing.T, r Record) string {
	var k kmsg.TxnMetadataKey
	if err := k.ReadFrom(r.Key); err != nil {
		t.Fatalf("key: %v", err)
	}
	if r.Value == nil {
		return fmt.Sprintf("record %s: tombstone\n", k.TransactionalID)
	}
	var v kmsg.TxnMetadataValue
	if err := v.ReadFrom(r.Value); err != nil {
		t.Fatalf("value: %v", err)
	}
	var parts []TxnPartition
	for _, tp := range v.Topics {
		for _, p := range tp.Partitions {
			parts = append(parts, TxnPartition{tp.Topic, p})
		}
	}
	extra := ""
	if v.NextProducerID >= 0 || v.PreviousProducerID >= 0 {
		extra = fmt.Sprintf(" prev=%d next=%d", v.PreviousProducerID, v.NextProducerID)
	}
	return fmt.Sprintf("record %s: v%d %s pid=%d epoch=%d%s tv=%d parts=%s\n", k.TransactionalID, v.Version, v.State, v.ProducerID, v.ProducerEpoch, extra, v.ClientTransactionVersion, fmtParts(parts))
}

func (h *txnHarness) dumpOne(s *TxnShard, id string, pending bool) string {
	m := s.txns[id]
	line := fmt.Sprintf("state %s: %s pid=%d epoch=%d timeout=%s start=%s updated=%s parts=%s",
		id, m.state, m.producerID, m.epoch, m.timeout, txnRel(m.startMs), txnRel(m.lastUpdateMs),
		fmtParts(m.sortedPartitions(m.partitions)))
	if pending {
		line += " pending=" + fmtParts(m.sortedPartitions(m.pending))
	}
	return line + "\n"
}

func (h *txnHarness) dump(s *TxnShard, pending bool) string {
	var b strings.Builder
	for _, id := range sortedKeys(s.txns) {
		b.WriteString(h.dumpOne(s, id, pending))
	}
	if b.Len() == 0 {
		return "(empty)\n"
	}
	return b.String()
}

// TestTxnRecordsRejectGarbage: replaying mangled records fails cleanly.
func TestTxnRecordsRejectGarbage(t *testing.T) {
	m := &txnMeta{id: "t", producerID: 5, prevProducer: -1, nextProducer: -1, epoch: 1, state: TxnOngoing, startMs: 1, partitions: map[TxnPartition]bool{{"a", 0}: true}}
	good := Record{Key: txnKey("t"), Value: encodeTxnValue(m)}
	s := NewTxnShard(DefaultTxnConfig(), &seqProducerIDs{}, 0)
	if err := s.Replay(good); err != nil {
		t.Fatal(err)
	}
	for i := range good.Value {
		_ = s.Replay(Record{Key: good.Key, Value: good.Value[:i]})
		c := append([]byte(nil), good.Value...)
		c[i] ^= 0xff
		_ = s.Replay(Record{Key: good.Key, Value: c})
	}
	for i := range good.Key {
		if err := s.Replay(Record{Key: good.Key[:i], Value: good.Value}); err == nil {
			t.Fatalf("key cut at %d accepted", i)
		}
	}
	bad := kmsg.NewTxnMetadataValue()
	bad.Version, bad.State = 1, 9
	if err := s.Replay(Record{Key: good.Key, Value: bad.AppendTo(nil)}); err == nil {
		t.Fatal("unknown state accepted")
	}
}
