package testports

import (
	"net"
	"strconv"
	"testing"
)

// Ports come from below the ephemeral range, are distinct across calls and
// can be bound.
func TestPick(t *testing.T) {
	seen := map[int]bool{}
	for range 5 {
		ports, err := Pick(20)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range ports {
			if p < lowest || p >= ephemeralStart() {
				t.Errorf("port %d outside [%d, %d)", p, lowest, ephemeralStart())
			}
			if seen[p] {
				t.Errorf("port %d handed out twice", p)
			}
			seen[p] = true
			ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
			if err != nil {
				t.Errorf("port %d: %v", p, err)
				continue
			}
			ln.Close()
		}
	}
}
