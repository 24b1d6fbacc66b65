package integration

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// The checker of the cluster scenarios: what the clients saw is recorded
// as events while a scenario runs, and checked afterwards by pure functions
// over those events, so that each check can be shown to catch a planted
// violation.

// loggedRecord is one record read back from a partition.
type loggedRecord struct {
	offset int64
	value  string
}

// commitSample is a consumer group's committed offset of one partition as
// a sampler saw it.
type commitSample struct {
	at        time.Time
	partition int32
	offset    int64
}

// shareEventKind is what happened to a share-group record.
type shareEventKind int

const (
	// shareDelivered: a worker's poll returned the record.
	shareDelivered shareEventKind = iota
	// shareAckSent: a worker sent an acknowledgement for the record and
	// the broker's answer was not (known to be) a success.
	shareAckSent
	// shareAckOK: the broker answered the record's acknowledgement with
	// success.
	shareAckOK
)

func (k shareEventKind) String() string {
	switch k {
	case shareDelivered:
		return "delivered"
	case shareAckSent:
		return "ack sent"
	case shareAckOK:
		return "ack ok"
	}
	return fmt.Sprintf("kind(%d)", int(k))
}

// recordKey names a record: partition and offset.
type recordKey struct {
	partition int32
	offset    int64
}

func (k recordKey) String() string { return fmt.Sprintf("%d/%d", k.partition, k.offset) }

// shareEvent is one delivery or acknowledgement of a share-group record.
// seq orders all events of a run (taken under one lock, in wall-clock
// order of observation).
type shareEvent struct {
	seq    int64
	at     time.Time
	worker int
	kind   shareEventKind
	rec    recordKey
	value  string
	ack    kgo.AckStatus // for the ack kinds
	count  int32         // delivery count, for deliveries
}

func (e shareEvent) String() string {
	s := fmt.Sprintf("#%d %s worker %d %s %s %q", e.seq, e.at.Format("15:04:05.000"), e.worker, e.kind, e.rec, e.value)
	if e.kind == shareDelivered {
		return s + fmt.Sprintf(" (delivery %d)", e.count)
	}
	return s + " " + e.ack.String()
}

// chaosRecorder collects the events of a scenario from many goroutines.
type chaosRecorder struct {
	mu      sync.Mutex
	seq     int64
	share   []shareEvent
	commits []commitSample
}

// shareEvents appends events, numbering them in the order given.
func (r *chaosRecorder) shareEvents(evs ...shareEvent) {
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range evs {
		r.seq++
		e.seq, e.at = r.seq, now
		r.share = append(r.share, e)
	}
}

func (r *chaosRecorder) commit(s commitSample) {
	r.mu.Lock()
	r.commits = append(r.commits, s)
	r.mu.Unlock()
}

func (r *chaosRecorder) snapshot() ([]shareEvent, []commitSample) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.share), slices.Clone(r.commits)
}

// countShare counts events of a kind and ack type (ack ignored for
// deliveries).
func (r *chaosRecorder) countShare(kind shareEventKind, ack kgo.AckStatus) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, e := range r.share {
		if e.kind == kind && (kind == shareDelivered || e.ack == ack) {
			n++
		}
	}
	return n
}

// violations collects a check's findings, keeping the first few in full.
type violations struct {
	n     int
	lines []string
}

const maxViolationLines = 20

func (v *violations) add(format string, args ...any) {
	v.n++
	if len(v.lines) < maxViolationLines {
		v.lines = append(v.lines, fmt.Sprintf(format, args...))
	}
}

func (v *violations) list() []string {
	if v.n > len(v.lines) {
		return append(v.lines, fmt.Sprintf("... and %d more", v.n-len(v.lines)))
	}
	return v.lines
}

// checkProducedLog checks the partitions read back against the values the
// producer got acknowledgements for: the offsets are contiguous from 0, no
// value is stored twice, and every acknowledged value is there, in the
// order of its acknowledgement.
func checkProducedLog(acked map[int32][]string, logs map[int32][]loggedRecord) []string {
	var v violations
	parts := make([]int32, 0, len(logs))
	for p := range logs {
		parts = append(parts, p)
	}
	slices.Sort(parts)
	pos := map[int32]map[string]int{}
	for _, p := range parts {
		pos[p] = map[string]int{}
		for i, r := range logs[p] {
			if r.offset != int64(i) {
				v.add("partition %d: record %d of the log has offset %d (gap or repeat)", p, i, r.offset)
			}
			if j, dup := pos[p][r.value]; dup {
				v.add("partition %d: value %q stored twice (offsets %d and %d)", p, r.value, logs[p][j].offset, r.offset)
				continue
			}
			pos[p][r.value] = i
		}
	}
	ackedParts := make([]int32, 0, len(acked))
	for p := range acked {
		ackedParts = append(ackedParts, p)
	}
	slices.Sort(ackedParts)
	for _, p := range ackedParts {
		last, lastV := -1, ""
		for _, val := range acked[p] {
			i, ok := pos[p][val]
			if !ok {
				v.add("partition %d: acknowledged value %q is missing", p, val)
				continue
			}
			if i <= last {
				v.add("partition %d: acknowledged value %q (offset %d) is stored before %q (offset %d), acknowledged earlier", p, val, i, lastV, last)
			}
			last, lastV = i, val
		}
	}
	return v.list()
}

