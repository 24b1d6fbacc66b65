package broker

// Wiring of the share runtime (package share). The replica manager, the
// coordinator runtime's share coordinator and the metrics serve it as they
// are; sharePeers gives it the peer RPC client at this node's versions.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoalmq/shoal/cluster"
	"github.com/shoalmq/shoal/share"
)

func newShareRuntime(s *Server) *share.Manager {
	return share.New(share.Deps{
		Ctx:         s.ctx,
		Config:      s.cfg,
		Image:       s.meta.Image,
		Now:         s.now,
		Log:         s.log.With("component", "share"),
		Replicas:    s.replicas,
		Coordinator: s.coord.ShareState,
		Peers:       sharePeers{s: s, peers: s.peers.Peers(cluster.LaneShare)},
		Metrics:     s.metrics,
		// producerIDs is wired with the cluster, after the share runtime.
		NextProducerID: func(ctx context.Context) (int64, error) { return s.producerIDs.Next(ctx) },
		Topics:         coordTopics{s},
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
