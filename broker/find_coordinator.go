package broker

// FindCoordinator (key 10), v0-v5 on every listener.
//
// Group (key type 0), transaction (key type 1) and share (key type 2)
// coordinators: the leader of the __consumer_offsets, __transaction_state or
// __share_group_state partition the key hashes to, creating the internal
// topic on first use as Kafka does. Batched keys from v4.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoalmq/shoal/coordinator"
	"github.com/shoalmq/shoal/coordruntime"
)

// Coordinator key types of FindCoordinator.
const (
	coordinatorGroup = 0
	coordinatorTxn   = 1
	coordinatorShare = 2
)

func (s *Server) handleFindCoordinator(ctx context.Context, rc *reqCtx, req *kmsg.FindCoordinatorRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.FindCoordinatorResponse)
	keys := req.CoordinatorKeys
	if req.Version < 4 {
		keys = []string{req.CoordinatorKey}
	}
	for _, key := range keys {
		c := kmsg.NewFindCoordinatorResponseCoordinator()
		c.Key = key
		c.NodeID, c.Port = -1, -1
		if err := s.findCoordinator(ctx, rc, req.CoordinatorType, key, &c); err != nil {
			c.ErrorCode = err.Code
			c.ErrorMessage = strPtr(err.Description)
		}
		resp.Coordinators = append(resp.Coordinators, c)
	}
	if req.Version < 4 {
		c := resp.Coordinators[0]
		resp.ErrorCode, resp.ErrorMessage, resp.NodeID, resp.Host, resp.Port = c.ErrorCode, c.ErrorMessage, c.NodeID, c.Host, c.Port
	}
	return resp, nil
}

func (s *Server) findCoordinator(ctx context.Context, rc *reqCtx, kind int8, key string, out *kmsg.FindCoordinatorResponseCoordinator) *kerr.Error {
	if key == "" {
		return kerr.InvalidRequest
	}
	var topic string
	switch kind {
	case coordinatorGroup:
		topic = coordruntime.OffsetsTopic
	case coordinatorTxn:
		topic = coordruntime.TxnStateTopic
	case coordinatorShare:
		topic = coordruntime.ShareStateTopic
	default:
		return kerr.InvalidRequest
	}
	if err := s.internalTopicCreator(topic)(ctx); err != nil {
		s.log.Warn("creating "+topic, "err", err)
		return kerr.CoordinatorNotAvailable
	}
	img := s.meta.Image()
	t := img.Topics[topic]
	// Transactional ids hash to their partition as group ids do
	// (coordinator.TxnStatePartition).
	ps := t.Partitions[coordinator.GroupPartition(key, int32(len(t.Partitions)))]
	for _, b := range s.brokerList(img, rc.conn.listener) {
		if b.NodeID == ps.Leader {
			out.NodeID, out.Host, out.Port = b.NodeID, b.Host, b.Port
			return nil
		}
	}
	return kerr.CoordinatorNotAvailable
}

// internalTopicCreator is what creates an internal topic, on first use, as
// its coordinator needs it (its partition count, compacted); nil for any
// other name.
func (s *Server) internalTopicCreator(name string) func(context.Context) error {
	switch name {
	case coordruntime.OffsetsTopic:
		return s.coord.Groups.EnsureTopic
	case coordruntime.TxnStateTopic:
		return s.coord.Txns.EnsureTopic
	case coordruntime.ShareStateTopic:
		return s.coord.ShareState.EnsureTopic
	}
	return nil
}
