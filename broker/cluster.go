package broker

import (
	"context"
	"math"
	"path/filepath"
	"sync"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func (s *Server) handleDescribeCluster(_ context.Context, rc *reqCtx, req *kmsg.DescribeClusterRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.DescribeClusterResponse)
	img := s.meta.Image()
	resp.ClusterID = img.ClusterID
	resp.ControllerID = s.clientControllerID(img)
	resp.ClusterAuthorizedOperations = math.MinInt32
	brokers, fenced := s.listBrokers(img, rc.conn.listener, req.IncludeFencedBrokers)
	for _, b := range brokers {
		db := kmsg.NewDescribeClusterResponseBroker()
		db.NodeID, db.Host, db.Port, db.Rack = b.NodeID, b.Host, b.Port, b.Rack
		db.IsFenced = fenced[b.NodeID]
		resp.Brokers = append(resp.Brokers, db)
	}
	return resp, nil
}

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
		rd.TotalBytes, rd.UsableBytes = d.TotalBytes, d.UsableBytes
		resp.Dirs = append(resp.Dirs, rd)
	}
	for i := range resp.Dirs {
		byDir[filepath.Clean(resp.Dirs[i].Dir)] = &resp.Dirs[i]
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

// producerIDs hands out producer ids from blocks the controller allocates,
// so InitProducerID costs a raft round only once per block.
type producerIDs struct {
	mu        sync.Mutex
	next, end int64
}

const producerIDBlock = 1000

func (s *Server) handleInitProducerID(ctx context.Context, _ *reqCtx, req *kmsg.InitProducerIDRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.InitProducerIDResponse)
	resp.ProducerID, resp.ProducerEpoch = -1, -1
	if req.TransactionalID != nil {
		// Transactions are not implemented yet; say so instead of handing
		// out an id the transaction APIs could not honour.
		resp.ErrorCode = kerr.TransactionalIDAuthorizationFailed.Code
		return resp, nil
	}
	s.pids.mu.Lock()
	defer s.pids.mu.Unlock()
	if s.pids.next >= s.pids.end {
		first, n, err := s.allocateProducerIDs(ctx)
		if err != nil {
			resp.ErrorCode = errorCode(err)
			return resp, nil
		}
		s.pids.next, s.pids.end = first, first+n
	}
	resp.ProducerID, resp.ProducerEpoch = s.pids.next, 0
	s.pids.next++
	return resp, nil
}
