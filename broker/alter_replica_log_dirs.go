package broker

// AlterReplicaLogDirs (key 34), v1-v2 on every listener.
//
// Moves this node's replica of each partition to another of its log.dirs,
// named by absolute path as Kafka's clients send it. The answer comes once
// the future replica exists in the target dir; the copy and the swap run in
// the background (log/alterdir.go), and DescribeLogDirs shows the future
// replica (IsFuture) until the partition is in its new dir. Authorized as
// ALTER on CLUSTER (acl.APIRules), as in Kafka. Errors per partition as
// Kafka's ReplicaManager answers them: INVALID_TOPIC_EXCEPTION for a topic
// name too long for the future dir's name, LOG_DIR_NOT_FOUND for a path
// that is not a log dir of this node, KAFKA_STORAGE_ERROR for an offline
// dir or partition, UNKNOWN_TOPIC_OR_PARTITION for a partition the
// metadata does not have, REPLICA_NOT_AVAILABLE for one this node holds no
// replica of.
//
// Deviations: Kafka remembers the target dir of a replica it does not hold
// yet and creates it there later; shoal answers REPLICA_NOT_AVAILABLE and
// remembers nothing. A move that a crash or shutdown interrupts is not
// resumed after the restart: the partition stays whole in its old dir and
// the move is asked for again. v0 (Kafka 1.1) is not served.

import (
	"context"
	"errors"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoalmq/shoal/log"
)

func (s *Server) handleAlterReplicaLogDirs(_ context.Context, _ *reqCtx, req *kmsg.AlterReplicaLogDirsRequest) (kmsg.Response, error) {
	img := s.meta.Image()
	return alterReplicaLogDirsAnswer(req, func(dir, topic string, idx int32) int16 {
		err := s.logs.MovePartition(topic, idx, dir)
		if errors.Is(err, log.ErrNoReplica) {
			if t := img.Topics[topic]; t == nil || !t.HasPartition(idx) {
				err = kerr.UnknownTopicOrPartition
			}
		}
		if err != nil {
			s.log.Warn("AlterReplicaLogDirs refused", "topic", topic, "partition", idx, "dir", dir, "error", err)
		}
		return errorCode(err)
	}), nil
}

// alterReplicaLogDirsAnswer answers every partition of req with what
// code returns for it, grouped by topic as Kafka groups them.
func alterReplicaLogDirsAnswer(req *kmsg.AlterReplicaLogDirsRequest, code func(dir, topic string, partition int32) int16) *kmsg.AlterReplicaLogDirsResponse {
	resp := req.ResponseKind().(*kmsg.AlterReplicaLogDirsResponse)
	topicIdx := map[string]int{}
	for _, d := range req.Dirs {
		for _, rt := range d.Topics {
			ti, ok := topicIdx[rt.Topic]
			if !ok {
				ot := kmsg.NewAlterReplicaLogDirsResponseTopic()
				ot.Topic = rt.Topic
				resp.Topics = append(resp.Topics, ot)
				ti = len(resp.Topics) - 1
				topicIdx[rt.Topic] = ti
			}
			for _, idx := range rt.Partitions {
				op := kmsg.NewAlterReplicaLogDirsResponseTopicPartition()
				op.Partition = idx
				op.ErrorCode = code(d.Dir, rt.Topic, idx)
				resp.Topics[ti].Partitions = append(resp.Topics[ti].Partitions, op)
			}
		}
	}
	return resp
}
