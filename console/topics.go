package console

import (
	"context"
	"net/http"

	"github.com/twmb/franz-go/pkg/kadm"
)

type topicRow struct {
	Name       string  `json:"name"`
	Internal   bool    `json:"internal"`
	Partitions int     `json:"partitions"`
	RF         int     `json:"replicationFactor"`
	Size       int64   `json:"size"`
	InRate     float64 `json:"inRate"`  // records/s produced, latest sample
	OutRate    float64 `json:"outRate"` // records/s fetched, latest sample
	Error      string  `json:"error,omitempty"`
}

type topicsView struct {
	Topics    []topicRow `json:"topics"`
	SizeError string     `json:"sizeError,omitempty"`
}

func (c *Console) topics(ctx context.Context, k *kafkaConn, _ *http.Request) (any, error) {
	td, err := k.adm.ListTopicsWithInternal(ctx)
	if err != nil {
		return nil, err
	}
	sizes, _, sizeErr := k.topicSizes(ctx, nil)
	v := topicsView{Topics: []topicRow{}, SizeError: errString(sizeErr)}
	for _, t := range td.Sorted() {
		row := topicRow{Name: t.Topic, Internal: t.IsInternal, Partitions: len(t.Partitions),
			RF: t.Partitions.NumReplicas(), Size: sizes[t.Topic], Error: errString(t.Err)}
		if p, ok := c.hist.last("in:" + t.Topic); ok {
			row.InRate = p.V
		}
		if p, ok := c.hist.last("out:" + t.Topic); ok {
			row.OutRate = p.V
		}
		v.Topics = append(v.Topics, row)
	}
	return v, nil
}

type partitionRow struct {
	Partition   int32   `json:"partition"`
	Leader      int32   `json:"leader"`
	LeaderEpoch int32   `json:"leaderEpoch"`
	Replicas    []int32 `json:"replicas"`
	ISR         []int32 `json:"isr"`
	Offline     []int32 `json:"offline"`
	Start       int64   `json:"start"`
	End         int64   `json:"end"`
	// LSO is the last stable offset: the end as a read_committed consumer
	// sees it (below any open transaction).
	LSO   int64  `json:"lso"`
	Size  int64  `json:"size"`
	Error string `json:"error,omitempty"`
}

type configRow struct {
	Name      string `json:"name"`
	Value     string `json:"value"`
	Source    string `json:"source"`
	Sensitive bool   `json:"sensitive"`
}

type topicView struct {
	Name        string         `json:"name"`
	ID          string         `json:"id"`
	Internal    bool           `json:"internal"`
	Partitions  []partitionRow `json:"partitions"`
	Configs     []configRow    `json:"configs"`
	ConfigError string         `json:"configError,omitempty"`
	InRate      []point        `json:"inRate"`
	OutRate     []point        `json:"outRate"`
}

func (c *Console) topic(ctx context.Context, k *kafkaConn, r *http.Request) (any, error) {
	name, err := nameParam(r)
	if err != nil {
		return nil, err
	}
	td, err := k.adm.ListTopicsWithInternal(ctx, name)
	if err != nil {
		return nil, err
	}
	t, ok := td[name]
	if !ok {
		return nil, &apiError{http.StatusNotFound, "unknown topic " + name}
	}
	if t.Err != nil {
		return nil, &apiError{http.StatusNotFound, name + ": " + t.Err.Error()}
	}
	starts, ends, err := k.startsEnds(ctx, name)
	if err != nil {
		return nil, err
	}
	stables, err := k.adm.ListCommittedOffsets(ctx, name)
	if err != nil {
		return nil, err
	}
	// A set naming the topic's partitions: a topic with none listed would
	// ask DescribeLogDirs for nothing.
	set := kadm.TopicsSet{}
	for _, p := range t.Partitions {
		set.Add(name, p.Partition)
	}
	_, sizes, _ := k.topicSizes(ctx, set)
	v := topicView{Name: name, ID: t.ID.String(), Internal: t.IsInternal, Partitions: []partitionRow{},
		InRate: c.hist.get("in:" + name), OutRate: c.hist.get("out:" + name)}
	for _, p := range t.Partitions.Sorted() {
		row := partitionRow{Partition: p.Partition, Leader: p.Leader, LeaderEpoch: p.LeaderEpoch,
			Replicas: p.Replicas, ISR: p.ISR, Offline: p.OfflineReplicas, Start: -1, End: -1, LSO: -1,
			Size: sizes[name][p.Partition], Error: errString(p.Err)}
		if o, ok := starts.Lookup(name, p.Partition); ok && o.Err == nil {
			row.Start = o.Offset
		}
		if o, ok := ends.Lookup(name, p.Partition); ok && o.Err == nil {
			row.End = o.Offset
		}
		if o, ok := stables.Lookup(name, p.Partition); ok && o.Err == nil {
			row.LSO = o.Offset
		}
		v.Partitions = append(v.Partitions, row)
	}
	rcs, err := k.adm.DescribeTopicConfigs(ctx, name)
	if err == nil {
		var rc kadm.ResourceConfig
		rc, err = rcs.On(name, nil)
		for _, cfg := range rc.Configs {
			row := configRow{Name: cfg.Key, Source: cfg.Source.String(), Sensitive: cfg.Sensitive}
			if cfg.Value != nil && !cfg.Sensitive {
				row.Value = *cfg.Value
			}
			v.Configs = append(v.Configs, row)
		}
	}
	v.ConfigError = errString(err)
	return v, nil
}
