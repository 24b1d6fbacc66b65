// Package cluster is how a node deals with the rest of the cluster: the one
// inter-broker RPC client (Pool, used by every runtime that reaches another
// node), the controller client (registration, heartbeats, controlled
// shutdown, ISR changes, producer id blocks, topic creation and admin
// forwarding to the active controller), the leader probes that keep
// Metadata answers honest, and the loops a voter runs while it is the active
// controller.
//
// It sits between the front end (broker/, which wires it at start) and
// raftmeta: it imports raftmeta and never broker/.
//
// Lock order (a lock is taken only while holding locks above it):
//
//	ProducerIDs.mu       held across a block allocation, so concurrent
//	                     InitProducerIDs wait for one controller call
//	raftmeta.Controller  its mu, when this node is the active controller and
//	                     a call runs locally (withController)
//	Pool.mu              the map of connections; never held across I/O
//	peerConn.mu          one connection; held for one whole round trip
//
// ControllerClient and ActiveController have no lock of their own (their
// state is atomic or owned by one goroutine); the leader probe's mutex
// only collects its goroutines' answers and is a leaf.
package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoalmq/shoal/raftmeta"
)

// Talking to the active controller. Every node runs a raftmeta.Controller,
// but only the raft leader's decides. A node that is not the leader reaches
// it with Kafka's inter-broker RPCs (BrokerRegistration, BrokerHeartbeat,
// AlterPartition, AllocateProducerIDs) on the leader's controller listener
// (its address in controller.quorum.voters, where the raft transport hands
// Kafka connections to the front end), and relays admin requests
// (CreateTopics, configs, ...) there unchanged. The leader is always a
// voter, so this works whether or not it is also a broker.
//
// A broker-only node does not know the leader before it has joined the
// quorum (raft tells a learner who leads only once the leader replicates
// to it), so until then it asks the voters in turn; the ones that do not
// lead answer NOT_CONTROLLER.

// Metadata is what the cluster package reads of the metadata quorum
// member (a *raftmeta.Node).
type Metadata interface {
	Image() *raftmeta.Image
	IsLeader() bool
	LeaderID() int32
	WaitFor(ctx context.Context, cond func(*raftmeta.Image) bool) (*raftmeta.Image, error)
}

// Config is the node's configuration as the controller client needs it.
type Config struct {
	NodeID int32
	Rack   string
	// Voters are the controller listeners (controller.quorum.voters).
	Voters map[int32]string
	// IsController is set when this node is a voter (process.roles has
	// controller).
	IsController bool
	// MultiNode is set when this node is one of several (see
	// broker.Server.multiNode): only then is there anyone to forward to.
	MultiNode bool
	// InterBrokerListener names the listener brokers reach each other on.
	InterBrokerListener string
	// HeartbeatInterval and SessionTimeout are
	// broker.heartbeat.interval.ms and broker.session.timeout.ms.
	HeartbeatInterval, SessionTimeout time.Duration
	// TopicDefaults are num.partitions and default.replication.factor,
	// for topics this node creates locally.
	TopicDefaults raftmeta.Defaults
	// Version is the version this node sends of an API: the highest it
	// serves itself, which every node of the same build serves too.
	Version func(key int16) int16
	Logger  *slog.Logger
}

// ControllerClient is this node's client of the active controller. When
// this node is the active controller, the calls go to the local
// raftmeta.Controller instead of over the wire.
type ControllerClient struct {
	cfg   Config
	meta  Metadata
	ctrl  *raftmeta.Controller
	peers *Pool

	// brokerEpoch is this broker's epoch from its latest registration.
	brokerEpoch atomic.Int64
	// endpoints are what this broker registered, for registering again.
	endpoints atomic.Pointer[[]raftmeta.Endpoint]
	// stopHeartbeats ends the heartbeat loop at controlled shutdown, so
	// no heartbeat unfences the broker after it asked to shut down.
	stopHeartbeats     chan struct{}
	stopHeartbeatsOnce sync.Once
}

// NewControllerClient returns the controller client of a node whose
// metadata member is meta, local controller ctrl, sending through peers.
func NewControllerClient(cfg Config, meta Metadata, ctrl *raftmeta.Controller, peers *Pool) *ControllerClient {
	return &ControllerClient{cfg: cfg, meta: meta, ctrl: ctrl, peers: peers, stopHeartbeats: make(chan struct{})}
}

