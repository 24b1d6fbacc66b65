package broker

// Wiring of the share runtime (package share): the small adapters through
// which it reaches the replica runtime, the share coordinator, the peer RPC
// client and the metrics, none of which it may hold this package's Server
// for.

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoalmq/shoal/cluster"
	"github.com/shoalmq/shoal/coordinator"
	"github.com/shoalmq/shoal/log"
	"github.com/shoalmq/shoal/raftmeta"
	"github.com/shoalmq/shoal/share"
)

func newShareRuntime(s *Server) *share.Manager {
	return share.New(share.Deps{
		Ctx:         s.ctx,
		Config:      s.cfg,
		Image:       s.meta.Image,
		Now:         s.now,
		Log:         s.log,
		Replicas:    shareReplicas{s},
		Coordinator: shareCoordinatorPort{s.shareState},
		Peers:       sharePeers{s: s, peers: s.peers.Peers(cluster.LaneShare)},
		Metrics:     shareMetrics{s.metrics},
		EncodeBatch: func(recs []share.Record, now time.Time) []byte {
			out := make([]batchRecord, len(recs))
			for i, r := range recs {
				out[i] = batchRecord(r)
			}
			return encodeBatch(out, now)
		},
	})
}

// shareReplicas is the replica runtime as the share runtime sees it.
type shareReplicas struct{ s *Server }

func (r shareReplicas) LeaderPartition(t *raftmeta.Topic, partition int32) (*log.Partition, raftmeta.PartitionState, *kerr.Error) {
	return r.s.leaderPartition(t, partition)
}

func (r shareReplicas) AppendCommitted(ctx context.Context, p *log.Partition, ps raftmeta.PartitionState, batch []byte, now time.Time) error {
	_, err := r.s.appendCommitted(ctx, p, ps, batch, now)
	return err
}

// shareCoordinatorPort is this node's share coordinator as the share
// runtime's local state store uses it.
type shareCoordinatorPort struct{ sc *shareCoordinator }

func (c shareCoordinatorPort) EnsureStateTopic(ctx context.Context) error {
	return c.sc.ensureTopic(ctx)
}

func (c shareCoordinatorPort) Read(key coordinator.ShareKey) (coordinator.ShareState, bool, *kerr.Error) {
	return c.sc.read(key)
}

func (c shareCoordinatorPort) Enqueue(key coordinator.ShareKey, st *coordinator.ShareState) <-chan error {
	return c.sc.enqueue(key, st)
}

func (c shareCoordinatorPort) Write(ctx context.Context, key coordinator.ShareKey, st *coordinator.ShareState) error {
	return c.sc.write(ctx, key, st)
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