// checkCommitsForward checks that no partition's sampled committed offset
// is lower than an earlier sample of it.
func checkCommitsForward(samples []commitSample) []string {
	var v violations
	type high struct {
		offset int64
		at     time.Time
	}
	highest := map[int32]high{}
	for _, s := range samples {
		h, ok := highest[s.partition]
		if ok && s.offset < h.offset {
			v.add("partition %d: committed offset %d at %s, after %d at %s", s.partition, s.offset, s.at.Format("15:04:05.000"), h.offset, h.at.Format("15:04:05.000"))
			continue
		}
		if !ok || s.offset > h.offset {
			highest[s.partition] = high{s.offset, s.at}
		}
	}
	return v.list()
}

// checkNoDeliveryAfterAck checks that no record was delivered again after
// an acknowledgement of it that ends its delivery (ACCEPT or REJECT) was
// answered with success. A RELEASE makes the record available again, so
// its success allows later deliveries.
func checkNoDeliveryAfterAck(events []shareEvent) []string {
	events = slices.Clone(events)
	slices.SortFunc(events, func(a, b shareEvent) int { return int(a.seq - b.seq) })
	var v violations
	done := map[recordKey]shareEvent{}
	for _, e := range events {
		switch e.kind {
		case shareAckOK:
			if e.ack == kgo.AckAccept || e.ack == kgo.AckReject {
				if _, ok := done[e.rec]; !ok {
					done[e.rec] = e
				}
			}
		case shareDelivered:
			if a, ok := done[e.rec]; ok {
				v.add("record %s delivered again after a confirmed %s: %s, then %s", e.rec, a.ack, a, e)
			}
		}
	}
	return v.list()
}

// checkShareCoverage checks that every acknowledged produced record (its
// offset from the log read back) was accepted by a worker at least once or
// is on the dead-letter topic (dead: the partition/offset of the records
// there, from their headers).
func checkShareCoverage(acked map[int32][]string, logs map[int32][]loggedRecord, events []shareEvent, dead map[recordKey]bool) []string {
	var v violations
	accepted := map[recordKey]bool{}
	rejected := map[recordKey]bool{}
	delivered := map[recordKey]int{}
	for _, e := range events {
		switch {
		case e.kind == shareDelivered:
			delivered[e.rec]++
		case e.ack == kgo.AckAccept:
			accepted[e.rec] = true
		case e.ack == kgo.AckReject:
			rejected[e.rec] = true
		}
	}
	offsets := map[int32]map[string]int64{}
	for p, recs := range logs {
		offsets[p] = map[string]int64{}
		for _, r := range recs {
			offsets[p][r.value] = r.offset
		}
	}
	parts := make([]int32, 0, len(acked))
	for p := range acked {
		parts = append(parts, p)
	}
	slices.Sort(parts)
	for _, p := range parts {
		for _, val := range acked[p] {
			off, ok := offsets[p][val]
			if !ok {
				continue // missing from the log: checkProducedLog reports it
			}
			k := recordKey{p, off}
			if accepted[k] || dead[k] {
				continue
			}
			switch {
			case rejected[k]:
				v.add("record %s (%q) was rejected but is not on the dead-letter topic", k, val)
			case delivered[k] > 0:
				v.add("record %s (%q) was delivered %d times, never accepted, and is not on the dead-letter topic", k, val, delivered[k])
			default:
				v.add("record %s (%q) was never delivered to the share group", k, val)
			}
		}
	}
	return v.list()
}

// report fails t with a check's violations.
func report(t *testing.T, check string, found []string) {
	t.Helper()
	if len(found) > 0 {
		t.Errorf("%s: %d violation line(s):\n  %s", check, len(found), strings.Join(found, "\n  "))
	}
}

// ---------------------------------------------------------------------------
// The checks against planted violations
// ---------------------------------------------------------------------------

func logOf(vals ...string) []loggedRecord {
	out := make([]loggedRecord, len(vals))
	for i, v := range vals {
		out[i] = loggedRecord{int64(i), v}
	}
	return out
}

func TestCheckerProducedLog(t *testing.T) {
	acked := map[int32][]string{0: {"a", "b", "c"}, 1: {"x"}}
	if got := checkProducedLog(acked, map[int32][]loggedRecord{0: logOf("a", "u", "b", "c"), 1: logOf("x")}); len(got) != 0 {
		t.Errorf("a clean log (with an unacknowledged record) reported: %v", got)
	}
	cases := map[string]map[int32][]loggedRecord{
		"lost":      {0: logOf("a", "c"), 1: logOf("x")},
		"reordered": {0: logOf("a", "c", "b"), 1: logOf("x")},
		"twice":     {0: logOf("a", "b", "b", "c"), 1: logOf("x")},
		"gap":       {0: {{0, "a"}, {1, "b"}, {3, "c"}}, 1: logOf("x")},
		"partition": {0: logOf("a", "b", "c")},
	}
	for name, logs := range cases {
		if got := checkProducedLog(acked, logs); len(got) == 0 {
			t.Errorf("%s: not caught", name)
		}
	}
}