// BrokerEpoch is this broker's epoch from its latest registration.
func (c *ControllerClient) BrokerEpoch() int64 { return c.brokerEpoch.Load() }

// errHandleLocally stops withController: this node is the controller.
var errHandleLocally = errors.New("handle locally")

// errPeerProtocol marks a connection-level failure talking to a peer.
var errPeerProtocol = errors.New("peer connection failed")

// controllerRetryBackoff is the pause between two tries at reaching the
// controller.
const controllerRetryBackoff = 50 * time.Millisecond

// retryable reports whether a controller call may succeed if tried again,
// perhaps at another node.
func retryable(err error) bool {
	var ne net.Error
	switch {
	case err == nil:
		return false
	case errors.Is(err, kerr.NotController), errors.Is(err, ErrNoPeerAddress),
		errors.Is(err, kerr.RequestTimedOut), errors.As(err, &ne),
		errors.Is(err, net.ErrClosed), errors.Is(err, errPeerProtocol):
		return true
	}
	return false
}

// withController runs local when this node is the active controller and
// remote(leader) otherwise, retrying while the controller is unknown,
// moving or unreachable, until ctx ends.
func (c *ControllerClient) withController(ctx context.Context, local func() error, remote func(leader int32) error) error {
	var last error = raftmeta.ErrNotController
	attempt := 0
	for {
		var err error
		leader := c.meta.LeaderID()
		if leader < 0 && !c.cfg.IsController {
			leader = guessController(c.cfg.Voters, attempt)
		}
		attempt++
		if c.meta.IsLeader() {
			err = local()
		} else if leader >= 0 && leader != c.cfg.NodeID {
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
		case <-time.After(controllerRetryBackoff):
		}
	}
}

// guessController picks the voter to ask on the given attempt, going
// round the voters in id order.
func guessController(voters map[int32]string, attempt int) int32 {
	ids := slices.Sorted(maps.Keys(voters))
	if len(ids) == 0 {
		return -1
	}
	return ids[attempt%len(ids)]
}

// send sends req to the controller leader on a controller lane.
func (c *ControllerClient) send(ctx context.Context, lane Lane, leader int32, req kmsg.Request) (kmsg.Response, error) {
	return c.peers.Peers(lane).Request(ctx, leader, req)
}

// callController sends a controller RPC to leader and returns its response
// with the error its top-level error code stands for (errorCode reads it).
// The response is nil only when it did not arrive.
func callController[R kmsg.Response](ctx context.Context, c *ControllerClient, lane Lane, leader int32, req kmsg.Request, errorCode func(R) int16) (R, error) {
	r, err := c.send(ctx, lane, leader, req)
	if err != nil {
		var none R
		return none, err
	}
	resp := r.(R)
	return resp, kerr.ErrorForCode(errorCode(resp))
}

// Origin is the client an admin request is forwarded for: the controller
// authorizes the request as this principal from this address (Kafka's
// Envelope, KIP-590), so forwarding changes nothing about what a client
// may do.
type Origin struct {
	PrincipalType, PrincipalName string
	// Host is the client's address (nil: unknown, sent as 0.0.0.0).
	Host     net.IP
	ClientID string
}

// EnvelopeError is the controller refusing an Envelope as a whole (not
// the request inside): this node may not forward (its principal lacks
// CLUSTER_ACTION), or the two disagree on the format. It is a
// misconfiguration of the cluster, not the client's doing.
type EnvelopeError struct {
	Node int32
	Err  error
}

func (e *EnvelopeError) Error() string {
	return fmt.Sprintf("controller %d refused the forwarded request's envelope: %v", e.Node, e.Err)
}

func (e *EnvelopeError) Unwrap() error { return e.Err }

// envelopedCorrelationID is the correlation id of a request inside an
// Envelope; the controller answers with it in ResponseData.
const envelopedCorrelationID = 0

// envelope wraps req, at the version it carries, for o: the request as a
// client frames it (header and body, with o's client id), the principal
// as Kafka's DefaultPrincipalData, the address as its 4 or 16 bytes.
func (o Origin) envelope(req kmsg.Request) *kmsg.EnvelopeRequest {
	frame := kmsg.NewRequestFormatter(kmsg.FormatterClientID(o.ClientID)).AppendRequest(nil, req, envelopedCorrelationID)
	principal := kmsg.DefaultPrincipalData{Type: o.PrincipalType, Name: o.PrincipalName}
	host := o.Host.To4()
	if host == nil {
		host = o.Host.To16()
	}
	if host == nil {
		host = net.IPv4zero.To4()
	}
	env := kmsg.NewPtrEnvelopeRequest()
	env.RequestData = frame[4:] // without the size
	env.RequestPrincipal = principal.AppendTo(nil)
	env.ClientHostAddress = host
	return env
}

