package broker

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoalmq/shoal/log"
	"github.com/shoalmq/shoal/raftmeta"
	"github.com/shoalmq/shoal/replica"
)

// The replica manager's view of the rest of the node (see replica.Config):
// the controller client, the inter-broker RPC client and the coordinator
// stores, which live here until they have packages of their own.

// replicaController is replica.Controller: AlterPartition and the broker
// epoch of this node's registration.
type replicaController struct{ s *Server }

func (c replicaController) AlterPartition(ctx context.Context, items []raftmeta.AlterPartitionItem) ([]raftmeta.AlterPartitionResult, error) {
	return c.s.alterPartition(ctx, items)
}

func (c replicaController) BrokerEpoch() int64 { return c.s.cluster.brokerEpoch.Load() }

// replicaPeers is replica.Peers: a peerClient per fetcher.
type replicaPeers struct{ s *Server }

func (p replicaPeers) Dial(node int32) replica.Peer { return peerConn{newPeerClient(p.s, node)} }

func (p replicaPeers) Version(key int16) int16 { return p.s.peerVersion(key) }

// peerConn is replica.Peer over a peerClient.
type peerConn struct{ pc *peerClient }

func (c peerConn) Request(ctx context.Context, req kmsg.Request) (kmsg.Response, error) {
	return c.pc.request(ctx, req)
}

func (c peerConn) Close() { c.pc.close() }

// internalLogs is replica.InternalLogs: the coordinator store that
// materializes an internal topic follows its follower replicas.
type internalLogs struct{ s *Server }

func (l internalLogs) FollowerAppended(topic string) {
	if is := l.s.internalStore(topic); is != nil {
		is.wake()
	}
}

func (l internalLogs) FollowerTruncated(p *log.Partition) {
	if is := l.s.internalStore(p.Topic()); is != nil {
		is.truncated(p)
	}
}
