package replica

import "testing"

func TestPartitionsForFiles(t *testing.T) {
	for _, c := range []struct {
		limit uint64
		want  int
	}{
		{0, 0},        // unknown: no cap
		{20000, 5000}, // this machine's kind of limit: 15000 usable / 3
		{1024, 256},   // a default ulimit
		{1 << 20, 262144},
		{1, 1}, // never below one partition
	} {
		if got := partitionsForFiles(c.limit); got != c.want {
			t.Errorf("partitionsForFiles(%d) = %d, want %d", c.limit, got, c.want)
		}
	}
}
