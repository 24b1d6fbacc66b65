package queue

import (
	"fmt"
	"math/rand"
	"sort"
	"testing"
	"time"
)

// testLog is a log of record batches with compaction gaps between some of
// them; hw is how far it has been produced.
type testLog struct {
	spans []Span
	hw    int64 // offsets < hw are readable
	keys  []KeyHash
}

// withKeys gives each offset one of nkeys keys, or a null key one time in
// five, and makes read fill Span.Keys.
func (l *testLog) withKeys(rng *rand.Rand, nkeys int) {
	l.keys = make([]KeyHash, l.spans[len(l.spans)-1].Last+1)
	for o := range l.keys {
		if rng.Intn(5) != 0 {
			l.keys[o] = KeyHash(1 + rng.Intn(nkeys))
		}
	}
	for i := range l.spans {
		l.spans[i].Keys = l.keys[l.spans[i].First : l.spans[i].Last+1]
	}
}

func newTestLog(rng *rand.Rand, n int64) *testLog {
	l := &testLog{}
	off := int64(0)
	for off < n {
		if rng.Intn(8) == 0 {
			off += int64(1 + rng.Intn(3)) // compacted away
		}
		size := int64(1 + rng.Intn(8))
		l.spans = append(l.spans, Span{First: off, Last: off + size - 1})
		off += size
	}
	return l
}

// read returns up to maxBatches whole batches holding offsets >= from and
// below the high watermark.
func (l *testLog) read(from int64, maxBatches int) []Span {
	i := sort.Search(len(l.spans), func(i int) bool { return l.spans[i].Last >= from })
	var out []Span
	for ; i < len(l.spans) && len(out) < maxBatches; i++ {
		if l.spans[i].Last >= l.hw {
			break
		}
		out = append(out, l.spans[i])
	}
	return out
}

func (l *testLog) exists(off int64) bool {
	i := sort.Search(len(l.spans), func(i int) bool { return l.spans[i].Last >= off })
	return i < len(l.spans) && l.spans[i].First <= off
}

type hold struct {
	member   string
	deadline time.Time
}

// TestRandomized drives a share-partition with several members acquiring,
// acknowledging, renewing, releasing and letting locks expire at random, and
// checks after every step that no offset is held by two members, SPSO never
// moves back, an accepted record is never handed out again and gap offsets
// are never handed out. At the end every record is drained to a terminal
// state.
func TestRandomized(t *testing.T) {
	seededRuns(t, 30, func(int64) bool { return false }, false)
}

// TestRandomizedDeadLetters runs the interleavings with a dead-letter
// topic, writes of dead letters completed at random, and restarts from the
// persisted state between a write's assignment and its completion. It
// checks that a restarted partition resends exactly the write in progress
// (records and sequence), that every record given up on is written exactly
// once, and that SPSO never passes a record whose dead letter is not
// written.
func TestRandomizedDeadLetters(t *testing.T) {
	seededRuns(t, 15, func(seed int64) bool { return seed%2 == 0 }, true)
}

// TestRandomizedKeyOrder runs the same interleavings with
// share.delivery.ordering=key, a few keys and restarts from the persisted
// state, and checks besides the per-key invariant: a record is acquired only
// when every earlier record of its key is done (so never two of one key in
// flight), and each key's records are accepted in offset order. The drain
// at the end shows every record is delivered.
func TestRandomizedKeyOrder(t *testing.T) {
	seededRuns(t, 15, func(int64) bool { return true }, false)
}

// seededRuns runs the randomized interleavings for seeds 1 to n (to 5 with
// -short), each as a subtest, key-ordered when byKey says so for its seed.
func seededRuns(t *testing.T, n int, byKey func(seed int64) bool, deadLetter bool) {
	if testing.Short() {
		n = 5
	}
	for seed := int64(1); seed <= int64(n); seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { runRandomized(t, seed, 2000, byKey(seed), deadLetter) })
	}
}

