package broker

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
	kgosasl "github.com/twmb/franz-go/pkg/sasl"

	"github.com/shoalmq/shoal/cluster"
	"github.com/shoalmq/shoal/config"
	"github.com/shoalmq/shoal/raftmeta"
)

// How the front end wires the cluster package (cluster/): this node's roles,
// the one peer client, the controller client and the active controller's
// loops, and the front end's own part of forwarding.

// multiNode reports whether this node is part of a cluster of several:
// more than one voter, or a node with one role only (its other half runs
// elsewhere). Only then do nodes talk to each other.
func (s *Server) multiNode() bool {
	return len(s.cfg.Voters) > 1 || !s.isBroker() || !s.isController()
}

// isBroker reports whether this node serves clients and holds partitions
// (process.roles has broker).
func (s *Server) isBroker() bool { return s.cfg.HasRole("broker") }

// isController reports whether this node is a voter of the metadata quorum
// (process.roles has controller).
func (s *Server) isController() bool { return s.cfg.HasRole("controller") }

// peerVersion is the version this node sends of an API: the highest it
// serves itself, which every node of the same build serves too.
func (s *Server) peerVersion(key int16) int16 {
	return s.apis.all[key].max
}

// startCluster builds the peer client and the controller client once the
// metadata member and the local controller exist.
func (s *Server) startCluster() {
	s.peers = cluster.NewPool(cluster.PoolConfig{
		NodeID:              s.cfg.NodeID,
		Voters:              s.cfg.Voters,
		InterBrokerListener: s.cfg.InterBrokerListener,
		Image:               s.meta.Image,
		MaxResponseBytes:    s.cfg.SocketRequestMaxBytes,
		Broker:              s.sec.peerSecurity(s.cfg.InterBrokerListener, s.sec.interBrokerLogin),
		Controller:          s.sec.peerSecurity(s.controllerListenerName(), s.sec.controllerLogin),
	})
	s.controller = cluster.NewControllerClient(cluster.Config{
		NodeID:              s.cfg.NodeID,
		Rack:                s.cfg.Rack,
		Voters:              s.cfg.Voters,
		IsController:        s.isController(),
		MultiNode:           s.multiNode(),
		InterBrokerListener: s.cfg.InterBrokerListener,
		HeartbeatInterval:   s.cfg.Millis("broker.heartbeat.interval.ms"),
		SessionTimeout:      s.cfg.Millis("broker.session.timeout.ms"),
		TopicDefaults:       s.topicDefaults(),
		Version:             s.peerVersion,
		Logger:              s.log,
	}, s.meta, s.ctrl, s.peers)
	s.producerIDs = cluster.NewProducerIDs(s.controller)
}

// activeController returns the loops a voter runs while it is the active
// controller.
func (s *Server) activeController() *cluster.ActiveController {
	rebalance, _ := s.cfg.Value("auto.leader.rebalance.enable")
	return cluster.NewActiveController(cluster.ActiveConfig{
		NodeID:              s.cfg.NodeID,
		InterBrokerListener: s.cfg.InterBrokerListener,
		HeartbeatInterval:   s.cfg.Millis("broker.heartbeat.interval.ms"),
		SessionTimeout:      s.cfg.Millis("broker.session.timeout.ms"),
		UncleanLeaderElection: func(topic string) bool {
			t := s.meta.Image().Topics[topic]
			if t == nil {
				return false
			}
			return s.cfg.EffectiveTopicConfig(t.Configs).String("unclean.leader.election.enable") == "true"
		},
		AutoLeaderRebalance:    rebalance == "true",
		ImbalanceCheckInterval: time.Duration(s.cfg.Int("leader.imbalance.check.interval.seconds")) * time.Second,
		Now:                    s.now,
		Logger:                 s.log,
	}, s.meta, s.ctrl)
}

// isInterBroker reports whether a request came from another shoal node.
func isInterBroker(rc *reqCtx) bool {
	return rc != nil && cluster.IsInterBrokerClientID(rc.header.clientID)
}

// forwardFunc relays the request being handled to the active controller
// when this node is not it; ok false means this node answers it.
type forwardFunc func(ctx context.Context, rc *reqCtx, req kmsg.Request) (resp kmsg.Response, ok bool)

// forwardAdmin relays an admin request to the active controller when this
// node is not it (cluster.ControllerClient.ForwardAdmin), in an Envelope
// naming the client's principal and address, as whom the controller
// authorizes it. A request that came from another node, in an Envelope or
// as the node's own, is handled here: it is never forwarded twice.
//
// Handlers reach it only as the forwardFunc that forwarding passes them,
// never directly (TestOnlyTheAPITableForwards): the controller accepts in
// an Envelope exactly the APIs whose table entry forwarding built.
func (s *Server) forwardAdmin(ctx context.Context, rc *reqCtx, req kmsg.Request) (kmsg.Response, bool) {
	if isInterBroker(rc) || rc.conn.forwarded {
		return nil, false
	}
	c := rc.conn
	// The round trip is the controller's time, not this node's: it is
	// not counted against the client's request_percentage here (the
	// controller counts its own and answers with its throttle).
	began := time.Now()
	defer func() { rc.remote += time.Since(began) }()
	resp, forwarded, err := s.controller.ForwardAdmin(ctx, req, cluster.Origin{
		PrincipalType: c.principal.Type,
		PrincipalName: c.principal.Name,
		Host:          net.ParseIP(c.host),
		ClientID:      rc.header.clientID,
	})
	if err != nil {
		// As Kafka: the client did nothing wrong, so it is told
		// UNKNOWN_SERVER_ERROR, and the operator why.
		c.log.Warn("the controller refused a forwarded request; the node's inter-broker principal needs CLUSTER_ACTION (super.users)", "api", kmsg.NameForKey(req.Key()), "err", err)
		return refusedResponse(req, kerr.UnknownServerError.Code), true
	}
	return resp, forwarded
}

