package broker

import (
	"github.com/shoalmq/shoal/log"
	"github.com/shoalmq/shoal/replica"
)

// The replica manager's view of the rest of the node (see replica.Config)
// where it is not a cluster type as is: the peer client's connections and
// the coordinator stores, which live here until they have a package of
// their own. The controller client (cluster.ControllerClient) is its
// replica.Controller unchanged.

// replicaPeers is replica.Peers: a connection of its own per fetcher, from
// the one peer client.
type replicaPeers struct{ s *Server }

func (p replicaPeers) Dial(node int32) replica.Peer { return p.s.peers.Dial(node) }

func (p replicaPeers) Version(key int16) int16 { return p.s.peerVersion(key) }

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
