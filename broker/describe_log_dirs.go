package broker

// DescribeLogDirs (key 35), v1-v4 on every listener.
//
// Every log directory of this node with its total and usable bytes, and the
// size of each (requested) partition in it. A log dir that went offline
// after an I/O error answers KAFKA_STORAGE_ERROR with no partitions, as in
// Kafka; one whose file system cannot tell its size answers
// UNKNOWN_SERVER_ERROR the same way. While AlterReplicaLogDirs moves a
// partition, its future replica is listed in the target dir with IsFuture
// and, as OffsetLag, how many offsets it is behind the current one
// (Kafka's lag of a future replica); a current replica's OffsetLag is 0.

import (
	"context"
	"path/filepath"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func (s *Server) handleDescribeLogDirs(_ context.Context, _ *reqCtx, req *kmsg.DescribeLogDirsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.DescribeLogDirsResponse)
	want := func(string, int32) bool { return true }
	if req.Topics != nil {
		set := map[string]map[int32]bool{}
		for _, t := range req.Topics {
			set[t.Topic] = map[int32]bool{}
			for _, p := range t.Partitions {
				set[t.Topic][p] = true
			}
		}
		want = func(t string, p int32) bool { return set[t][p] }
	}
	byDir := map[string]*kmsg.DescribeLogDirsResponseDir{}
	for _, d := range s.logs.Dirs() {
		rd := kmsg.NewDescribeLogDirsResponseDir()
		rd.Dir = d.Path
		if d.Err != nil {
			// Offline (KAFKA_STORAGE_ERROR), or its size unreadable
			// (UNKNOWN_SERVER_ERROR), as Kafka reports them: the error,
			// no sizes and no partitions.
			rd.ErrorCode = errorCode(d.Err)
		} else {
			rd.TotalBytes, rd.UsableBytes = d.TotalBytes, d.UsableBytes
		}
		resp.Dirs = append(resp.Dirs, rd)
	}
	for i := range resp.Dirs {
		if resp.Dirs[i].ErrorCode == 0 {
			byDir[filepath.Clean(resp.Dirs[i].Dir)] = &resp.Dirs[i]
		}
	}
	topicIdx := map[*kmsg.DescribeLogDirsResponseDir]map[string]int{}
	add := func(dir, topic string, rp kmsg.DescribeLogDirsResponseDirTopicPartition) {
		rd := byDir[filepath.Clean(dir)]
		if rd == nil {
			return
		}
		if topicIdx[rd] == nil {
			topicIdx[rd] = map[string]int{}
		}
		ti, ok := topicIdx[rd][topic]
		if !ok {
			rt := kmsg.NewDescribeLogDirsResponseDirTopic()
			rt.Topic = topic
			rd.Topics = append(rd.Topics, rt)
			ti = len(rd.Topics) - 1
			topicIdx[rd][topic] = ti
		}
		rd.Topics[ti].Partitions = append(rd.Topics[ti].Partitions, rp)
	}
	for _, p := range s.logs.Partitions() {
		if !want(p.Topic(), p.Index()) {
			continue
		}
		rp := kmsg.NewDescribeLogDirsResponseDirTopicPartition()
		rp.Partition = p.Index()
		rp.Size = p.Size()
		add(filepath.Dir(p.Dir()), p.Topic(), rp)
	}
	for _, f := range s.logs.Futures() {
		if !want(f.Topic, f.Partition) {
			continue
		}
		rp := kmsg.NewDescribeLogDirsResponseDirTopicPartition()
		rp.Partition = f.Partition
		rp.Size = f.Size
		rp.OffsetLag = f.OffsetLag
		rp.IsFuture = true
		add(f.Dir, f.Topic, rp)
	}
	return resp, nil
}
