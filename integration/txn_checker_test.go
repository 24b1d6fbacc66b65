package integration

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// The exactly-once checker of a consume-transform-produce pipeline A -> B:
// every input record of A (partition p, offset o) becomes one output record
// in partition p of B whose value names its input ("p/o"). The checks are
// pure functions over what the test read back:
//
//   - the log of B as stored, read with read_uncommitted including the
//     transaction markers (rawEntry), which decides each output's outcome;
//   - what a read_committed reader of B got (eosRead);
//   - the group's committed offsets on A.

// rawEntry is one record or marker of B's log, in log order per partition.
type rawEntry struct {
	Offset     int64
	ProducerID int64
	Marker     bool // a control record: its transaction's end
	Commit     bool // for a marker: commit (else abort)
	Value      string
}

// eosRead is one record a read_committed reader of B got.
type eosRead struct {
	Partition int32
	Offset    int64
	Value     string
}

// txnOutcomes decides, from one partition's log, which record offsets belong
// to committed transactions (true) or aborted ones (false). A record whose
// producer has no marker after it is undecided and absent from the map;
// undecided lists those.
func txnOutcomes(log []rawEntry) (outcome map[int64]bool, undecided []int64) {
	outcome = map[int64]bool{}
	open := map[int64][]int64{} // producer id -> offsets of its open transaction
	for _, e := range log {
		if !e.Marker {
			open[e.ProducerID] = append(open[e.ProducerID], e.Offset)
			continue
		}
		for _, o := range open[e.ProducerID] {
			outcome[o] = e.Commit
		}
		delete(open, e.ProducerID)
	}
	for _, offs := range open {
		undecided = append(undecided, offs...)
	}
	slices.Sort(undecided)
	return outcome, undecided
}

// checkEOS returns every violation of exactly-once the evidence shows:
//   - an aborted read: the read_committed reader got a record whose
//     transaction aborted (or is undecided);
//   - a duplicate: an input's output was read more than once;
//   - a loss: an input below the group's committed offset has no output
//     (a committed offset skipping an unwritten output), or, with
//     complete, any input has none;
//   - an order violation: in a partition, outputs' input offsets do not
//     increase;
//   - an undecided transaction left in the log (no marker after it).
//
// inputs[p] is the number of input records of partition p; committed[p] the
// group's committed offset on A (absent: none).
func checkEOS(inputs map[int32]int64, committed map[int32]int64, log map[int32][]rawEntry, read []eosRead, complete bool) []string {
	var bad []string
	outcomes := map[int32]map[int64]bool{}
	for p, entries := range log {
		o, undecided := txnOutcomes(entries)
		outcomes[p] = o
		if len(undecided) > 0 {
			bad = append(bad, fmt.Sprintf("partition %d: records at %v have no marker", p, undecided))
		}
	}
	seen := map[string]int{}
	last := map[int32]int64{}
	for _, r := range read {
		if c, ok := outcomes[r.Partition][r.Offset]; !ok || !c {
			bad = append(bad, fmt.Sprintf("aborted read: %s at %d/%d is not of a committed transaction", r.Value, r.Partition, r.Offset))
		}
		seen[r.Value]++
		if seen[r.Value] == 2 {
			bad = append(bad, fmt.Sprintf("duplicate: input %s has more than one output", r.Value))
		}
		var ip int32
		var io int64
		if _, err := fmt.Sscanf(r.Value, "%d/%d", &ip, &io); err != nil || ip != r.Partition {
			bad = append(bad, fmt.Sprintf("output %q at %d/%d does not name an input of its partition", r.Value, r.Partition, r.Offset))
			continue
		}
		if prev, ok := last[ip]; ok && io <= prev {
			bad = append(bad, fmt.Sprintf("out of order: partition %d has input %d after %d", ip, io, prev))
		}
		last[ip] = io
	}
	for p, n := range inputs {
		upto := committed[p]
		if complete {
			upto = n
		}
		for o := range min(upto, n) {
			if seen[fmt.Sprintf("%d/%d", p, o)] == 0 {
				what := "loss"
				if !complete || o < committed[p] {
					what = "committed offset skips an unwritten output"
				}
				bad = append(bad, fmt.Sprintf("%s: input %d/%d has no output (committed offset %d)", what, p, o, committed[p]))
			}
		}
	}
	return bad
}

// The checker finds each violation planted in an otherwise clean run.
func TestEOSCheckerFindsViolations(t *testing.T) {
	// Partition 0: inputs 0-2 in a committed transaction (offsets 0-2,
	// marker 3); an aborted attempt at input 3 (4, marker 5); input 3
	// again, committed (6, marker 7).
	cleanLog := func() map[int32][]rawEntry {
		return map[int32][]rawEntry{0: {
			{Offset: 0, ProducerID: 1, Value: "0/0"}, {Offset: 1, ProducerID: 1, Value: "0/1"}, {Offset: 2, ProducerID: 1, Value: "0/2"},
			{Offset: 3, ProducerID: 1, Marker: true, Commit: true},
			{Offset: 4, ProducerID: 1, Value: "0/3"}, {Offset: 5, ProducerID: 1, Marker: true},
			{Offset: 6, ProducerID: 2, Value: "0/3"}, {Offset: 7, ProducerID: 2, Marker: true, Commit: true},
		}}
	}
	cleanRead := func() []eosRead {
		return []eosRead{{0, 0, "0/0"}, {0, 1, "0/1"}, {0, 2, "0/2"}, {0, 6, "0/3"}}
	}
	inputs := map[int32]int64{0: 4}
	committed := map[int32]int64{0: 4}
	if bad := checkEOS(inputs, committed, cleanLog(), cleanRead(), true); len(bad) != 0 {
		t.Fatalf("clean run reported %v", bad)
	}
	cases := []struct {
		name      string
		plant     func(log map[int32][]rawEntry, read *[]eosRead, committed map[int32]int64)
		complete  bool
		violation string
	}{
		{"duplicate", func(_ map[int32][]rawEntry, read *[]eosRead, _ map[int32]int64) {
			*read = append(*read, eosRead{0, 6, "0/3"})
		}, true, "duplicate"},
		{"loss", func(_ map[int32][]rawEntry, read *[]eosRead, committed map[int32]int64) {
			*read = (*read)[:3]
			committed[0] = 3
		}, true, "loss"},
		{"aborted read", func(_ map[int32][]rawEntry, read *[]eosRead, _ map[int32]int64) {
			(*read)[3] = eosRead{0, 4, "0/3"}
		}, true, "aborted read"},
		{"out of order", func(_ map[int32][]rawEntry, read *[]eosRead, _ map[int32]int64) {
			(*read)[1], (*read)[2] = (*read)[2], (*read)[1]
		}, true, "out of order"},
		{"committed offset skips an unwritten output", func(_ map[int32][]rawEntry, read *[]eosRead, _ map[int32]int64) {
			*read = (*read)[:3]
		}, false, "committed offset skips"},
		{"undecided transaction", func(log map[int32][]rawEntry, _ *[]eosRead, _ map[int32]int64) {
			log[0] = append(log[0], rawEntry{Offset: 8, ProducerID: 3, Value: "0/4"})
		}, true, "no marker"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			log, read, comm := cleanLog(), cleanRead(), map[int32]int64{0: committed[0]}
			c.plant(log, &read, comm)
			bad := checkEOS(inputs, comm, log, read, c.complete)
			if !slices.ContainsFunc(bad, func(s string) bool { return strings.Contains(s, c.violation) }) {
				t.Fatalf("planted %s, checker reported %v", c.name, bad)
			}
		})
	}
}
