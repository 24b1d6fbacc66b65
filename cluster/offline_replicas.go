package cluster

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoalmq/shoal/raftmeta"
)

// LostDirectory is Kafka's reserved directory id for "unspecified offline
// dirs" (DirectoryId.LOST). Assigning replicas to it is how a broker tells
// the controller those replicas are on a log dir that failed.
var LostDirectory = [16]byte{15: 1}

// ReplicasOffline tells the controller that this broker's replicas of
// parts are on a log dir that went offline, so that it moves their
// leadership away and takes this broker out of their ISRs. On the wire it
// is AssignReplicasToDirs (key 73) naming LostDirectory. errs has one
// entry per part.
func (c *ControllerClient) ReplicasOffline(ctx context.Context, parts []raftmeta.TopicIDPartition) (errs []error, err error) {
	id, epoch := c.cfg.NodeID, c.brokerEpoch.Load()
	err = c.withController(ctx, func() error {
		var err error
		errs, err = c.ctrl.ReplicasOffline(ctx, id, epoch, parts)
		return err
	}, func(leader int32) error {
		req := kmsg.NewPtrAssignReplicasToDirsRequest()
		req.SetVersion(c.cfg.Version(req.Key()))
		req.BrokerID, req.BrokerEpoch = id, epoch
		dir := kmsg.NewAssignReplicasToDirsRequestDirectory()
		dir.ID = LostDirectory
		byTopic := map[[16]byte]int{}
		for _, tp := range parts {
			i, ok := byTopic[tp.TopicID]
			if !ok {
				t := kmsg.NewAssignReplicasToDirsRequestDirectoryTopic()
				t.TopicID = tp.TopicID
				dir.Topics = append(dir.Topics, t)
				i = len(dir.Topics) - 1
				byTopic[tp.TopicID] = i
			}
			p := kmsg.NewAssignReplicasToDirsRequestDirectoryTopicPartition()
			p.Partition = tp.Partition
			dir.Topics[i].Partitions = append(dir.Topics[i].Partitions, p)
		}
		req.Directories = append(req.Directories, dir)
		resp, err := callController(ctx, c, laneControllerISR, leader, req, func(r *kmsg.AssignReplicasToDirsResponse) int16 { return r.ErrorCode })
		if err != nil {
			return err
		}
		codes := map[raftmeta.TopicIDPartition]int16{}
		for _, d := range resp.Directories {
			for _, t := range d.Topics {
				for _, p := range t.Partitions {
					codes[raftmeta.TopicIDPartition{TopicID: t.TopicID, Partition: p.Partition}] = p.ErrorCode
				}
			}
		}
		errs = make([]error, len(parts))
		for i, tp := range parts {
			errs[i] = kerr.ErrorForCode(codes[tp])
		}
		return nil
	})
	return errs, err
}
