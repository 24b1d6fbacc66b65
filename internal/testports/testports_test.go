package testports

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
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

// A port whose claim file another process holds locked is not taken; once
// the lock is dropped (the other process exits), it is.
func TestClaimSkipsPortHeldElsewhere(t *testing.T) {
	old := claimDir
	claimDir = t.TempDir()
	t.Cleanup(func() { claimDir = old })
	const p = 12345
	// Another open of the file stands for the other process: its lock
	// conflicts with claim's open as another process's would.
	other, err := os.OpenFile(filepath.Join(claimDir, strconv.Itoa(p)), os.O_RDWR|os.O_CREATE, 0o666)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if err := syscall.Flock(int(other.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		t.Fatal(err)
	}
	if claim(p) {
		t.Fatalf("port %d claimed while another process holds it", p)
	}
	other.Close()
	if !claim(p) {
		t.Fatalf("port %d not claimed once the other process let go", p)
	}
	if claim(p) {
		t.Fatalf("port %d claimed twice", p)
	}
}
