// Package testports hands tests loopback TCP ports for servers they start
// as separate processes, which must be told their ports in advance.
//
// The usual trick, listening on port 0 and closing the listener, hands out
// a port from the kernel's ephemeral range, the range it also takes the
// source ports of outgoing connections from. Between the close and the
// child process's bind (or across a kill and restart of that process) any
// connection opened on the machine may take the port, and the child fails
// with "address already in use". Ports picked here come from below that
// range, where no outgoing connection lands; they are chosen at random, and
// one process never hands out a port twice.
//
// Test processes run side by side (go test runs packages in parallel, and a
// machine may run several suites), and a port one of them picked is free
// from its pick until its child binds it, and again while that child is
// killed for a restart. Another process picking it then makes one of the
// two children fail to bind. So every pick is also claimed for the whole
// life of the picking process with a lock on a file named after the port,
// under the system's temporary directory; processes skip ports another
// holds. The kernel drops the locks when a process exits, however it dies.
package testports

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// lowest is the first port considered; below it lie well-known and
// registered services.
const lowest = 10000

var (
	mu    sync.Mutex
	given = map[int]bool{}
	// claims are the open, locked claim files: closing one would drop its
	// lock, so they stay open until the process exits.
	claims []*os.File
)

// Pick returns k distinct ports, each free on 127.0.0.1 when picked and
// never returned before by this process.
func Pick(k int) ([]int, error) {
	mu.Lock()
	defer mu.Unlock()
	hi := ephemeralStart()
	var held []net.Listener
	defer func() {
		for _, ln := range held {
			ln.Close()
		}
	}()
	ports := make([]int, 0, k)
	for tries := 0; len(ports) < k; tries++ {
		if tries > 100*k+1000 {
			return nil, fmt.Errorf("testports: no free port in [%d, %d) after %d tries", lowest, hi, tries)
		}
		p := lowest + rand.IntN(hi-lowest)
		if given[p] || !claim(p) {
			continue
		}
		// Held open until every port is picked, so none is picked twice.
		ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			continue
		}
		held = append(held, ln)
		given[p] = true
		ports = append(ports, p)
	}
	return ports, nil
}

// claimDir holds one file per port any test process picked.
var claimDir = filepath.Join(os.TempDir(), "shoal-testports")

// claim takes port p for this process unless another process holds it. A
// claim file that cannot be made or locked for another reason (say, the
// directory belongs to another user) leaves p to the bind check alone, as
// before claims existed.
func claim(p int) bool {
	if err := os.MkdirAll(claimDir, 0o777); err != nil {
		return true
	}
	f, err := os.OpenFile(filepath.Join(claimDir, strconv.Itoa(p)), os.O_RDWR|os.O_CREATE, 0o666)
	if err != nil {
		return true
	}
	// Locks on different opens of one file conflict, within a process as
	// across processes.
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return err != syscall.EWOULDBLOCK
	}
	claims = append(claims, f)
	return true
}

// ephemeralStart is the first port of the kernel's ephemeral range
// (Linux's ip_local_port_range; the IANA range's start elsewhere).
func ephemeralStart() int {
	const fallback = 32768
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return fallback
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return fallback
	}
	n, err := strconv.Atoi(f[0])
	if err != nil || n <= lowest+1000 {
		return fallback
	}
	return n
}
