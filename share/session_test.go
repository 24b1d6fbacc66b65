package share

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
)

// The KIP-932 share-session rules, one request at a time against a table
// that already holds some sessions.
func TestSessionRules(t *testing.T) {
	connA, connB := new(int), new(int)
	member := SessionKey{"g", "m1"}
	other := SessionKey{"g", "m2"}
	type existing struct {
		key   SessionKey
		epoch int32
	}
	for _, tc := range []struct {
		name   string
		have   []existing
		limit  int
		epoch  int32
		fetch  bool
		want   *kerr.Error
		close  bool
		fresh  bool  // a new session replaced whatever was there
		left   int   // sessions in the table afterwards
		wantEp int32 // the session's epoch when the request succeeds
	}{
		{name: "fetch opens", epoch: 0, fetch: true, limit: 10, fresh: true, left: 1},
		{name: "acknowledge cannot open", epoch: 0, fetch: false, limit: 10, want: kerr.InvalidShareSessionEpoch},
		{name: "reopen replaces the member's session", have: []existing{{member, 7}}, epoch: 0, fetch: true, limit: 10, fresh: true, left: 1},
		{name: "limit refuses a new member", have: []existing{{other, 1}}, epoch: 0, fetch: true, limit: 1, want: kerr.ShareSessionLimitReached, left: 1},
		{name: "limit admits a member reopening", have: []existing{{member, 3}}, epoch: 0, fetch: true, limit: 1, fresh: true, left: 1},
		{name: "unknown session", epoch: 1, fetch: true, limit: 10, want: kerr.ShareSessionNotFound},
		{name: "unknown session on close", epoch: -1, fetch: false, limit: 10, want: kerr.ShareSessionNotFound},
		{name: "matching epoch", have: []existing{{member, 4}}, epoch: 4, fetch: false, limit: 10, left: 1, wantEp: 4},
		{name: "stale epoch", have: []existing{{member, 4}}, epoch: 3, fetch: true, limit: 10, want: kerr.InvalidShareSessionEpoch, left: 1},
		{name: "future epoch", have: []existing{{member, 4}}, epoch: 5, fetch: true, limit: 10, want: kerr.InvalidShareSessionEpoch, left: 1},
		{name: "close", have: []existing{{member, 4}, {other, 2}}, epoch: -1, fetch: true, limit: 10, close: true, left: 1, wantEp: 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := sessions{m: map[SessionKey]*Session{}}
			old := map[SessionKey]*Session{}
			for _, e := range tc.have {
				sess := &Session{epoch: e.epoch, owner: connA, parts: map[TopicPart]bool{{Partition: 1}: true}}
				s.m[e.key], old[e.key] = sess, sess
			}
			sess, closing, kerrv := s.open(member, tc.epoch, tc.fetch, connB, tc.limit)
			if kerrv != tc.want {
				t.Fatalf("error %v, want %v", kerrv, tc.want)
			}
			if len(s.m) != tc.left {
				t.Fatalf("%d sessions left, want %d", len(s.m), tc.left)
			}
			if tc.want != nil {
				if sess != nil {
					t.Fatalf("a refused request got a session")
				}
				return
			}
			if closing != tc.close {
				t.Fatalf("closing %v, want %v", closing, tc.close)
			}
			if tc.close {
				if s.m[member] != nil {
					t.Fatalf("closed session still in the table")
				}
				return
			}
			if s.m[member] != sess {
				t.Fatalf("the request's session is not the member's")
			}
			if tc.fresh {
				if sess == old[member] || sess.epoch != 0 || sess.owner != connB || len(sess.parts) != 0 {
					t.Fatalf("opening gave %+v, want a fresh session at epoch 0 owned by the request's connection", sess)
				}
				return
			}
			if sess != old[member] || sess.epoch != tc.wantEp {
				t.Fatalf("got session %+v, want the existing one at epoch %d", sess, tc.wantEp)
			}
		})
	}
}

// The epoch after Int32Max is 1: 0 would reopen and -1 close.
func TestNextSessionEpoch(t *testing.T) {
	for in, want := range map[int32]int32{0: 1, 1: 2, 1<<31 - 2: 1<<31 - 1, 1<<31 - 1: 1} {
		if got := nextSessionEpoch(in); got != want {
			t.Errorf("nextSessionEpoch(%d) = %d, want %d", in, got, want)
		}
	}
}
