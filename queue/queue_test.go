package queue

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"
	"github.com/twmb/franz-go/pkg/kerr"
)

// base is time zero of the scripts: at=31s means base+31s.
var base = time.Unix(1_700_000_000, 0)

func TestDataDriven(t *testing.T) {
	datadriven.Walk(t, "testdata", func(t *testing.T, path string) {
		var sp *SharePartition
		var dirty bool
		var keys string
		datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
			if d.Cmd == "keys" {
				// keys: the key of each offset from 0, one character
				// each, '.' for a null key; acquire passes them in spans.
				keys = strings.Join(strings.Fields(d.Input), "")
				return "ok\n"
			}
			out, err := runCmd(t, &sp, &dirty, keys, d)
			if err != nil {
				d.Fatalf(t, "%v", err)
			}
			if sp != nil {
				if err := checkInvariants(sp); err != nil {
					d.Fatalf(t, "invariant broken after %q: %v", d.Pos, err)
				}
			}
			return out
		})
	})
}

// ready takes sp's outputs; whether state is to be persisted is kept in
// dirty until the script asks with "dirty", so commands that print other
// outputs do not hide it.
func ready(sp *SharePartition, dirty *bool) Ready {
	rd := sp.Ready()
	*dirty = *dirty || rd.MustPersist
	return rd
}

