package coordinator

import (
	"bytes"
	"slices"
	"sort"
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
