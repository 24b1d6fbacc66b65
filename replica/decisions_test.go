package replica

import (
	"slices"
	"testing"
	"time"
)

func TestISRHighWatermark(t *testing.T) {
	const self = 1
	fetched := func(leo int64) *followerState { return &followerState{leo: leo} }
	for _, c := range []struct {
		name      string
		leo       int64
		isr       []int32
		followers map[int32]*followerState
		want      int64
		ok        bool
	}{
		{"leader alone owns its log end", 10, []int32{1}, nil, 10, true},
		{"smallest ISR log end", 10, []int32{1, 2, 3}, map[int32]*followerState{2: fetched(7), 3: fetched(9)}, 7, true},
		{"followers outside the ISR do not hold it back", 10, []int32{1, 3}, map[int32]*followerState{2: fetched(0), 3: fetched(9)}, 9, true},
		{"an ISR follower that has not fetched this epoch holds it", 10, []int32{1, 2}, map[int32]*followerState{2: newFollowerState(time.Time{})}, 0, false},
		{"an ISR follower unknown to the leader holds it", 10, []int32{1, 2}, map[int32]*followerState{}, 0, false},
		{"a follower at the leader's end", 10, []int32{1, 2}, map[int32]*followerState{2: fetched(10)}, 10, true},
	} {
		hw, ok := isrHighWatermark(c.leo, self, c.isr, c.followers)
		if ok != c.ok || (ok && hw != c.want) {
			t.Errorf("%s: isrHighWatermark = %d, %v; want %d, %v", c.name, hw, ok, c.want, c.ok)
		}
	}
}

// A follower is caught up when it fetches from the leader's log end, and
// was caught up at its previous fetch when it now fetches from at least
// where the leader's end was then (Kafka's Replica.updateFetchState).
func TestFollowerFetchedCaughtUp(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	f := newFollowerState(t0)
	steps := []struct {
		fetch, leaderLEO int64
		at               time.Time
		wantCaughtUp     time.Time
	}{
		{10, 10, at(1), at(1)}, // at the end: caught up now
		{10, 20, at(2), at(1)}, // reached the end of its previous fetch (10) at at(1), no later
		{15, 30, at(3), at(1)}, // short of the previous fetch's end (20)
		{20, 40, at(4), at(1)}, // still short of 30
		{30, 40, at(5), at(1)}, // short of the previous end, 40
		{40, 50, at(6), at(5)}, // reached 40, the end at its previous fetch at(5)
	}
	for i, s := range steps {
		f.fetched(s.fetch, s.leaderLEO, s.at)
		if f.leo != s.fetch {
			t.Errorf("step %d: follower log end %d, want %d", i, f.leo, s.fetch)
		}
		if !f.lastCaughtUp.Equal(s.wantCaughtUp) {
			t.Errorf("step %d: last caught up %v, want %v", i, f.lastCaughtUp.Sub(t0), s.wantCaughtUp.Sub(t0))
		}
	}
}

func TestLaggingDropped(t *testing.T) {
	const self, lag = 1, 10 * time.Second
	now := time.Unix(1000, 0)
	follower := func(leo int64, caughtUpAgo time.Duration) *followerState {
		return &followerState{leo: leo, lastCaughtUp: now.Add(-caughtUpAgo)}
	}
	for _, c := range []struct {
		name      string
		isr       []int32
		followers map[int32]*followerState
		want      []int32 // nil: no change
	}{
		{"all recent", []int32{1, 2, 3}, map[int32]*followerState{2: follower(5, time.Second), 3: follower(5, lag)}, nil},
		{"one lags longer than the lag time", []int32{1, 2, 3}, map[int32]*followerState{2: follower(5, lag+time.Millisecond), 3: follower(5, time.Second)}, []int32{1, 3}},
		{"at the leader's end it stays however old", []int32{1, 2}, map[int32]*followerState{2: follower(50, time.Hour)}, nil},
		{"every follower lags", []int32{1, 2, 3}, map[int32]*followerState{2: follower(5, time.Hour), 3: follower(5, time.Hour)}, []int32{1}},
		{"a member without tracking stays", []int32{1, 2}, map[int32]*followerState{}, nil},
	} {
		got := laggingDropped(c.isr, self, c.followers, 50, now, lag)
		if !slices.Equal(got, c.want) {
			t.Errorf("%s: laggingDropped = %v, want %v", c.name, got, c.want)
		}
	}
}
