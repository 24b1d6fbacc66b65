package broker

// AssignReplicasToDirs (key 73) v0, on the controller listener only.
//
// A broker whose log dir failed sends its replicas there assigned to
// Kafka's LOST directory ("unspecified offline dirs"); the controller moves
// their leadership to other ISR replicas and takes the broker out of their
// ISRs (raftmeta.Controller.ReplicasOffline). Deviation: shoal keeps no
// per-replica directory in the metadata, so an assignment to any other
// directory is answered INVALID_REQUEST per partition.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoalmq/shoal/cluster"
	"github.com/shoalmq/shoal/raftmeta"
)

const assignReplicasToDirsKey = 73

func (s *Server) handleAssignReplicasToDirs(ctx context.Context, _ *reqCtx, req *kmsg.AssignReplicasToDirsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.AssignReplicasToDirsResponse)
	var lost []raftmeta.TopicIDPartition
	for _, d := range req.Directories {
		if d.ID != cluster.LostDirectory {
			continue
		}
		for _, t := range d.Topics {
			for _, p := range t.Partitions {
				lost = append(lost, raftmeta.TopicIDPartition{TopicID: t.TopicID, Partition: p.Partition})
			}
		}
	}
	errs, err := s.ctrl.ReplicasOffline(ctx, req.BrokerID, req.BrokerEpoch, lost)
	if err != nil {
		resp.ErrorCode = errorCode(err)
		return resp, nil
	}
	i := 0
	for _, d := range req.Directories {
		rd := kmsg.NewAssignReplicasToDirsResponseDirectory()
		rd.ID = d.ID
		for _, t := range d.Topics {
			rt := kmsg.NewAssignReplicasToDirsResponseDirectoryTopic()
			rt.TopicID = t.TopicID
			for _, p := range t.Partitions {
				rp := kmsg.NewAssignReplicasToDirsResponseDirectoryTopicPartition()
				rp.Partition = p.Partition
				if d.ID != cluster.LostDirectory {
					rp.ErrorCode = kerr.InvalidRequest.Code
				} else {
					rp.ErrorCode = errorCode(errs[i])
					i++
				}
				rt.Partitions = append(rt.Partitions, rp)
			}
			rd.Topics = append(rd.Topics, rt)
		}
		resp.Directories = append(resp.Directories, rd)
	}
	return resp, nil
}
