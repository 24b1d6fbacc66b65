// Command kfakeserver runs franz-go's kfake broker in a process of its own,
// so that whole-system benchmarks compare shoal with it on equal terms: each
// server in its own process, every round trip crossing a process boundary.
// It prints its listen address on the first line of stdout and serves until
// it is signalled or its stdin is closed.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/shoalmq/shoal/bench/baseline"
)

func main() {
	partitions := flag.Int("partitions", 8, "partitions of auto-created topics")
	flag.Parse()
	addrs, stop := baseline.StartKfake(*partitions)
	defer stop()
	fmt.Println(strings.Join(addrs, ","))
	done := make(chan struct{})
	go func() {
		// The parent holds stdin open; its exit ends this server too.
		io.Copy(io.Discard, os.Stdin)
		close(done)
	}()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	select {
	case <-sig:
	case <-done:
	}
}
