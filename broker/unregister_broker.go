package broker

// UnregisterBroker (key 64), v0 on every listener; relayed to the active
// controller. The broker's leadership and ISR memberships move away and it
// leaves the cluster metadata, so DescribeCluster and Metadata stop
// listing it. Replicas still assigned to it stay so: move them first
// (shoal cluster remove-broker does). As in Kafka, a broker still running
// registers again; stop it before unregistering it, or let remove-broker
// do both in order. Deviations: none known.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func (s *Server) handleUnregisterBroker(ctx context.Context, _ *reqCtx, req *kmsg.UnregisterBrokerRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.UnregisterBrokerResponse)
	err := s.ctrl.UnregisterBroker(ctx, req.BrokerID)
	resp.ErrorCode, resp.ErrorMessage = errorCode(err), errorMessage(err)
	return resp, nil
}
