package replica

import (
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// named lists the partitions and forgotten partitions a fetch names.
func named(req *kmsg.FetchRequest) (parts, forgotten []int32) {
	for _, rt := range req.Topics {
		for _, rp := range rt.Partitions {
			parts = append(parts, rp.Partition)
		}
	}
	for _, ft := range req.ForgottenTopics {
		forgotten = append(forgotten, ft.Partitions...)
	}
	slices.Sort(parts)
	slices.Sort(forgotten)
	return parts, forgotten
}

// The follower's session: a full fetch first, then only the partitions
// whose position changed and the ones dropped; a session error starts
// over with a full fetch.
func TestLeaderSessionNamesOnlyChanges(t *testing.T) {
	var s leaderSession
	want := map[fetchKey]sessionPart{{"t", 0}: {fetchOffset: 5}, {"t", 1}: {fetchOffset: 7}, {"t", 2}: {fetchOffset: 0}}
	step := func(want map[fetchKey]sessionPart, respID int32, wantID, wantEpoch int32, wantParts, wantForgotten []int32) {
		t.Helper()
		req := kmsg.NewPtrFetchRequest()
		s.fill(req, want, 1<<20)
		parts, forgotten := named(req)
		if req.SessionID != wantID || req.SessionEpoch != wantEpoch || !slices.Equal(parts, wantParts) || !slices.Equal(forgotten, wantForgotten) {
			t.Fatalf("fetch: session %d epoch %d, partitions %v, forgotten %v; want session %d epoch %d, partitions %v, forgotten %v",
				req.SessionID, req.SessionEpoch, parts, forgotten, wantID, wantEpoch, wantParts, wantForgotten)
		}
		resp := kmsg.NewPtrFetchResponse()
		resp.SessionID = respID
		s.answered(req, resp, want)
	}
	step(want, 42, 0, 0, []int32{0, 1, 2}, nil)
	step(want, 42, 42, 1, nil, nil)
	next := map[fetchKey]sessionPart{{"t", 0}: {fetchOffset: 6}, {"t", 1}: {fetchOffset: 7}}
	step(next, 42, 42, 2, []int32{0}, []int32{2})
	step(next, 42, 42, 3, nil, nil)

	s.failed(kerr.InvalidFetchSessionEpoch.Code)
	step(next, 43, 42, 0, []int32{0, 1}, nil) // closes 42, makes 43
	step(next, 43, 43, 1, nil, nil)
	s.failed(kerr.FetchSessionIDNotFound.Code)
	step(next, 0, 0, 0, []int32{0, 1}, nil) // the leader keeps no session
	step(next, 44, 0, 0, []int32{0, 1}, nil)
	step(next, 44, 44, 1, nil, nil)
}