func runCmd(t *testing.T, spp **SharePartition, dirty *bool, keys string, d *datadriven.TestData) (string, error) {
	sp := *spp
	if sp == nil && d.Cmd != "new" && d.Cmd != "restore" {
		return "", errors.New("no share-partition: use new or restore first")
	}
	var b strings.Builder
	switch d.Cmd {
	case "new":
		start := int64(0)
		if d.HasArg("start") {
			d.ScanArgs(t, "start", &start)
		}
		*spp, *dirty = New(scanConfig(t, d), start), false
		return printState(*spp), nil

	case "restore":
		// restore start=5 epoch=1 [config args]
		// <first>-<last> <state> <count>
		// ...
		st := PersistedState{Producer: DeadLetterProducer{ID: -1}}
		d.ScanArgs(t, "start", &st.StartOffset)
		if d.HasArg("epoch") {
			d.ScanArgs(t, "epoch", &st.StateEpoch)
		}
		for _, line := range strings.Split(strings.TrimSpace(d.Input), "\n") {
			f := strings.Fields(line)
			if len(f) == 0 {
				continue
			}
			if len(f) != 3 {
				return "", fmt.Errorf("bad batch line %q", line)
			}
			first, last, err := parseRange(f[0])
			if err != nil {
				return "", err
			}
			state, err := parseState(f[1])
			if err != nil {
				return "", err
			}
			count, err := strconv.ParseInt(f[2], 10, 16)
			if err != nil {
				return "", err
			}
			st.Batches = append(st.Batches, StateBatch{First: first, Last: last, State: state, DeliveryCount: int16(count)})
		}
		*spp, *dirty = Restore(scanConfig(t, d), st), false
		return printState(*spp), nil

	case "config":
		sp.SetConfig(scanConfig(t, d))
		c := sp.Config()
		order := ""
		if c.Ordering == OrderKey {
			order = " order=key"
		}
		return fmt.Sprintf("lock=%s limit=%d window=%d backoff=%s%s\n", c.LockDuration, c.DeliveryLimit, c.MaxInFlight, c.ReleaseBackoff, order), nil

	case "acquire":
		var member, spansArg string
		d.ScanArgs(t, "member", &member)
		d.ScanArgs(t, "spans", &spansArg)
		at := scanAt(t, d)
		maxRecords, batch := 500, 500
		if d.HasArg("max") {
			d.ScanArgs(t, "max", &maxRecords)
		}
		if d.HasArg("batch") {
			d.ScanArgs(t, "batch", &batch)
		}
		var spans []Span
		for _, r := range strings.Split(spansArg, ",") {
			// first-last:skip is a span never to deliver (Span.Skip).
			r, skip := strings.CutSuffix(r, ":skip")
			first, last, err := parseRange(r)
			if err != nil {
				return "", err
			}
			spans = append(spans, Span{First: first, Last: last, Keys: scriptKeys(keys, first, last), Skip: skip})
		}
		// members=N starts a fetch among N members (StartFetch).
		if d.HasArg("members") {
			var members int
			d.ScanArgs(t, "members", &members)
			sp.StartFetch(members)
		}
		got := sp.Acquire(at, member, spans, maxRecords, batch, d.HasArg("strict"))
		if len(got) == 0 {
			b.WriteString("acquired: none\n")
		}
		for _, r := range got {
			fmt.Fprintf(&b, "acquired: %d-%d count=%d\n", r.First, r.Last, r.DeliveryCount)
		}
		b.WriteString(printState(sp))
		return b.String(), nil

	case "ack":
		var member string
		d.ScanArgs(t, "member", &member)
		at := scanAt(t, d)
		var batches []AckBatch
		for _, a := range d.CmdArgs {
			rng, types, ok := strings.Cut(a.Key, ":")
			if !ok {
				continue
			}
			first, last, err := parseRange(rng)
			if err != nil {
				return "", err
			}
			ab := AckBatch{First: first, Last: last}
			if types != "" {
				for _, ty := range strings.Split(types, ",") {
					at, err := parseAckType(ty)
					if err != nil {
						return "", err
					}
					ab.Types = append(ab.Types, at)
				}
			}
			batches = append(batches, ab)
		}
		err := sp.Acknowledge(at, member, batches, d.HasArg("renew"))
		arch := ready(sp, dirty).DeadLetter
		if err != nil {
			var ke *kerr.Error
			if !errors.As(err, &ke) {
				return "", fmt.Errorf("ack error is not a kerr.Error: %v", err)
			}
			fmt.Fprintf(&b, "error: %s\n", ke.Message)
		} else {
			b.WriteString("ok\n")
		}
		printArchived(&b, arch)
		b.WriteString(printState(sp))
		return b.String(), nil

	case "release-member":
		var member string
		d.ScanArgs(t, "member", &member)
		sp.ReleaseMember(scanAt(t, d), member)
		printArchived(&b, ready(sp, dirty).DeadLetter)
		b.WriteString(printState(sp))
		return b.String(), nil

	case "tick":
		sp.Tick(scanAt(t, d))
		rd := ready(sp, dirty)
		fmt.Fprintf(&b, "available: %t\n", rd.Available)
		printArchived(&b, rd.DeadLetter)
		b.WriteString(printState(sp))
		return b.String(), nil

	case "log-start":
		sp.OnLogStart(scanPositional(t, d))
		return printState(sp), nil

	case "dlq-producer":
		// dlq-producer id=7 epoch=0
		var id int64
		var epoch int
		d.ScanArgs(t, "id", &id)
		d.ScanArgs(t, "epoch", &epoch)
		sp.SetDeadLetterProducer(id, int16(epoch))
		return printProducer(sp.DeadLetterProducer()), nil

	case "dlq-next":
		// dlq-next max=2: the write to make, and whether it is new.
		var max int64
		d.ScanArgs(t, "max", &max)
		w, assigned, ok := sp.NextDeadLetters(max)
		if !ok {
			return "none\n" + printState(sp), nil
		}
		fmt.Fprintf(&b, "write assigned=%t %s", assigned, printProducer(w.Producer))
		printArchived(&b, w.Records)
		*spp = sp
		lastWrite = w
		b.WriteString(printState(sp))
		return b.String(), nil

	case "dlq-written":
		// dlq-written [failed]: the last dlq-next write is done.
		n := lastWrite.Len()
		if d.HasArg("failed") {
			n = 0
		}
		sp.DeadLettersWritten(lastWrite, n)
		return printProducer(sp.DeadLetterProducer()) + printState(sp), nil

	case "reset":
		sp.Reset(scanPositional(t, d))
		return printState(sp), nil

	case "state":
		return printState(sp), nil

	case "persisted":
		st := sp.Persisted()
		fmt.Fprintf(&b, "start=%d epoch=%d\n", st.StartOffset, st.StateEpoch)
		if st.Producer.ID >= 0 {
			b.WriteString(printProducer(st.Producer))
		}
		for _, sb := range st.Batches {
			fmt.Fprintf(&b, "%d-%d %s %d\n", sb.First, sb.Last, sb.State, sb.DeliveryCount)
		}
		return b.String(), nil

	case "roundtrip":
		// Persist, restore with the same config and show the restored state.
		*spp, *dirty = Restore(sp.Config(), sp.Persisted()), false
		return printState(*spp), nil

	case "next-fetch":
		return fmt.Sprintf("%d\n", sp.NextFetchOffset(scanAt(t, d))), nil

	case "read-limit":
		// Where a read starting at NextFetchOffset may stop.
		now := scanAt(t, d)
		from := sp.NextFetchOffset(now)
		limit := sp.ReadLimit(now, from)
		if limit == math.MaxInt64 {
			return fmt.Sprintf("from=%d limit=none\n", from), nil
		}
		return fmt.Sprintf("from=%d limit=%d\n", from, limit), nil

	case "next-deadline":
		dl := ready(sp, dirty).Deadline
		if dl.IsZero() {
			return "none\n", nil
		}
		return fmt.Sprintf("%s\n", dl.Sub(base)), nil

	case "dirty":
		ready(sp, dirty)
		out := fmt.Sprintf("%t\n", *dirty)
		*dirty = false
		return out, nil

	case "owner":
		off := scanPositional(t, d)
		m, dl, ok := sp.Owner(off)
		if !ok {
			return "not acquired\n", nil
		}
		return fmt.Sprintf("%s until %s\n", m, dl.Sub(base)), nil

	}
	return "", fmt.Errorf("unknown command %q", d.Cmd)
}

