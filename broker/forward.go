package broker

import (
	"context"
	"errors"
	"maps"
	"net"
	"slices"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoalmq/shoal/raftmeta"
)

// Talking to the active controller. Every node runs a raftmeta.Controller,
// but only the raft leader's decides. A node that is not the leader reaches
// it with Kafka's inter-broker RPCs (BrokerRegistration, BrokerHeartbeat,
// AlterPartition, AllocateProducerIDs) on the leader's controller listener
// (its address in controller.quorum.voters, where the raft transport hands
// Kafka connections to the server), and relays admin requests
// (CreateTopics, configs, ...) there unchanged. The leader is always a
// voter, so this works whether or not it is also a broker.
//
// A broker-only node does not know the leader before it has joined the
// quorum (raft tells a learner who leads only once the leader replicates
// to it), so until then it asks the voters in turn; the ones that do not
// lead answer NOT_CONTROLLER.

// controller lanes: requests on one lane wait for each other, so heartbeats
// never queue behind a slow admin request.
const (
	laneAdmin = iota
	laneHeartbeat
	laneISR
	numLanes
)

// errHandleLocally stops withController: this node is the controller.
var errHandleLocally = errors.New("handle locally")

// ctrlPeer returns the connection of a lane to node id.
func (s *Server) ctrlPeer(id int32, lane int) *peerClient {
	c := s.cluster
	c.mu.Lock()
	defer c.mu.Unlock()
	pcs := c.ctrlPeers[id]
	if pcs == nil {
		pcs = make([]*peerClient, numLanes)
		for i := range pcs {
			pcs[i] = newControllerClient(s, id)
		}
		c.ctrlPeers[id] = pcs
	}
	return pcs[lane]
}

// retryable reports whether a controller call may succeed if tried again,
// perhaps at another node.
func retryable(err error) bool {
	var ne net.Error
	switch {
	case err == nil:
		return false
	case errors.Is(err, kerr.NotController), errors.Is(err, errNoPeerAddress),
		errors.Is(err, kerr.RequestTimedOut), errors.As(err, &ne),
		errors.Is(err, net.ErrClosed), errors.Is(err, errPeerProtocol):
		return true
	}
	return false
}

// errPeerProtocol marks a connection-level failure talking to a peer.
var errPeerProtocol = errors.New("peer connection failed")

