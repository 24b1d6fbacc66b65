package broker

// DescribeLogDirs (key 35), v1-v4 on every listener.
//
// Every log directory of this node with its total and usable bytes, and the
// size of each (requested) partition in it. A log dir that went offline
// after an I/O error answers KAFKA_STORAGE_ERROR with no partitions, as in
// Kafka. Deviation: offset lag and future
// (reassignment) replicas are not reported: shoal has no intra-broker moves.

import (
	"context"
	"errors"
	"path/filepath"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoalmq/shoal/log"
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
		if errors.Is(d.Err, log.ErrStorage) {
			// Offline, as Kafka reports it: the error and no partitions.
			rd.ErrorCode = kerr.KafkaStorageError.Code
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
	for _, p := range s.logs.Partitions() {
		if !want(p.Topic(), p.Index()) {
			continue
		}
		rd := byDir[filepath.Clean(filepath.Dir(p.Dir()))]
		if rd == nil {
			continue
		}
		if topicIdx[rd] == nil {
			topicIdx[rd] = map[string]int{}
		}
		ti, ok := topicIdx[rd][p.Topic()]
		if !ok {
			rt := kmsg.NewDescribeLogDirsResponseDirTopic()
			rt.Topic = p.Topic()
			rd.Topics = append(rd.Topics, rt)
			ti = len(rd.Topics) - 1
			topicIdx[rd][p.Topic()] = ti
		}
		rp := kmsg.NewDescribeLogDirsResponseDirTopicPartition()
		rp.Partition = p.Index()
		rp.Size = p.Size()
		rd.Topics[ti].Partitions = append(rd.Topics[ti].Partitions, rp)
	}
	return resp, nil
}