// ForwardAdmin relays an admin request to the active controller when this
// node is not it, returning the controller's response. It returns false
// when the request should be handled here: this node is the controller or
// the controller could not be reached (the local controller then answers
// NOT_CONTROLLER, which clients retry). The caller keeps requests that came
// from another node: those are never forwarded again.
func (c *ControllerClient) ForwardAdmin(ctx context.Context, req kmsg.Request, from Origin) (kmsg.Response, bool, error) {
	if !c.cfg.MultiNode || c.meta.IsLeader() {
		return nil, false, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	env := from.envelope(req)
	var resp kmsg.Response
	err := c.withController(ctx, func() error { return errHandleLocally }, func(leader int32) error {
		r, err := c.send(ctx, laneControllerAdmin, leader, env)
		if err != nil {
			return err
		}
		er := r.(*kmsg.EnvelopeResponse)
		if err := kerr.ErrorForCode(er.ErrorCode); err != nil {
			if errors.Is(err, kerr.NotController) {
				return err
			}
			return &EnvelopeError{Node: leader, Err: err}
		}
		resp, err = decodeResponse(req, er.ResponseData, envelopedCorrelationID)
		return err
	})
	if env := (*EnvelopeError)(nil); errors.As(err, &env) {
		return nil, true, env
	}
	if err != nil {
		return nil, false, nil
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
		c.meta.WaitFor(waitCtx, cond)
	}
	return resp, true, nil
}

// Register records this broker, reachable at endpoints, with the active
// controller under a new incarnation and keeps the epoch it is given.
func (c *ControllerClient) Register(ctx context.Context, endpoints []raftmeta.Endpoint) error {
	c.endpoints.Store(&endpoints)
	b := raftmeta.Broker{ID: c.cfg.NodeID, IncarnationID: uuid.New(), Rack: c.cfg.Rack, Endpoints: endpoints}
	var epoch int64
	err := c.withController(ctx, func() error {
		var err error
		epoch, err = c.ctrl.RegisterBrokerEpoch(ctx, b)
		return err
	}, func(leader int32) error {
		req := kmsg.NewPtrBrokerRegistrationRequest()
		req.SetVersion(c.cfg.Version(req.Key()))
		req.BrokerID, req.IncarnationID = b.ID, b.IncarnationID
		req.ClusterID = c.meta.Image().ClusterID
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
		resp, err := callController(ctx, c, laneControllerHeartbeat, leader, req, func(r *kmsg.BrokerRegistrationResponse) int16 { return r.ErrorCode })
		if err != nil {
			return err
		}
		epoch = resp.BrokerEpoch
		return nil
	})
	if err != nil {
		return err
	}
	c.brokerEpoch.Store(epoch)
	return nil
}

// securityProtocolID maps a protocol name to Kafka's id (only PLAINTEXT
// is supported).
func securityProtocolID(string) int16 { return 0 }

// CreateTopics creates topics for the broker's own needs (auto-creation,
// internal topics) at the active controller, and waits briefly until this
// node's image has the ones created.
func (c *ControllerClient) CreateTopics(ctx context.Context, reqs []raftmeta.CreateTopicRequest) []raftmeta.CreateTopicResult {
	if !c.cfg.MultiNode || c.meta.IsLeader() {
		return c.ctrl.CreateTopics(ctx, reqs, c.cfg.TopicDefaults, false)
	}
	req := kmsg.NewPtrCreateTopicsRequest()
	req.SetVersion(c.cfg.Version(req.Key()))
	req.TimeoutMillis = 30000
	for _, ct := range reqs {
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic, rt.NumPartitions, rt.ReplicationFactor = ct.Name, ct.NumPartitions, ct.ReplicationFactor
		for _, pa := range ct.Assignments {
			a := kmsg.NewCreateTopicsRequestTopicReplicaAssignment()
			a.Partition, a.Replicas = pa.Partition, pa.Replicas
			rt.ReplicaAssignment = append(rt.ReplicaAssignment, a)
		}
		for k, v := range ct.Configs {
			cfg := kmsg.NewCreateTopicsRequestTopicConfig()
			cfg.Name, cfg.Value = k, v
			rt.Configs = append(rt.Configs, cfg)
		}
		req.Topics = append(req.Topics, rt)
	}
	var resp *kmsg.CreateTopicsResponse
	err := c.withController(ctx, func() error { return errHandleLocally }, func(leader int32) error {
		r, err := c.send(ctx, laneControllerAdmin, leader, req)
		if err == nil {
			resp = r.(*kmsg.CreateTopicsResponse)
		}
		return err
	})
	if err != nil || resp == nil {
		return c.ctrl.CreateTopics(ctx, reqs, c.cfg.TopicDefaults, false)
	}
	out := make([]raftmeta.CreateTopicResult, 0, len(resp.Topics))
	var created []string
	for _, rt := range resp.Topics {
		r := raftmeta.CreateTopicResult{Name: rt.Topic, ID: rt.TopicID, NumPartitions: rt.NumPartitions, ReplicationFactor: rt.ReplicationFactor}
		if e := kerr.ErrorForCode(rt.ErrorCode); e != nil {
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
		c.meta.WaitFor(waitCtx, func(img *raftmeta.Image) bool {
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

// AllocateProducerIDs gets a block of up to count producer ids for this
// broker and returns its first id and its length.
func (c *ControllerClient) AllocateProducerIDs(ctx context.Context, count int64) (int64, int64, error) {
	var first, n int64 = 0, count
	err := c.withController(ctx, func() error {
		var err error
		first, err = c.ctrl.AllocateProducerIDs(ctx, c.cfg.NodeID, count)
		return err
	}, func(leader int32) error {
		req := kmsg.NewPtrAllocateProducerIDsRequest()
		req.SetVersion(c.cfg.Version(req.Key()))
		req.BrokerID, req.BrokerEpoch = c.cfg.NodeID, c.brokerEpoch.Load()
		resp, err := callController(ctx, c, laneControllerAdmin, leader, req, func(r *kmsg.AllocateProducerIDsResponse) int16 { return r.ErrorCode })
		if err != nil {
			return err
		}
		first, n = resp.ProducerIDStart, int64(resp.ProducerIDLen)
		return nil
	})
	return first, n, err
}

// AlterPartition asks the controller to change ISRs of partitions this node
// leads.
func (c *ControllerClient) AlterPartition(ctx context.Context, items []raftmeta.AlterPartitionItem) ([]raftmeta.AlterPartitionResult, error) {
	areq := raftmeta.AlterPartitionRequest{BrokerID: c.cfg.NodeID, BrokerEpoch: c.brokerEpoch.Load(), Partitions: items}
	var results []raftmeta.AlterPartitionResult
	err := c.withController(ctx, func() error {
		var err error
		results, err = c.ctrl.AlterPartition(ctx, areq)
		return err
	}, func(leader int32) error {
		req := kmsg.NewPtrAlterPartitionRequest()
		// v2 still carries the ISR as plain ids (NewISR); v3 moved to
		// NewISRWithEpochs.
		req.SetVersion(2)
		req.BrokerID, req.BrokerEpoch = areq.BrokerID, areq.BrokerEpoch
		for _, it := range items {
			rt := kmsg.NewAlterPartitionRequestTopic()
			rt.TopicID = it.TopicID
			rp := kmsg.NewAlterPartitionRequestTopicPartition()
			rp.Partition, rp.LeaderEpoch, rp.PartitionEpoch, rp.NewISR = it.Partition, it.LeaderEpoch, it.PartitionEpoch, it.NewISR
			rt.Partitions = append(rt.Partitions, rp)
			req.Topics = append(req.Topics, rt)
		}
		resp, err := callController(ctx, c, laneControllerISR, leader, req, func(r *kmsg.AlterPartitionResponse) int16 { return r.ErrorCode })
		if err != nil {
			return err
		}
		results = results[:0]
		for _, rt := range resp.Topics {
			for _, rp := range rt.Partitions {
				results = append(results, raftmeta.AlterPartitionResult{TopicID: rt.TopidID, Partition: rp.Partition, Err: kerr.ErrorForCode(rp.ErrorCode),
					State: raftmeta.PartitionState{ISR: rp.ISR, Leader: rp.LeaderID, LeaderEpoch: rp.LeaderEpoch, PartitionEpoch: rp.PartitionEpoch}})
			}
		}
		return nil
	})
	return results, err
}