func scanConfig(t *testing.T, d *datadriven.TestData) Config {
	c := DefaultConfig()
	if d.HasArg("lock") {
		c.LockDuration = scanDuration(t, d, "lock")
	}
	if d.HasArg("limit") {
		d.ScanArgs(t, "limit", &c.DeliveryLimit)
	}
	if d.HasArg("window") {
		d.ScanArgs(t, "window", &c.MaxInFlight)
	}
	if d.HasArg("backoff") {
		c.ReleaseBackoff = scanDuration(t, d, "backoff")
	}
	c.DeadLetter = d.HasArg("dlq")
	if d.HasArg("order") {
		var o string
		d.ScanArgs(t, "order", &o)
		if o == "key" {
			c.Ordering = OrderKey
		}
	}
	return c
}

// scriptKeys is the Keys of span [first, last] from a script's key string.
func scriptKeys(keys string, first, last int64) []KeyHash {
	if keys == "" {
		return nil
	}
	out := make([]KeyHash, 0, last-first+1)
	for o := first; o <= last; o++ {
		h := NullKey
		if o >= 0 && o < int64(len(keys)) && keys[o] != '.' {
			h = KeyHash(keys[o])
		}
		out = append(out, h)
	}
	return out
}

func scanDuration(t *testing.T, d *datadriven.TestData, key string) time.Duration {
	var s string
	d.ScanArgs(t, key, &s)
	v, err := time.ParseDuration(s)
	if err != nil {
		d.Fatalf(t, "%s: %v", key, err)
	}
	return v
}

func scanAt(t *testing.T, d *datadriven.TestData) time.Time {
	if !d.HasArg("at") {
		return base
	}
	return base.Add(scanDuration(t, d, "at"))
}

func scanPositional(t *testing.T, d *datadriven.TestData) int64 {
	if len(d.CmdArgs) != 1 {
		d.Fatalf(t, "want one offset")
	}
	v, err := strconv.ParseInt(d.CmdArgs[0].Key, 10, 64)
	if err != nil {
		d.Fatalf(t, "%v", err)
	}
	return v
}