func runRandomized(t *testing.T, seed int64, steps int, byKey, deadLetter bool) {
	rng := rand.New(rand.NewSource(seed))
	const total = 1500
	lg := newTestLog(rng, total)
	cfg := Config{
		LockDuration:   time.Duration(5+rng.Intn(20)) * time.Second,
		DeliveryLimit:  2 + rng.Intn(4),
		MaxInFlight:    20 + rng.Intn(200),
		ReleaseBackoff: time.Duration(rng.Intn(3)) * time.Second,
	}
	if byKey {
		cfg.Ordering = OrderKey
		lg.withKeys(rng, 1+rng.Intn(12))
	}
	cfg.DeadLetter = deadLetter
	sp := New(cfg, 0)
	if deadLetter {
		sp.SetDeadLetterProducer(7, 0)
	}
	members := []string{"a", "b", "c", "d"}
	now := base
	held := map[int64]hold{}     // model of live locks
	accepted := map[int64]bool{} // offsets ever accepted
	terminal := map[int64]bool{} // offsets archived or accepted by an ack we made
	lastStart := sp.StartOffset()
	// Dead-letter model: given up on (reported by Ready), and written (by
	// completed writes), per offset.
	givenUp, written := map[int64]bool{}, map[int64]int{}
	// takeReady checks sp's outputs and marks its dead letters terminal.
	var deadLettered []ArchivedRange
	takeReady := func() error {
		err := checkReady(sp, &deadLettered)
		for _, a := range deadLettered {
			for o := a.First; o <= a.Last; o++ {
				terminal[o] = true
				givenUp[o] = true
				delete(held, o)
			}
		}
		deadLettered = deadLettered[:0]
		return err
	}
	// Key-order model: count is each offset's last delivery count,
	// logStart the highest log start set; an offset is done once accepted,
	// rejected, dead-lettered, archived at restart or below the log start.
	count := map[int64]int16{}
	logStart := int64(0)
	lastAccepted := map[KeyHash]int64{}
	done := func(o int64) bool { return terminal[o] || o < logStart || !lg.exists(o) }
	// keyOffsets lists each key's offsets from the first not yet done.
	keyOffsets := map[KeyHash][]int64{}
	for o, k := range lg.keys {
		if k != NullKey {
			keyOffsets[k] = append(keyOffsets[k], int64(o))
		}
	}

	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf("seed %d: "+format+"\nstate:\n%s", append([]any{seed}, append(args, printState(sp))...)...)
	}
	// The write of dead letters in progress, if any.
	var inProgress *DeadLetterWrite
	seq := int64(0)
	writeDeadLetters := func(complete bool) {
		w, assigned, ok := sp.NextDeadLetters(int64(1 + rng.Intn(6)))
		if !ok {
			if inProgress != nil {
				fail("the write in progress %v is gone", inProgress.Records)
			}
			return
		}
		if !assigned && inProgress == nil || assigned && inProgress != nil {
			fail("write assigned=%t, model in progress %v", assigned, inProgress)
		}
		if inProgress != nil && fmt.Sprint(*inProgress) != fmt.Sprint(w) {
			fail("resent write %v, the one in progress was %v", w, *inProgress)
		}
		if int64(w.Producer.Sequence) != seq {
			fail("write at sequence %d, want %d", w.Producer.Sequence, seq)
		}
		inProgress = &w
		if !complete {
			return
		}
		for _, r := range w.Records {
			for o := r.First; o <= r.Last; o++ {
				if !givenUp[o] {
					fail("offset %d dead-lettered but never given up on", o)
				}
				written[o]++
			}
		}
		sp.DeadLettersWritten(w, w.Len())
		seq += w.Len()
		inProgress = nil
	}
	expire := func() {
		for o, h := range held {
			if !h.deadline.After(now) {
				delete(held, o)
			}
		}
	}
	heldBy := func(m string) []int64 {
		var offs []int64
		for o, h := range held {
			if h.member == m && h.deadline.After(now) {
				offs = append(offs, o)
			}
		}
		sort.Slice(offs, func(i, j int) bool { return offs[i] < offs[j] })
		return offs
	}
	acquire := func(m string, all bool) {
		nf := sp.NextFetchOffset(now)
		if nf < 0 {
			return
		}
		maxBatches := 1 + rng.Intn(20)
		if all {
			maxBatches = len(lg.spans)
		}
		spans := lg.read(nf, maxBatches)
		maxRecords, batch := 1+rng.Intn(60), 1+rng.Intn(30)
		strict := rng.Intn(2) == 0
		if all {
			maxRecords, batch, strict = total*2, total*2, false
		}
		sp.StartFetch(rng.Intn(4))
		got := sp.Acquire(now, m, spans, maxRecords, batch, strict)
		n := int64(0)
		prev := int64(-1)
		for _, r := range got {
			if r.First > r.Last || r.First <= prev {
				fail("bad ranges %v", got)
			}
			prev = r.Last
			if r.DeliveryCount < 1 || int(r.DeliveryCount) > cfg.DeliveryLimit {
				fail("range %v has delivery count out of [1, %d]", r, cfg.DeliveryLimit)
			}
			for o := r.First; o <= r.Last; o++ {
				n++
				if !lg.exists(o) {
					fail("offset %d handed out but not in the log", o)
				}
				if accepted[o] {
					fail("accepted offset %d acquired again by %s", o, m)
				}
				if terminal[o] {
					fail("terminal offset %d acquired again by %s", o, m)
				}
				if h, ok := held[o]; ok && h.deadline.After(now) {
					fail("offset %d acquired by %s while held by %s", o, m, h.member)
				}
				if k := lg.keys; byKey && k[o] != NullKey {
					// done only grows, so each key's cursor only moves on.
					offs := keyOffsets[k[o]]
					for len(offs) > 0 && done(offs[0]) {
						offs = offs[1:]
					}
					keyOffsets[k[o]] = offs
					if offs[0] != o {
						fail("offset %d (key %d) acquired while earlier %d is not done", o, k[o], offs[0])
					}
				}
				held[o] = hold{m, now.Add(cfg.LockDuration)}
				count[o] = r.DeliveryCount
			}
		}
		if strict && n > int64(maxRecords) {
			fail("record-limit mode acquired %d > %d", n, maxRecords)
		}
	}
	// ack acknowledges some of m's records; all valid, so it must succeed.
	ack := func(m string) {
		offs := heldBy(m)
		if len(offs) == 0 {
			return
		}
		var batches []AckBatch
		renew := rng.Intn(5) == 0
		for i := 0; i < len(offs); {
			j := i
			for j+1 < len(offs) && offs[j+1] == offs[j]+1 && rng.Intn(6) != 0 {
				j++
			}
			if rng.Intn(3) != 0 {
				b := AckBatch{First: offs[i], Last: offs[j]}
				if rng.Intn(3) == 0 {
					for o := offs[i]; o <= offs[j]; o++ {
						b.Types = append(b.Types, randType(rng, renew))
					}
				} else {
					b.Types = []AckType{randType(rng, renew)}
				}
				batches = append(batches, b)
			}
			i = j + 1
		}
		if err := sp.Acknowledge(now, m, batches, renew); err != nil {
			fail("valid ack %v by %s failed: %v", batches, m, err)
		}
		for _, b := range batches {
			for o := b.First; o <= b.Last; o++ {
				ty := b.Types[0]
				if len(b.Types) > 1 {
					ty = b.Types[o-b.First]
				}
				switch ty {
				case AckAccept:
					accepted[o] = true
					terminal[o] = true
					delete(held, o)
					if k := lg.keys; byKey && k[o] != NullKey {
						if last, ok := lastAccepted[k[o]]; ok && last > o {
							fail("key %d: offset %d accepted after %d", k[o], o, last)
						}
						lastAccepted[k[o]] = o
					}
				case AckReject, AckGap:
					terminal[o] = true
					delete(held, o)
				case AckRelease:
					delete(held, o)
				case AckRenew:
					held[o] = hold{m, now.Add(cfg.LockDuration)}
				}
			}
		}
	}
	// badAck must fail and change nothing.
	badAck := func(m string) {
		var victim int64 = -1
		for o, h := range held {
			if h.member != m && h.deadline.After(now) {
				victim = o
				break
			}
		}
		if victim < 0 {
			return
		}
		before, beforeCounts := sp.Persisted(), sp.Counts()
		mine := heldBy(m)
		var batches []AckBatch
		if len(mine) > 0 && mine[0] < victim {
			batches = append(batches, AckBatch{First: mine[0], Last: mine[0], Types: []AckType{AckAccept}})
		}
		batches = append(batches, AckBatch{First: victim, Last: victim, Types: []AckType{AckAccept}})
		if err := sp.Acknowledge(now, m, batches, false); err == nil {
			fail("ack of %d by %s succeeded while held by %s", victim, m, held[victim].member)
		}
		after := sp.Persisted()
		if fmt.Sprint(before) != fmt.Sprint(after) || beforeCounts != sp.Counts() {
			fail("failed ack changed state: %v -> %v", before, after)
		}
	}

	for step := 0; step < steps; step++ {
		now = now.Add(time.Duration(rng.Intn(1500)) * time.Millisecond)
		if lg.hw < total && rng.Intn(3) == 0 {
			lg.hw = min(total, lg.hw+int64(rng.Intn(40)))
		}
		m := members[rng.Intn(len(members))]
		switch r := rng.Intn(100); {
		case r < 40:
			acquire(m, false)
		case r < 75:
			ack(m)
		case r < 80:
			badAck(m)
		case r < 83:
			sp.ReleaseMember(now, m)
			for o, h := range held {
				if h.member == m {
					delete(held, o)
				}
			}
		case r < 84:
			// retention just above SPSO; acquired records stay acquired
			ls := sp.StartOffset() + int64(rng.Intn(5))
			sp.OnLogStart(ls)
			logStart = max(logStart, ls)
		case r < 90 && deadLetter:
			writeDeadLetters(r < 88)
		case r < 92 && (byKey || deadLetter):
			// restart from the persisted state: locks are lost and
			// records at the delivery limit are archived on load.
			sp = Restore(cfg, sp.Persisted())
			sp.OnLogStart(logStart)
			clear(held)
			for o, c := range count {
				if int(c) >= cfg.DeliveryLimit {
					terminal[o] = true
				}
			}
		default:
			sp.Tick(now)
			expire()
		}
		if err := checkInvariants(sp); err != nil {
			fail("step %d: %v", step, err)
		}
		if got, want := sp.NextFetchOffset(now), unmemoized(sp).NextFetchOffset(now); got != want {
			fail("step %d: NextFetchOffset %d from its memo, %d walking the window", step, got, want)
		}
		if err := takeReady(); err != nil {
			fail("step %d: %v", step, err)
		}
		if sp.StartOffset() < lastStart {
			fail("SPSO moved back from %d to %d", lastStart, sp.StartOffset())
		}
		lastStart = sp.StartOffset()
		for o := range givenUp {
			if deadLetter && o < sp.StartOffset() && o >= logStart && written[o] == 0 {
				fail("SPSO %d passed offset %d before its dead letter was written", sp.StartOffset(), o)
			}
		}
		for o, h := range held {
			if !h.deadline.After(now) {
				continue
			}
			if who, dl, ok := sp.Owner(o); !ok || who != h.member || !dl.Equal(h.deadline) {
				fail("offset %d: model holder %s until %s, state says %s %s %t", o, h.member, h.deadline.Sub(base), who, dl.Sub(base), ok)
			}
		}
	}

	// Drain: all records produced, locks expire, one member accepts everything.
	end := lg.spans[len(lg.spans)-1].Last + 1
	lg.hw = end
	for round := 0; ; round++ {
		if round > 100 && !byKey || round > total+100 {
			fail("not drained")
		}
		now = now.Add(time.Hour)
		sp.Tick(now)
		expire()
		if err := takeReady(); err != nil {
			fail("drain: %v", err)
		}
		acquire("z", true)
		offs := heldBy("z")
		if len(offs) > 0 {
			var batches []AckBatch
			for _, o := range offs {
				batches = append(batches, AckBatch{First: o, Last: o, Types: []AckType{AckAccept}})
			}
			if err := sp.Acknowledge(now, "z", batches, false); err != nil {
				fail("drain ack: %v", err)
			}
			for _, o := range offs {
				accepted[o] = true
				terminal[o] = true
				delete(held, o)
			}
		}
		for deadLetter && sp.Counts().DeadLettering > 0 {
			writeDeadLetters(true)
		}
		if err := checkInvariants(sp); err != nil {
			fail("drain: %v", err)
		}
		if sp.StartOffset() >= end {
			break
		}
	}
	if c := sp.Counts(); c != (Counts{}) {
		fail("records left in flight: %+v", c)
	}
	for o := range givenUp {
		if deadLetter && written[o] != 1 && o >= logStart {
			fail("offset %d dead-lettered %d times, want once", o, written[o])
		}
	}
}

