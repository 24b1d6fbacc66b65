package broker

import (
	"github.com/shoalmq/shoal/log"
	"github.com/shoalmq/shoal/replica"
)

// The replica manager's view of the rest of the node (see replica.Config)
// where it is not a cluster type as is: the peer client's connections and
// the coordinator runtime's stores. The controller client (cluster.ControllerClient) is its
// replica.Controller unchanged.

// replicaPeers is replica.Peers: a connection of its own per fetcher, from
// the one peer client.
type replicaPeers struct{ s *Server }

func (p replicaPeers) Dial(node int32) replica.Peer { return p.s.peers.Dial(node) }

func (p replicaPeers) Version(key int16) int16 { return p.s.peerVersion(key) }

// internalLogs is replica.InternalLogs: the coordinator runtime's stores
// follow its follower replicas. The runtime is built after the replica
// manager (it appends through it), so it is looked up per call.
type internalLogs struct{ s *Server }

func (l internalLogs) FollowerAppended(topic string) {
	if l.s.coord != nil {
		l.s.coord.FollowerAdvanced(topic)
	}
}

func (l internalLogs) FollowerTruncated(p *log.Partition) {
	if l.s.coord != nil {
		l.s.coord.FollowerTruncated(p)
	}
}