func parseRange(s string) (int64, int64, error) {
	// the separator is the first '-' after the first character, so that
	// negative offsets can be written: -1--1
	a, z, ok := s, "", false
	if i := strings.Index(s[min(1, len(s)):], "-"); i >= 0 {
		a, z, ok = s[:i+1], s[i+2:], true
	}
	first, err := strconv.ParseInt(a, 10, 64)
	if err != nil {
		return 0, 0, fmt.Errorf("bad range %q", s)
	}
	if !ok {
		return first, first, nil
	}
	last, err := strconv.ParseInt(z, 10, 64)
	if err != nil {
		return 0, 0, fmt.Errorf("bad range %q", s)
	}
	return first, last, nil
}

func parseState(s string) (State, error) {
	for _, st := range []State{Available, Acquired, Acknowledged, Archived, DeadLettering} {
		if st.String() == s {
			return st, nil
		}
	}
	v, err := strconv.Atoi(s)
	return State(v), err
}

func parseAckType(s string) (AckType, error) {
	for ty := AckGap; ty <= AckRenew; ty++ {
		if ty.String() == s {
			return ty, nil
		}
	}
	v, err := strconv.Atoi(s)
	return AckType(v), err
}

// lastWrite is the write the last dlq-next command returned.
var lastWrite DeadLetterWrite

func printProducer(p DeadLetterProducer) string {
	return fmt.Sprintf("producer id=%d epoch=%d seq=%d\n", p.ID, p.Epoch, p.Sequence)
}

func printArchived(b *strings.Builder, arch []ArchivedRange) {
	for _, a := range arch {
		fmt.Fprintf(b, "archived: %d-%d count=%d (%s)\n", a.First, a.Last, a.DeliveryCount, a.Reason)
	}
}

func printState(sp *SharePartition) string {
	var b strings.Builder
	fmt.Fprintf(&b, "spso=%d speo=%d", sp.StartOffset(), sp.EndOffset())
	c := sp.Counts()
	fmt.Fprintf(&b, " | avail=%d acq=%d acked=%d arch=%d overlimit=%d", c.Available, c.Acquired, c.Acknowledged, c.Archived, c.OverLimit)
	if c.DeadLettering > 0 {
		fmt.Fprintf(&b, " dead-lettering=%d", c.DeadLettering)
	}
	b.WriteByte('\n')
	sp.entries.Ascend(func(e *entry) bool {
		fmt.Fprintf(&b, "  %d-%d %s count=%d", e.first, e.last, e.state, e.count)
		if e.owner != "" {
			fmt.Fprintf(&b, " owner=%s", e.owner)
		}
		if e.deadline != 0 {
			label := "until"
			if e.state == Available {
				label = "backoff"
			}
			fmt.Fprintf(&b, " %s=%s", label, time.Duration(e.deadline-base.UnixNano()))
		}
		if e.overLimit {
			b.WriteString(" over-limit")
		}
		if e.writing {
			b.WriteString(" writing")
		}
		b.WriteByte('\n')
		return true
	})
	return b.String()
}

