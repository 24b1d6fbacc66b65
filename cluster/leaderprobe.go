package cluster

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoalmq/shoal/raftmeta"
)

// Metadata answers are checked against the leaders' processes.
//
// When a broker process dies, its listener refuses connections at once,
// while the controller needs a moment (or, if the dead broker was the
// controller, a raft election) to fence it and elect new leaders. A client
// whose connection to the dead leader dropped asks for metadata within a
// millisecond; told the dead broker still leads, franz-go waits out its
// metadata min age (5 s by default) before asking again, and its writes
// stall for that long. So before answering a Metadata request for named
// topics, a broker dials the other brokers the answer names as leaders, and
// holds the answer while one refuses, until the metadata log has fenced it.
//
// Only a refused connection counts: it proves nothing listens on the
// broker's address. A slow or unreachable host proves nothing and is left to
// the broker session timeout, and the dials are bounded by
// leaderProbeTimeout so an answer is never held long for them. Requests for
// all topics (admin tools listing the cluster) are answered at once.

// leaderProbeTimeout bounds the dial to one leader.
const leaderProbeTimeout = 100 * time.Millisecond

// AwaitGoneLeaders holds a Metadata answer while a leader it names is gone:
// it dials every broker other than this one that resp names as a partition
// leader in img and, if some refused, waits until the metadata log has
// fenced them (see waitFenced). It reports whether it waited, in which case
// the caller answers again from the newer image.
func (c *ControllerClient) AwaitGoneLeaders(ctx context.Context, img *raftmeta.Image, resp *kmsg.MetadataResponse) bool {
	gone := c.goneLeaders(ctx, img, resp)
	if len(gone) == 0 {
		return false
	}
	c.waitFenced(ctx, gone)
	return true
}

// goneLeaders dials every broker other than this one that resp names as a
// partition leader and returns those whose listener refused, with the epoch
// they are registered at in img.
func (c *ControllerClient) goneLeaders(ctx context.Context, img *raftmeta.Image, resp *kmsg.MetadataResponse) map[int32]int64 {
	leaders := map[int32]bool{}
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if p.Leader >= 0 && p.Leader != c.cfg.NodeID {
				leaders[p.Leader] = true
			}
		}
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	gone := map[int32]int64{}
	for id := range leaders {
		b := img.Brokers[id]
		if b == nil || b.Fenced {
			continue
		}
		addr, err := BrokerAddr(img, id, c.cfg.InterBrokerListener)
		if err != nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if processGone(ctx, addr) {
				mu.Lock()
				gone[id] = b.Epoch
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return gone
}

// waitFenced waits until the metadata log no longer has any broker of gone
// unfenced at the epoch it was found gone at, or the broker session timeout
// passes. The controller fences such a broker within milliseconds of its
// heartbeat connection closing (see probeBrokers), or once a new controller
// is elected.
func (c *ControllerClient) waitFenced(ctx context.Context, gone map[int32]int64) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.SessionTimeout)
	defer cancel()
	c.meta.WaitFor(ctx, func(img *raftmeta.Image) bool {
		for id, epoch := range gone {
			if b := img.Brokers[id]; b != nil && !b.Fenced && b.Epoch == epoch {
				return false
			}
		}
		return true
	})
}

// processGone reports whether the Kafka listener at addr belongs to a
// process that is gone: a connection is refused, or accepted and then
// reset without an answer to ApiVersions (the kernel may complete a
// handshake on a dying process's listener for a moment before closing it).
// A timeout is not proof and answers false.
func processGone(ctx context.Context, addr string) bool {
	// ApiVersions v0 from client id "probe", correlation id 1.
	req := []byte{0, 0, 0, 15, 0, 18, 0, 0, 0, 0, 0, 1, 0, 5, 'p', 'r', 'o', 'b', 'e'}
	for range 3 {
		d := net.Dialer{Timeout: leaderProbeTimeout}
		nc, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return errors.Is(err, syscall.ECONNREFUSED)
		}
		// A socket deadline is on the wall clock, whatever the node's clock.
		nc.SetDeadline(time.Now().Add(leaderProbeTimeout))
		var size [4]byte
		_, err = nc.Write(req)
		if err == nil {
			_, err = io.ReadFull(nc, size[:])
		}
		nc.Close()
		if err == nil {
			return false
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return false
		}
	}
	return false
}
