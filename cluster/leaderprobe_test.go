package cluster

import (
	"context"
	"net"
	"testing"
	"time"
)

func TestProcessGone(t *testing.T) {
	ctx := context.Background()
	// A listener that answers like a broker is alive.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer nc.Close()
				buf := make([]byte, 19)
				if _, err := nc.Read(buf); err == nil {
					nc.Write([]byte{0, 0, 0, 4, 0, 0, 0, 1})
				}
			}()
		}
	}()
	if processGone(ctx, ln.Addr().String()) {
		t.Fatal("a listener that answers was reported gone")
	}

	// A listener that accepts but never answers proves nothing.
	mute, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer mute.Close()
	start := time.Now()
	if processGone(ctx, mute.Addr().String()) {
		t.Fatal("a listener that does not answer was reported gone")
	}
	if d := time.Since(start); d > 10*leaderProbeTimeout {
		t.Fatalf("probe of a mute listener took %s", d)
	}

	// A port nothing listens on is gone.
	if !processGone(ctx, refusingAddr(t)) {
		t.Fatal("a closed port was not reported gone")
	}
}