// checkInvariants verifies the structure: entries cover [SPSO, SPEO] without
// holes or overlap, the first one is not terminal, neighbours differ, counts,
// the records held by each member and the deadline index agree with the
// entries.
func checkInvariants(sp *SharePartition) error {
	var err error
	next := sp.start
	var prev *entry
	var c Counts
	held := map[string]int64{}
	deadlines := 0
	sp.entries.Ascend(func(e *entry) bool {
		switch {
		case e.first != next:
			err = fmt.Errorf("entry %d-%d, want first %d", e.first, e.last, next)
		case e.last < e.first:
			err = fmt.Errorf("empty entry %d-%d", e.first, e.last)
		case prev == nil && e.state.terminal():
			err = fmt.Errorf("terminal entry %d-%d at SPSO", e.first, e.last)
		case prev != nil && prev.sameAs(e):
			err = fmt.Errorf("entries %d-%d and %d-%d should be merged", prev.first, prev.last, e.first, e.last)
		case e.state == Acquired && (e.owner == "" || e.deadline == 0):
			err = fmt.Errorf("acquired entry %d-%d without owner or deadline", e.first, e.last)
		case e.state != Acquired && e.owner != "":
			err = fmt.Errorf("entry %d-%d in state %s has an owner", e.first, e.last, e.state)
		case e.state.terminal() && e.deadline != 0:
			err = fmt.Errorf("terminal entry %d-%d has a deadline", e.first, e.last)
		case e.overLimit && e.state != Archived && e.state != DeadLettering:
			err = fmt.Errorf("entry %d-%d over limit but %s", e.first, e.last, e.state)
		}
		if err != nil {
			return false
		}
		if e.deadline != 0 {
			deadlines++
			if !sp.deadlines.Has(deadlineKey{e.deadline, e.first}) {
				err = fmt.Errorf("entry %d-%d missing from the deadline index", e.first, e.last)
				return false
			}
		}
		switch e.state {
		case Available:
			c.Available += e.size()
		case Acquired:
			c.Acquired += e.size()
			held[e.owner] += e.size()
		case Acknowledged:
			c.Acknowledged += e.size()
		case Archived:
			c.Archived += e.size()
			if e.overLimit {
				c.OverLimit += e.size()
			}
		case DeadLettering:
			c.DeadLettering += e.size()
		}
		if e.writing && e.state != DeadLettering {
			err = fmt.Errorf("entry %d-%d in state %s is being dead-lettered", e.first, e.last, e.state)
			return false
		}
		next = e.last + 1
		prev = e
		return true
	})
	if err != nil {
		return err
	}
	if next-1 != sp.end {
		return fmt.Errorf("entries end at %d, SPEO %d", next-1, sp.end)
	}
	if c != sp.counts {
		return fmt.Errorf("counts %+v, entries say %+v", sp.counts, c)
	}
	if deadlines != sp.deadlines.Len() {
		return fmt.Errorf("deadline index has %d keys, entries %d", sp.deadlines.Len(), deadlines)
	}
	if !maps.Equal(held, sp.held) {
		return fmt.Errorf("records held by member %v, entries say %v", sp.held, held)
	}
	return checkKeyInvariants(sp)
}

// checkKeyInvariants verifies the key index: it holds only non-terminal
// in-flight records at or below known, each key's list is ascending and
// agrees with the slots (only its head is not blocked), and only a key's
// head may be ACQUIRED.
func checkKeyInvariants(sp *SharePartition) error {
	ko := &sp.keys
	if ko.known > sp.end && sp.entries.Len() > 0 {
		return fmt.Errorf("keys known through %d past SPEO %d", ko.known, sp.end)
	}
	n := 0
	for h, q := range ko.byKey {
		if len(q) == 0 {
			return fmt.Errorf("key %d has an empty list", h)
		}
		for i, o := range q {
			n++
			if i > 0 && q[i-1] >= o {
				return fmt.Errorf("key %d list %v not ascending", h, q)
			}
			if s := ko.slot(o); s == nil || s.h != h || s.blocked != (i > 0) {
				return fmt.Errorf("offset %d listed under key %d at %d, its slot says %+v", o, h, i, s)
			}
			e := sp.find(o)
			if e == nil || e.state.terminal() || o > ko.known {
				return fmt.Errorf("offset %d of key %d is not a live known record", o, h)
			}
			if i > 0 && e.state == Acquired {
				return fmt.Errorf("offset %d of key %d acquired behind %d", o, h, q[0])
			}
		}
	}
	registered := 0
	for _, s := range ko.slots {
		if s.h != NullKey {
			registered++
		}
	}
	if n != registered {
		return fmt.Errorf("%d slots registered, lists hold %d", registered, n)
	}
	if len(ko.slots) > 0 && ko.slots[0].h == NullKey {
		return fmt.Errorf("slots start with an empty one at %d", ko.base)
	}
	return nil
}
