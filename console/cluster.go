package console

import (
	"context"
	"net/http"
	"slices"
	"sort"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

type brokerView struct {
	ID         int32  `json:"id"`
	Host       string `json:"host"`
	Port       int32  `json:"port"`
	Rack       string `json:"rack,omitempty"`
	Controller bool   `json:"controller"`
}

type partRef struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Leader    int32  `json:"leader"`
	Replicas  int    `json:"replicas"`
	ISR       int    `json:"isr"`
}

type voterView struct {
	ID           int32 `json:"id"`
	LogEndOffset int64 `json:"logEndOffset"`
	// Lag is how far this replica's log end is behind the leader's.
	Lag            int64 `json:"lag"`
	LastFetchMs    int64 `json:"lastFetchMs"`
	LastCaughtUpMs int64 `json:"lastCaughtUpMs"`
}

type quorumView struct {
	Leader        int32       `json:"leader"`
	Epoch         int32       `json:"epoch"`
	HighWatermark int64       `json:"highWatermark"`
	Voters        []voterView `json:"voters"`
	Observers     []voterView `json:"observers"`
}

type clusterView struct {
	ClusterID       string       `json:"clusterId"`
	Controller      int32        `json:"controller"`
	Brokers         []brokerView `json:"brokers"`
	Topics          int          `json:"topics"`
	Partitions      int          `json:"partitions"`
	UnderReplicated []partRef    `json:"underReplicated"`
	Offline         []partRef    `json:"offline"`
	Quorum          *quorumView  `json:"quorum,omitempty"`
	QuorumError     string       `json:"quorumError,omitempty"`
}

// cluster answers from Metadata (brokers, controller, partition health)
// and DescribeQuorum (the metadata quorum and each voter's lag).
func (c *Console) cluster(ctx context.Context, k *kafkaConn, _ *http.Request) (any, error) {
	md, err := k.adm.Metadata(ctx)
	if err != nil {
		return nil, err
	}
	v := clusterView{ClusterID: md.Cluster, Controller: md.Controller,
		UnderReplicated: []partRef{}, Offline: []partRef{}, Brokers: []brokerView{}}
	for _, b := range md.Brokers {
		bv := brokerView{ID: b.NodeID, Host: b.Host, Port: b.Port, Controller: b.NodeID == md.Controller}
		if b.Rack != nil {
			bv.Rack = *b.Rack
		}
		v.Brokers = append(v.Brokers, bv)
	}
	sort.Slice(v.Brokers, func(i, j int) bool { return v.Brokers[i].ID < v.Brokers[j].ID })
	for _, t := range md.Topics.Sorted() {
		v.Topics++
		for _, p := range t.Partitions.Sorted() {
			v.Partitions++
			ref := partRef{Topic: t.Topic, Partition: p.Partition, Leader: p.Leader, Replicas: len(p.Replicas), ISR: len(p.ISR)}
			switch {
			case p.Leader < 0 || p.Err == kerr.LeaderNotAvailable:
				v.Offline = append(v.Offline, ref)
			case len(p.ISR) < len(p.Replicas):
				v.UnderReplicated = append(v.UnderReplicated, ref)
			}
		}
	}
	v.Quorum, err = k.describeQuorum(ctx)
	v.QuorumError = errString(err)
	return v, nil
}

func (k *kafkaConn) describeQuorum(ctx context.Context) (*quorumView, error) {
	req := kmsg.NewPtrDescribeQuorumRequest()
	rt := kmsg.NewDescribeQuorumRequestTopic()
	rt.Topic = "__cluster_metadata"
	rt.Partitions = append(rt.Partitions, kmsg.NewDescribeQuorumRequestTopicPartition())
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, k.cl)
	if err != nil {
		return nil, err
	}
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return nil, err
	}
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
				return nil, err
			}
			q := &quorumView{Leader: p.LeaderID, Epoch: p.LeaderEpoch, HighWatermark: p.HighWatermark}
			var leaderEnd int64
			for _, r := range p.CurrentVoters {
				if r.ReplicaID == p.LeaderID {
					leaderEnd = r.LogEndOffset
				}
			}
			replicas := func(rs []kmsg.DescribeQuorumResponseTopicPartitionReplicaState) []voterView {
				out := []voterView{}
				for _, r := range rs {
					out = append(out, voterView{ID: r.ReplicaID, LogEndOffset: r.LogEndOffset,
						Lag: max(0, leaderEnd-r.LogEndOffset), LastFetchMs: r.LastFetchTimestamp, LastCaughtUpMs: r.LastCaughtUpTimestamp})
				}
				slices.SortFunc(out, func(a, b voterView) int { return int(a.ID - b.ID) })
				return out
			}
			q.Voters, q.Observers = replicas(p.CurrentVoters), replicas(p.Observers)
			return q, nil
		}
	}
	return nil, nil
}

// topicSizes sums DescribeLogDirs sizes by topic and by partition, over
// every replica on every broker.
func (k *kafkaConn) topicSizes(ctx context.Context, topics kadm.TopicsSet) (map[string]int64, map[string]map[int32]int64, error) {
	dirs, err := k.adm.DescribeAllLogDirs(ctx, topics)
	byTopic := map[string]int64{}
	byPartition := map[string]map[int32]int64{}
	dirs.Each(func(d kadm.DescribedLogDir) {
		d.Topics.Each(func(p kadm.DescribedLogDirPartition) {
			byTopic[p.Topic] += p.Size
			if byPartition[p.Topic] == nil {
				byPartition[p.Topic] = map[int32]int64{}
			}
			byPartition[p.Topic][p.Partition] += p.Size
		})
	})
	return byTopic, byPartition, err
}