// checkReady takes sp's outputs and checks them against its state: the
// state to persist is the current one, the deadline the earliest of the
// entries', and every record to dead-letter is archived or already past
// the start offset. The records to dead-letter are appended to dead.
func checkReady(sp *SharePartition, dead *[]ArchivedRange) error {
	rd := sp.Ready()
	*dead = append(*dead, rd.DeadLetter...)
	if rd.MustPersist && fmt.Sprint(rd.Persist) != fmt.Sprint(sp.Persisted()) {
		return fmt.Errorf("Ready persists %v, state is %v", rd.Persist, sp.Persisted())
	}
	var earliest int64
	sp.entries.Ascend(func(e *entry) bool {
		if e.deadline != 0 && (earliest == 0 || e.deadline < earliest) {
			earliest = e.deadline
		}
		return true
	})
	if want := time.Unix(0, earliest); earliest == 0 && !rd.Deadline.IsZero() || earliest != 0 && !rd.Deadline.Equal(want) {
		return fmt.Errorf("Ready deadline %v, entries say %v (0: none)", rd.Deadline, earliest)
	}
	for _, a := range rd.DeadLetter {
		for o := a.First; o <= a.Last; o++ {
			if e := sp.find(o); o >= sp.start && (e == nil || e.state != Archived && e.state != DeadLettering) {
				return fmt.Errorf("dead letter %d is neither archived nor waiting for its dead letter", o)
			}
		}
	}
	return nil
}

