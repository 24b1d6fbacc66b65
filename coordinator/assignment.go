package coordinator

import (
	"bytes"
	"fmt"
	"io"
	"slices"
	"sort"
	"time"
)

// Helpers shared by the consumer and share group state machines. Both keep
// assignments as a map from topic id to a sorted, duplicate-free partition
// list (consumerAssignment, sgAssignment).

// sortedKeys returns the keys of m in ascending order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// groupDescribeOps is the authorized-operations bit set a group describe
// reports when nothing restricts it: READ, DELETE, DESCRIBE,
// DESCRIBE_CONFIGS, ALTER_CONFIGS.
const groupDescribeOps int32 = 1<<3 | 1<<6 | 1<<8 | 1<<10 | 1<<11

// hashTopicMetadata writes to h, for each of names (sorted and
// duplicate-free), the topic's id and partition count, or its absence; a
// nil topics finds none. The text is part of the stored metadata hash of
// consumer and share groups, so it must not change between versions.
func hashTopicMetadata(h io.Writer, names []string, topics TopicsView) {
	for _, name := range names {
		var (
			id [16]byte
			n  int32
			ok bool
		)
		if topics != nil {
			id, n, ok = topics.TopicByName(name)
		}
		if ok {
			fmt.Fprintf(h, "t %q %x %d\n", name, id, n)
		} else {
			fmt.Fprintf(h, "t %q absent\n", name)
		}
	}
}

// setMetaHash stores h in *cur and reports whether it differed; a change
// sets *dirty, as the group's stored header must be written again.
func setMetaHash(cur *uint64, dirty *bool, h uint64) bool {
	if h == *cur {
		return false
	}
	*cur = h
	*dirty = true
	return true
}

// positiveOr returns v, or def where v is not positive: a setting left
// zero (or set negative) takes Kafka's default.
func positiveOr[T int | time.Duration](v, def T) T {
	if v <= 0 {
		return def
	}
	return v
}

// sortedUniqueStrings returns a sorted, duplicate-free copy of ss; it is
// never nil.
func sortedUniqueStrings(ss []string) []string {
	out := append([]string{}, ss...)
	slices.Sort(out)
	return slices.Compact(out)
}

// sortedUniquePartitions returns a sorted, duplicate-free copy of ps.
func sortedUniquePartitions(ps []int32) []int32 {
	out := append([]int32(nil), ps...)
	slices.Sort(out)
	return slices.Compact(out)
}

// sortedTopicIDs returns the topics of a that have partitions, in byte order.
func sortedTopicIDs(a map[[16]byte][]int32) [][16]byte {
	ts := make([][16]byte, 0, len(a))
	for t, ps := range a {
		if len(ps) > 0 {
			ts = append(ts, t)
		}
	}
	sort.Slice(ts, func(i, j int) bool { return bytes.Compare(ts[i][:], ts[j][:]) < 0 })
	return ts
}

// equalAssignment reports whether a and b hold the same partitions, ignoring
// topics with none.
func equalAssignment(a, b map[[16]byte][]int32) bool {
	n := 0
	for t, ps := range a {
		if len(ps) == 0 {
			continue
		}
		n++
		if !slices.Equal(ps, b[t]) {
			return false
		}
	}
	for _, qs := range b {
		if len(qs) > 0 {
			n--
		}
	}
	return n == 0
}
