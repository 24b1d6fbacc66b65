package broker

// The controller RPCs, served only on the controller listener (see
// api_versions.go): AlterPartition (key 56) v0-v3, BrokerRegistration (key 62)
// v0-v4, BrokerHeartbeat (key 63) v0-v2, AllocateProducerIDs (key 67) v0.
//
// Brokers send them to the active controller (registration, liveness and
// fencing, ISR changes, producer-id blocks); each handler hands the request to
// the controller (s.ctrl), which decides and commits through raft.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoalmq/shoal/cluster"
	"github.com/shoalmq/shoal/raftmeta"
)

func (s *Server) handleBrokerRegistration(ctx context.Context, _ *reqCtx, req *kmsg.BrokerRegistrationRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.BrokerRegistrationResponse)
	resp.BrokerEpoch = -1
	if req.ClusterID != s.meta.Image().ClusterID {
		resp.ErrorCode = kerr.InconsistentClusterID.Code
		return resp, nil
	}
	b := raftmeta.Broker{ID: req.BrokerID, IncarnationID: req.IncarnationID}
	if req.Rack != nil {
		b.Rack = *req.Rack
	}
	for _, l := range req.Listeners {
		b.Endpoints = append(b.Endpoints, raftmeta.Endpoint{Listener: l.Name, Host: l.Host, Port: int32(l.Port), SecurityProtocol: "PLAINTEXT"})
	}
	// A broker that is not a voter (process.roles=broker) follows the
	// metadata log as a learner. Registering is how it joins: it becomes
	// a learner, reachable for raft at its inter-broker endpoint (whose
	// listener hands raft connections to its transport), before its
	// registration is committed, so the registration reaches it. Both
	// steps are idempotent, so a restarted broker joins the same way.
	if !s.meta.IsVoter(b.ID) {
		addr, ok := cluster.EndpointAddr(b.Endpoints, s.cfg.InterBrokerListener)
		var err error = &raftmeta.Error{Code: kerr.InvalidRequest, Message: "a broker registration without listeners"}
		if ok {
			err = s.meta.AddLearnerAt(ctx, b.ID, addr)
		}
		if err != nil {
			resp.ErrorCode = errorCode(err)
			return resp, nil
		}
	}
	epoch, err := s.ctrl.RegisterBrokerEpoch(ctx, b)
	if err != nil {
		resp.ErrorCode = errorCode(err)
		return resp, nil
	}
	resp.BrokerEpoch = epoch
	return resp, nil
}

func (s *Server) handleBrokerHeartbeat(ctx context.Context, rc *reqCtx, req *kmsg.BrokerHeartbeatRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.BrokerHeartbeatResponse)
	resp.IsCaughtUp = true
	if req.WantShutdown {
		if err := s.ctrl.ControlledShutdown(ctx, req.BrokerID, req.BrokerEpoch); err != nil {
			resp.ErrorCode = errorCode(err)
			return resp, nil
		}
		resp.IsFenced, resp.ShouldShutdown = true, true
		return resp, nil
	}
	fenced, err := s.ctrl.Heartbeat(ctx, req.BrokerID, req.BrokerEpoch)
	if err == nil {
		rc.conn.heartbeatFrom.Store(&raftmeta.BrokerProbe{ID: req.BrokerID, Epoch: req.BrokerEpoch})
	}
	resp.IsFenced = fenced
	resp.ErrorCode = errorCode(err)
	return resp, nil
}

func (s *Server) handleAlterPartition(ctx context.Context, _ *reqCtx, req *kmsg.AlterPartitionRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.AlterPartitionResponse)
	areq := raftmeta.AlterPartitionRequest{BrokerID: req.BrokerID, BrokerEpoch: req.BrokerEpoch}
	for _, rt := range req.Topics {
		for _, rp := range rt.Partitions {
			it := raftmeta.AlterPartitionItem{TopicID: rt.TopicID, Topic: rt.Topic, Partition: rp.Partition, LeaderEpoch: rp.LeaderEpoch, PartitionEpoch: rp.PartitionEpoch, NewISR: rp.NewISR}
			if req.Version >= 3 {
				it.NewISR = nil
				for _, e := range rp.NewEpochISR {
					it.NewISR = append(it.NewISR, e.BrokerID)
				}
			}
			areq.Partitions = append(areq.Partitions, it)
		}
	}
	results, err := s.ctrl.AlterPartition(ctx, areq)
	if err != nil {
		resp.ErrorCode = errorCode(err)
		return resp, nil
	}
	for _, r := range results {
		rt := kmsg.NewAlterPartitionResponseTopic()
		rt.Topic, rt.TopidID = r.Topic, r.TopicID
		rp := kmsg.NewAlterPartitionResponseTopicPartition()
		rp.Partition = r.Partition
		rp.ErrorCode = errorCode(r.Err)
		rp.LeaderID, rp.LeaderEpoch, rp.ISR, rp.PartitionEpoch = r.State.Leader, r.State.LeaderEpoch, r.State.ISR, r.State.PartitionEpoch
		rt.Partitions = append(rt.Partitions, rp)
		resp.Topics = append(resp.Topics, rt)
	}
	return resp, nil
}

func (s *Server) handleAllocateProducerIDs(ctx context.Context, _ *reqCtx, req *kmsg.AllocateProducerIDsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.AllocateProducerIDsResponse)
	first, err := s.ctrl.AllocateProducerIDs(ctx, req.BrokerID, cluster.ProducerIDBlock)
	if err != nil {
		resp.ErrorCode = errorCode(err)
		return resp, nil
	}
	resp.ProducerIDStart, resp.ProducerIDLen = first, cluster.ProducerIDBlock
	return resp, nil
}