func randType(rng *rand.Rand, renew bool) AckType {
	switch r := rng.Intn(10); {
	case r < 5:
		return AckAccept
	case r < 8:
		return AckRelease
	case r < 9:
		return AckReject
	default:
		if renew {
			return AckRenew
		}
		return AckGap
	}
}

// BenchmarkAcquireAccept measures acquiring 500 records in batches of 16
// (1 KiB records in 16 KiB batches) and accepting them, as one consumer does.
func BenchmarkAcquireAccept(b *testing.B) {
	const batch, perFetch = 16, 500
	sp := New(DefaultConfig(), 0)
	now := base
	spans := make([]Span, 0, perFetch/batch+1)
	acks := make([]AckBatch, 0, 4)
	b.ReportAllocs()
	b.ResetTimer()
	records := 0
	for i := 0; i < b.N; i++ {
		now = now.Add(time.Millisecond)
		from := sp.NextFetchOffset(now)
		spans = spans[:0]
		for off := from; off < from+perFetch+batch; off += batch {
			spans = append(spans, Span{First: off, Last: off + batch - 1})
		}
		got := sp.Acquire(now, "member", spans, perFetch, perFetch, false)
		acks = acks[:0]
		for _, r := range got {
			acks = append(acks, AckBatch{First: r.First, Last: r.Last, Types: []AckType{AckAccept}})
			records += int(r.Last - r.First + 1)
		}
		if err := sp.Acknowledge(now, "member", acks, false); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(records)/b.Elapsed().Seconds(), "records/s")
}

// unmemoized is sp with the memo of its key-ordered walk dropped, so that its
// next NextFetchOffset walks the window again.
func unmemoized(sp *SharePartition) *SharePartition {
	sp.memo = readyMemo{}
	return sp
}