// withController runs local when this node is the active controller and
// remote(leader) otherwise, retrying while the controller is unknown,
// moving or unreachable, until ctx ends.
func (s *Server) withController(ctx context.Context, local func() error, remote func(leader int32) error) error {
	var last error = raftmeta.ErrNotController
	attempt := 0
	for {
		var err error
		leader := s.meta.LeaderID()
		if leader < 0 && !s.isController() {
			leader = s.guessController(attempt)
		}
		attempt++
		if s.meta.IsLeader() {
			err = local()
		} else if leader >= 0 && leader != s.cfg.NodeID {
			err = remote(leader)
			if err != nil && !errors.As(err, new(*kerr.Error)) && ctx.Err() == nil {
				err = errors.Join(errPeerProtocol, err)
			}
		} else {
			err = raftmeta.ErrNotController
		}
		if !retryable(err) {
			return err
		}
		last = err
		select {
		case <-ctx.Done():
			if errors.Is(last, errPeerProtocol) {
				return raftmeta.ErrNotController
			}
			return last
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// guessController picks the voter to ask on the given attempt, going
// round the voters in id order.
func (s *Server) guessController(attempt int) int32 {
	ids := slices.Sorted(maps.Keys(s.cfg.Voters))
	if len(ids) == 0 {
		return -1
	}
	return ids[attempt%len(ids)]
}

// codeErr turns a response error code into an error (nil for 0).
func codeErr(code int16) error {
	return kerr.ErrorForCode(code)
}

// forwardAdmin relays an admin request to the active controller when this
// node is not it, returning the controller's response. It returns false
// when the request should be handled here: this node is the controller,
// the request came from another node, or the controller could not be
// reached (the local controller then answers NOT_CONTROLLER, which clients
// retry).
func (s *Server) forwardAdmin(ctx context.Context, rc *reqCtx, req kmsg.Request) (kmsg.Response, bool) {
	if !s.multiNode() || isInterBroker(rc) || s.meta.IsLeader() {
		return nil, false
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var resp kmsg.Response
	err := s.withController(ctx, func() error { return errHandleLocally }, func(leader int32) error {
		r, err := s.ctrlPeer(leader, laneAdmin).request(ctx, req)
		resp = r
		return err
	})
	if err != nil {
		return nil, false
	}
	// Let this node's image catch up with topics the controller created
	// or deleted, so a client that asks here next sees the change.
	var cond func(*raftmeta.Image) bool
	switch r := resp.(type) {
	case *kmsg.CreateTopicsResponse:
		cond = func(img *raftmeta.Image) bool {
			for _, t := range r.Topics {
				if t.ErrorCode == 0 && img.Topics[t.Topic] == nil && !req.(*kmsg.CreateTopicsRequest).ValidateOnly {
					return false
				}
			}
			return true
		}
	case *kmsg.DeleteTopicsResponse:
		cond = func(img *raftmeta.Image) bool {
			for _, t := range r.Topics {
				if t.ErrorCode == 0 && img.TopicByID(t.TopicID) != nil {
					return false
				}
			}
			return true
		}
	}
	if cond != nil {
		waitCtx, cancel2 := context.WithTimeout(ctx, 5*time.Second)
		defer cancel2()
		s.meta.WaitFor(waitCtx, cond)
	}
	return resp, true
}

// registerWithController registers this broker and returns its epoch.
func (s *Server) registerWithController(ctx context.Context, b raftmeta.Broker) (int64, error) {
	var epoch int64
	err := s.withController(ctx, func() error {
		var err error
		epoch, err = s.ctrl.RegisterBrokerEpoch(ctx, b)
		return err
	}, func(leader int32) error {
		req := kmsg.NewPtrBrokerRegistrationRequest()
		req.SetVersion(s.peerVersion(62))
		req.BrokerID, req.IncarnationID = b.ID, b.IncarnationID
		req.ClusterID = s.meta.Image().ClusterID
		if b.Rack != "" {
			rack := b.Rack
			req.Rack = &rack
		}
		for _, e := range b.Endpoints {
			l := kmsg.NewBrokerRegistrationRequestListener()
			l.Name, l.Host, l.Port = e.Listener, e.Host, uint16(e.Port)
			l.SecurityProtocol = securityProtocolID(e.SecurityProtocol)
			req.Listeners = append(req.Listeners, l)
		}
		r, err := s.ctrlPeer(leader, laneHeartbeat).request(ctx, req)
		if err != nil {
			return err
		}
		resp := r.(*kmsg.BrokerRegistrationResponse)
		if err := codeErr(resp.ErrorCode); err != nil {
			return err
		}
		epoch = resp.BrokerEpoch
		return nil
	})
	return epoch, err
}

// securityProtocolID maps a protocol name to Kafka's id (only PLAINTEXT
// is supported).
func securityProtocolID(string) int16 { return 0 }

// createTopicsViaController creates topics for the broker's own needs
// (auto-creation, internal topics) at the active controller.
func (s *Server) createTopicsViaController(ctx context.Context, reqs []raftmeta.CreateTopicRequest) []raftmeta.CreateTopicResult {
	if !s.multiNode() || s.meta.IsLeader() {
		return s.ctrl.CreateTopics(ctx, reqs, s.topicDefaults(), false)
	}
	req := kmsg.NewPtrCreateTopicsRequest()
	req.SetVersion(s.peerVersion(19))
	req.TimeoutMillis = 30000
	for _, ct := range reqs {
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic, rt.NumPartitions, rt.ReplicationFactor = ct.Name, ct.NumPartitions, ct.ReplicationFactor
		for p, replicas := range ct.Assignments {
			a := kmsg.NewCreateTopicsRequestTopicReplicaAssignment()
			a.Partition, a.Replicas = p, replicas
			rt.ReplicaAssignment = append(rt.ReplicaAssignment, a)
		}
		for k, v := range ct.Configs {
			c := kmsg.NewCreateTopicsRequestTopicConfig()
			c.Name, c.Value = k, v
			rt.Configs = append(rt.Configs, c)
		}
		req.Topics = append(req.Topics, rt)
	}
	var resp *kmsg.CreateTopicsResponse
	err := s.withController(ctx, func() error { return errHandleLocally }, func(leader int32) error {
		r, err := s.ctrlPeer(leader, laneAdmin).request(ctx, req)
		if err == nil {
			resp = r.(*kmsg.CreateTopicsResponse)
		}
		return err
	})
	if err != nil || resp == nil {
		return s.ctrl.CreateTopics(ctx, reqs, s.topicDefaults(), false)
	}
	out := make([]raftmeta.CreateTopicResult, 0, len(resp.Topics))
	var created []string
	for _, rt := range resp.Topics {
		r := raftmeta.CreateTopicResult{Name: rt.Topic, ID: rt.TopicID, NumPartitions: rt.NumPartitions, ReplicationFactor: rt.ReplicationFactor}
		if e := codeErr(rt.ErrorCode); e != nil {
			msg := e.Error()
			if rt.ErrorMessage != nil {
				msg = *rt.ErrorMessage
			}
			r.Err = &raftmeta.Error{Code: e.(*kerr.Error), Message: msg}
		} else {
			created = append(created, rt.Topic)
		}
		out = append(out, r)
	}
	if len(created) > 0 {
		waitCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		s.meta.WaitFor(waitCtx, func(img *raftmeta.Image) bool {
			for _, n := range created {
				if img.Topics[n] == nil {
					return false
				}
			}
			return true
		})
	}
	return out
}

// allocateProducerIDs gets a block of producer ids for this broker.
func (s *Server) allocateProducerIDs(ctx context.Context) (int64, int64, error) {
	var first, n int64 = 0, producerIDBlock
	err := s.withController(ctx, func() error {
		var err error
		first, err = s.ctrl.AllocateProducerIDs(ctx, s.cfg.NodeID, producerIDBlock)
		return err
	}, func(leader int32) error {
		req := kmsg.NewPtrAllocateProducerIDsRequest()
		req.SetVersion(s.peerVersion(67))
		req.BrokerID, req.BrokerEpoch = s.cfg.NodeID, s.cluster.brokerEpoch.Load()
		r, err := s.ctrlPeer(leader, laneAdmin).request(ctx, req)
		if err != nil {
			return err
		}
		resp := r.(*kmsg.AllocateProducerIDsResponse)
		if err := codeErr(resp.ErrorCode); err != nil {
			return err
		}
		first, n = resp.ProducerIDStart, int64(resp.ProducerIDLen)
		return nil
	})
	return first, n, err
}

// Handlers of the inter-broker controller RPCs. They answer only on the
// active controller; elsewhere NOT_CONTROLLER sends the caller to look
// again.

// endpointAddr picks the inter-broker endpoint among a broker's endpoints,
// as peerAddr does.
func (s *Server) endpointAddr(eps []raftmeta.Endpoint) (string, error) {
	if len(eps) == 0 {
		return "", &raftmeta.Error{Code: kerr.InvalidRequest, Message: "a broker registration without listeners"}
	}
	ep := eps[0]
	for _, e := range eps {
		if e.Listener == s.cfg.InterBrokerListener {
			ep = e
		}
	}
	return net.JoinHostPort(ep.Host, strconv.Itoa(int(ep.Port))), nil
}

func parsePort(s string) (uint16, error) {
	var p uint16
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, errors.New("bad port")
		}
		p = p*10 + uint16(c-'0')
	}
	return p, nil
}
