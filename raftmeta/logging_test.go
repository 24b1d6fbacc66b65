package raftmeta

import "testing"

func TestRaftSprintfNamesShoalNodeIDs(t *testing.T) {
	for _, c := range []struct {
		format string
		args   []any
		want   string
	}{
		{"%x became leader at term %d", []any{uint64(2), uint64(3)}, "1 became leader at term 3"},
		{"%x [term: %d] received a %s message with higher term from %x [term: %d]",
			[]any{uint64(1), uint64(4), "MsgVote", uint64(3), uint64(5)},
			"0 [term: 4] received a MsgVote message with higher term from 2 [term: 5]"},
		{"raft.node: %x elected leader %x at term %d", []any{uint64(4), uint64(2), uint64(7)}, "raft.node: 3 elected leader 1 at term 7"},
		{"raft.node: %x lost leader %x at term %d", []any{uint64(4), uint64(0), uint64(7)}, "raft.node: 3 lost leader -1 at term 7"},
		{"100%% of %x", []any{uint64(1)}, "100% of 0"},
		{"bytes %x", []any{[]byte{0xab}}, "bytes ab"},
	} {
		if got := raftSprintf(c.format, c.args); got != c.want {
			t.Errorf("raftSprintf(%q) = %q, want %q", c.format, got, c.want)
		}
	}
}