func TestCheckerCommitsForward(t *testing.T) {
	t0 := time.Now()
	at := func(i int) time.Time { return t0.Add(time.Duration(i) * time.Millisecond) }
	ok := []commitSample{{at(0), 0, 5}, {at(1), 1, 2}, {at(2), 0, 5}, {at(3), 0, 9}, {at(4), 1, 3}}
	if got := checkCommitsForward(ok); len(got) != 0 {
		t.Errorf("forward-only commits reported: %v", got)
	}
	back := append(slices.Clone(ok), commitSample{at(5), 0, 8})
	if got := checkCommitsForward(back); len(got) != 1 {
		t.Errorf("a commit going back from 9 to 8: got %v, want one violation", got)
	}
}

func TestCheckerNoDeliveryAfterAck(t *testing.T) {
	r := recordKey{0, 7}
	del := func(w int) shareEvent { return shareEvent{worker: w, kind: shareDelivered, rec: r, value: "v"} }
	ack := func(w int, kind shareEventKind, s kgo.AckStatus) shareEvent {
		return shareEvent{worker: w, kind: kind, rec: r, value: "v", ack: s}
	}
	run := func(evs ...shareEvent) []string {
		var rec chaosRecorder
		rec.shareEvents(evs...)
		evs, _ = rec.snapshot()
		slices.Reverse(evs) // the check orders by seq, not by slice order
		return checkNoDeliveryAfterAck(evs)
	}
	fine := [][]shareEvent{
		{del(1), ack(1, shareAckOK, kgo.AckAccept)},
		{del(1), ack(1, shareAckOK, kgo.AckRelease), del(2), ack(2, shareAckOK, kgo.AckAccept)},
		// An ack that failed (or whose answer was lost) does not end
		// the delivery.
		{del(1), ack(1, shareAckSent, kgo.AckAccept), del(2), ack(2, shareAckOK, kgo.AckAccept)},
	}
	for i, evs := range fine {
		if got := run(evs...); len(got) != 0 {
			t.Errorf("legitimate history %d reported: %v", i, got)
		}
	}
	bad := [][]shareEvent{
		{del(1), ack(1, shareAckOK, kgo.AckAccept), del(2)},
		{del(1), ack(1, shareAckOK, kgo.AckReject), del(1)},
		{del(1), ack(1, shareAckOK, kgo.AckRelease), del(2), ack(2, shareAckOK, kgo.AckAccept), del(1)},
	}
	for i, evs := range bad {
		if got := run(evs...); len(got) != 1 {
			t.Errorf("planted redelivery %d: got %v, want one violation", i, got)
		}
	}
	// Another record's ack does not end this one's delivery.
	other := ack(1, shareAckOK, kgo.AckAccept)
	other.rec = recordKey{1, 7}
	if got := run(del(1), other, del(2)); len(got) != 0 {
		t.Errorf("an ack of partition 1 ended a delivery of partition 0: %v", got)
	}
}

func TestCheckerShareCoverage(t *testing.T) {
	acked := map[int32][]string{0: {"a", "b", "c"}}
	logs := map[int32][]loggedRecord{0: logOf("a", "b", "c")}
	ev := func(kind shareEventKind, off int64, s kgo.AckStatus) shareEvent {
		return shareEvent{kind: kind, rec: recordKey{0, off}, ack: s}
	}
	full := []shareEvent{
		ev(shareDelivered, 0, 0), ev(shareAckOK, 0, kgo.AckAccept),
		ev(shareDelivered, 1, 0), ev(shareAckOK, 1, kgo.AckReject),
		ev(shareDelivered, 2, 0), ev(shareAckOK, 2, kgo.AckRelease),
		ev(shareDelivered, 2, 0), ev(shareAckSent, 2, kgo.AckAccept),
	}
	dead := map[recordKey]bool{{0, 1}: true}
	if got := checkShareCoverage(acked, logs, full, dead); len(got) != 0 {
		t.Errorf("full coverage reported: %v", got)
	}
	if got := checkShareCoverage(acked, logs, full, nil); len(got) != 1 {
		t.Errorf("a rejected record missing from the dead-letter topic: got %v, want one violation", got)
	}
	if got := checkShareCoverage(acked, logs, full[:6], dead); len(got) != 1 {
		t.Errorf("a released, never accepted record: got %v, want one violation", got)
	}
	if got := checkShareCoverage(acked, logs, full[2:], dead); len(got) != 1 {
		t.Errorf("a never delivered record: got %v, want one violation", got)
	}
}
