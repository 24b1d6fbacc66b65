package broker

// Wiring of the share runtime (package share). The replica manager and the
// coordinator runtime's share coordinator serve it as they are; the small
// adapters below give it the peer RPC client and the metrics.

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoalmq/shoal/cluster"
	"github.com/shoalmq/shoal/coordruntime"
	"github.com/shoalmq/shoal/share"
)

func newShareRuntime(s *Server) *share.Manager {
	return share.New(share.Deps{
		Ctx:         s.ctx,
		Config:      s.cfg,
		Image:       s.meta.Image,
		Now:         s.now,
		Log:         s.log,
		Replicas:    s.replicas,
		Coordinator: s.coord.ShareState,
		Peers:       sharePeers{s: s, peers: s.peers.Peers(cluster.LaneShare)},
		Metrics:     shareMetrics{s.metrics},
		EncodeBatch: func(recs []share.Record, now time.Time) []byte {
			out := make([]coordruntime.BatchRecord, len(recs))
			for i, r := range recs {
				out[i] = coordruntime.BatchRecord(r)
			}
			return coordruntime.EncodeBatch(out, now)
		},
	})
}

// sharePeers sends the share runtime's requests (share-state RPCs,
// dead-letter produces) to other nodes on the peer pool's share lane, at the
// version this node serves.
type sharePeers struct {
	s     *Server
	peers cluster.Peers
}

func (p sharePeers) Request(ctx context.Context, node int32, req kmsg.Request) (kmsg.Response, error) {
	req.SetVersion(p.s.peerVersion(req.Key()))
	return p.peers.Request(ctx, node, req)
}

// shareMetrics are the share runtime's series.
type shareMetrics struct{ m *metrics }

func (sm shareMetrics) ExpiredLocks(n int64)                   { sm.m.expiredLocks(n) }
func (sm shareMetrics) DeadLettered(topic string, records int) { sm.m.deadLettered(topic, records) }
