package console

import (
	"context"
	"net/http"
	"slices"
	"strconv"

	dto "github.com/prometheus/client_model/go"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

type sharePartitionRow struct {
	Topic       string `json:"topic"`
	Partition   int32  `json:"partition"`
	StartOffset int64  `json:"startOffset"` // share-partition start offset (SPSO)
	End         int64  `json:"end"`         // the partition's end offset
	// Lag is what DescribeShareGroupOffsets reports: records at or above
	// the start offset not yet acknowledged or archived (-1: unknown).
	Lag    int64  `json:"lag"`
	Member string `json:"member,omitempty"`
	// States counts the in-flight records by state (available, acquired,
	// acknowledged, archived) from this node's
	// shoal_share_in_flight_records; nil when this node does not lead the
	// partition (its leader's console has them).
	States map[string]int64 `json:"states"`
	Error  string           `json:"error,omitempty"`
}

type shareGroupView struct {
	Name       string              `json:"name"`
	State      string              `json:"state"`
	Epoch      int32               `json:"epoch"`
	Assignor   string              `json:"assignor"`
	Members    []memberView        `json:"members"`
	Partitions []sharePartitionRow `json:"partitions"`
	Configs    map[string]string   `json:"configs"`
	// DeadLetterTopic is the group's errors.deadletterqueue.topic.name.
	DeadLetterTopic string `json:"deadLetterTopic,omitempty"`
	// DeadLetters is the dead-letter topic's end offset on partition 0.
	DeadLetters int64 `json:"deadLetters"`
	// DeadLettered and ExpiredLocks are this node's counters
	// (shoal_share_dead_lettered_records_total by source topic, and
	// shoal_share_expired_locks_total for all groups).
	DeadLettered map[string]float64 `json:"deadLettered"`
	ExpiredLocks float64            `json:"expiredLocks"`
	Error        string             `json:"error,omitempty"`
}

// shareGroupConfigs are the group configs the share-group page shows.
var shareGroupConfigs = []string{
	"share.delivery.count.limit", "share.record.lock.duration.ms", "share.auto.offset.reset",
	"share.isolation.level", "errors.deadletterqueue.topic.name",
}

// shareGroup describes a share group from ShareGroupDescribe,
// DescribeShareGroupOffsets and the group's configs. Per-record states
// (acquired, acknowledged, delivery counts, lock expiries) are not in any
// Kafka API, so the page says so rather than guessing.
func (c *Console) shareGroup(ctx context.Context, k *kafkaConn, r *http.Request) (any, error) {
	name := r.URL.Query().Get("name")
	if name == "" {
		return nil, badRequest("name is required")
	}
	described, err := k.adm.DescribeShareGroups(ctx, name)
	if err != nil {
		return nil, err
	}
	g, ok := described[name]
	if !ok {
		return nil, &apiError{http.StatusNotFound, "unknown share group " + name}
	}
	if g.Err != nil {
		return nil, &apiError{http.StatusNotFound, "share group " + name + ": " + g.Err.Error()}
	}
	v := shareGroupView{Name: name, State: g.GroupState, Epoch: g.GroupEpoch, Assignor: g.Assignor,
		Members: []memberView{}, Partitions: []sharePartitionRow{}, DeadLettered: map[string]float64{}, DeadLetters: -1}
	owner := map[string]map[int32]string{}
	for _, m := range g.Members {
		mv := memberView{ID: m.MemberID, ClientID: m.ClientID, ClientHost: m.ClientHost, Epoch: m.MemberEpoch, Assignment: topicsSetMap(m.Assignment)}
		for t, ps := range mv.Assignment {
			if owner[t] == nil {
				owner[t] = map[int32]string{}
			}
			for _, p := range ps {
				owner[t][p] = m.MemberID
			}
		}
		v.Members = append(v.Members, mv)
	}
	offs, err := k.adm.DescribeShareGroupOffsets(ctx, name)
	if err != nil {
		return nil, err
	}
	d := offs[name]
	if d.Err != nil {
		v.Error = d.Err.Error()
	}
	var topics []string
	for t := range d.Offsets {
		topics = append(topics, t)
	}
	var endErr error
	ends := map[string]map[int32]int64{}
	if len(topics) > 0 {
		listed, err := k.adm.ListEndOffsets(ctx, topics...)
		endErr = err
		listed.Each(func(o kadm.ListedOffset) {
			if ends[o.Topic] == nil {
				ends[o.Topic] = map[int32]int64{}
			}
			if o.Err == nil {
				ends[o.Topic][o.Partition] = o.Offset
			}
		})
	}
	for _, o := range d.Offsets.Sorted() {
		row := sharePartitionRow{Topic: o.Topic, Partition: o.Partition, StartOffset: o.StartOffset, Lag: o.Lag,
			End: -1, Member: owner[o.Topic][o.Partition], Error: errString(o.Err)}
		if e, ok := ends[o.Topic][o.Partition]; ok {
			row.End = e
		} else if endErr != nil && row.Error == "" {
			row.Error = endErr.Error()
		}
		v.Partitions = append(v.Partitions, row)
	}
	v.Configs, err = k.groupConfigs(ctx, name, shareGroupConfigs)
	if err != nil && v.Error == "" {
		v.Error = "group configs: " + err.Error()
	}
	v.DeadLetterTopic = v.Configs["errors.deadletterqueue.topic.name"]
	if v.DeadLetterTopic != "" {
		if _, end, err := k.partitionBounds(ctx, v.DeadLetterTopic, 0); err == nil {
			v.DeadLetters = end
		}
	}
	c.shareCounters(&v, topics)
	return v, nil
}

// groupResourceType is DescribeConfigs' resource type for groups
// (KIP-848, KIP-932).
const groupResourceType = kmsg.ConfigResourceType(32)

// groupConfigs reads the named configs of a group with DescribeConfigs.
func (k *kafkaConn) groupConfigs(ctx context.Context, group string, names []string) (map[string]string, error) {
	req := kmsg.NewPtrDescribeConfigsRequest()
	res := kmsg.NewDescribeConfigsRequestResource()
	res.ResourceType, res.ResourceName, res.ConfigNames = groupResourceType, group, names
	req.Resources = append(req.Resources, res)
	resp, err := req.RequestWith(ctx, k.cl)
	if err != nil {
		return map[string]string{}, err
	}
	out := map[string]string{}
	for _, r := range resp.Resources {
		if err := kerr.ErrorForCode(r.ErrorCode); err != nil {
			return out, err
		}
		for _, cfg := range r.Configs {
			if cfg.Value != nil {
				out[cfg.Name] = *cfg.Value
			}
		}
	}
	return out, nil
}

// shareCounters copies this node's share metrics for the group from the
// registry: in-flight records by state per partition, dead-lettered
// records by source topic, and lock expiries.
func (c *Console) shareCounters(v *shareGroupView, topics []string) {
	if c.cfg.Metrics == nil {
		return
	}
	fams, err := c.cfg.Metrics.Gather()
	if err != nil {
		return
	}
	label := func(m *dto.Metric, name string) string {
		for _, l := range m.GetLabel() {
			if l.GetName() == name {
				return l.GetValue()
			}
		}
		return ""
	}
	for _, f := range fams {
		switch f.GetName() {
		case "shoal_share_expired_locks_total":
			for _, m := range f.GetMetric() {
				v.ExpiredLocks += m.GetCounter().GetValue()
			}
		case "shoal_share_dead_lettered_records_total":
			for _, m := range f.GetMetric() {
				if t := label(m, "topic"); slices.Contains(topics, t) {
					v.DeadLettered[t] = m.GetCounter().GetValue()
				}
			}
		case "shoal_share_in_flight_records":
			for _, m := range f.GetMetric() {
				if label(m, "group") != v.Name {
					continue
				}
				t, p := label(m, "topic"), label(m, "partition")
				for i := range v.Partitions {
					row := &v.Partitions[i]
					if row.Topic == t && strconv.Itoa(int(row.Partition)) == p {
						if row.States == nil {
							row.States = map[string]int64{}
						}
						row.States[label(m, "state")] = int64(m.GetGauge().GetValue())
					}
				}
			}
		}
	}
}