// forwarding is the API table entry, versions min to max, of an admin API
// whose handler forwards the request to the active controller itself, as
// ElectLeaders and the config APIs do around work of their own: f gets
// the forwardFunc, and the entry is marked forwarded, so the controller's
// Envelope accepts the API.
func forwarding[R kmsg.Request](s *Server, min, max int16, f func(context.Context, *reqCtx, R, forwardFunc) (kmsg.Response, error)) api {
	return api{min: min, max: max, forwarded: true, handle: func(ctx context.Context, rc *reqCtx, req kmsg.Request) (kmsg.Response, waitFunc, error) {
		resp, err := f(ctx, rc, req.(R), s.forwardAdmin)
		return resp, nil, err
	}}
}

// relayed is the API table entry, versions min to max, of an admin API the
// active controller answers: on any other node the request goes to the
// controller and f never runs.
func relayed[R kmsg.Request](s *Server, min, max int16, f func(context.Context, *reqCtx, R) (kmsg.Response, error)) api {
	return forwarding(s, min, max, func(ctx context.Context, rc *reqCtx, req R, forward forwardFunc) (kmsg.Response, error) {
		if resp, ok := forward(ctx, rc, req); ok {
			return resp, nil
		}
		return f(ctx, rc, req)
	})
}

// controlledShutdown asks the controller to move leadership away from this
// node and, once it has, lets clients learn where their partitions went
// before the listeners close.
func (s *Server) controlledShutdown(timeout time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if !s.controller.ControlledShutdown(ctx) {
		return
	}
	s.lastLeaderHint.mark()
	s.lastLeaderHint.waitQuiet(ctx, 200*time.Millisecond)
}

// controllerListenerName names the controller listener, for connections
// served on it.
func (s *Server) controllerListenerName() string {
	for _, l := range s.cfg.Listeners {
		if slices.Contains(s.cfg.ControllerListeners, l.Name) {
			return l.Name
		}
	}
	if len(s.cfg.ControllerListeners) > 0 {
		return s.cfg.ControllerListeners[0]
	}
	return "CONTROLLER"
}

// startTransport starts the raft transport. A voter listens on its
// controller listener, which also answers the brokers' controller RPCs in
// the Kafka protocol (Foreign). A broker-only node (a learner) has no
// controller listener: it dials the voters, and receives the leader's
// messages on its broker listeners (see accept).
func (s *Server) startTransport() (*raftmeta.TCPTransport, error) {
	var listen string
	if s.isController() {
		listen = s.cfg.Voters[s.cfg.NodeID]
		for _, l := range s.cfg.Listeners {
			if slices.Contains(s.cfg.ControllerListeners, l.Name) {
				listen = l.Addr()
				break
			}
		}
		if listen == "" {
			return nil, fmt.Errorf("listeners: node %d needs a controller listener to reach the quorum", s.cfg.NodeID)
		}
	}
	peers := map[int32]string{}
	for id, addr := range s.cfg.Voters {
		if id != s.cfg.NodeID {
			peers[id] = addr
		}
	}
	name := s.controllerListenerName()
	tr, err := raftmeta.NewTCPTransport(raftmeta.TCPTransportConfig{
		NodeID:     s.cfg.NodeID,
		ListenAddr: listen,
		Peers:      peers,
		Logger:     s.log,
		Foreign:    func(nc net.Conn) { s.serveKafka(nc, name) },
		ServerTLS:  s.sec.listener(name).tls,
		ClientTLS:  s.raftClientTLS,
		Login:      s.raftLogin(name),
		ClientSASL: s.raftClientSASL,
	})
	if err != nil {
		return nil, fmt.Errorf("controller listener: %w", err)
	}
	return tr, nil
}

// raftPeerListener is the listener a quorum member's raft transport is
// reached on: a voter's controller listener, a learner's inter-broker
// listener (see serveAccepted).
func (s *Server) raftPeerListener(peer int32) (string, *config.PeerLogin) {
	if _, voter := s.cfg.Voters[peer]; voter {
		return s.controllerListenerName(), s.sec.controllerLogin
	}
	return s.cfg.InterBrokerListener, s.sec.interBrokerLogin
}

// raftClientTLS is the TLS configuration for dialling a quorum member's
// raft transport at host, nil for plain TCP, verified against the trust
// store of the listener it is reached on.
func (s *Server) raftClientTLS(peer int32, host string) *tls.Config {
	listener, _ := s.raftPeerListener(peer)
	if st := s.sec.listener(listener).store; st != nil {
		return st.ClientConfig(host)
	}
	return nil
}

// raftClientSASL is the mechanism, with this node's credentials for the
// listener the peer is reached on, that logs a raft connection in; nil
// when that listener has no SASL.
func (s *Server) raftClientSASL(peer int32) kgosasl.Mechanism {
	listener, login := s.raftPeerListener(peer)
	return s.sec.peerSecurity(listener, login).SASL
}
