package console

import (
	"bytes"
	"cmp"
	"context"
	"net/http"
	"slices"
	"strconv"
	"strings"

	dto "github.com/prometheus/client_model/go"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoalmq/shoal/redrive"
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
	// Unsettled are the records delivered and not yet done, from this
	// node's share-partition state; nil when this node does not lead the
	// partition. DeliveryLimit is what their delivery counts count to.
	Unsettled     []unsettledView `json:"unsettled"`
	DeliveryLimit int             `json:"deliveryLimit,omitempty"`
	Error         string          `json:"error,omitempty"`
}

type unsettledView struct {
	First         int64  `json:"first"`
	Last          int64  `json:"last"`
	State         string `json:"state"`
	DeliveryCount int    `json:"deliveryCount"`
	Member        string `json:"member,omitempty"`
	// Deadline is the lock expiry (acquired) or the end of the release
	// backoff (available), unix milliseconds; 0 if none.
	Deadline int64 `json:"deadline"`
}

// deadLetterView is one dead letter of the group, with why it was given
// up on (the __dlq.errors.* headers).
type deadLetterView struct {
	Partition       int32  `json:"partition"`
	Offset          int64  `json:"offset"`
	Timestamp       int64  `json:"timestamp"`
	Key             []byte `json:"key"`
	SourceTopic     string `json:"sourceTopic"`
	SourcePartition string `json:"sourcePartition"`
	SourceOffset    string `json:"sourceOffset"`
	DeliveryCount   string `json:"deliveryCount"`
	Reason          string `json:"reason"`
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
	// DeadLetters is how many records the dead-letter topic holds (all
	// groups' and partitions'), -1 when unknown.
	DeadLetters int64 `json:"deadLetters"`
	// RecentDeadLetters are this group's newest dead letters.
	RecentDeadLetters []deadLetterView `json:"recentDeadLetters"`
	DeadLetterError   string           `json:"deadLetterError,omitempty"`
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
	name, err := nameParam(r)
	if err != nil {
		return nil, err
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
	owner := partitionOwners{}
	for _, m := range g.Members {
		mv := memberView{ID: m.MemberID, ClientID: m.ClientID, ClientHost: m.ClientHost, Epoch: m.MemberEpoch, Assignment: topicsSetMap(m.Assignment)}
		owner.own(m.MemberID, mv.Assignment)
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
	v.RecentDeadLetters = []deadLetterView{}
	if v.DeadLetterTopic != "" {
		v.DeadLetters, v.RecentDeadLetters, err = k.recentDeadLetters(ctx, v.DeadLetterTopic, name)
		v.DeadLetterError = errString(err)
	}
	c.shareCounters(&v, topics)
	c.unsettled(&v)
	return v, nil
}

// maxUnsettledRuns bounds the unsettled runs the page lists per partition.
const maxUnsettledRuns = 200

// unsettled fills each partition's unsettled records from this node's
// share state, for the partitions the person may see (those
// DescribeShareGroupOffsets answered without an error).
func (c *Console) unsettled(v *shareGroupView) {
	if c.cfg.ShareRecords == nil {
		return
	}
	for i := range v.Partitions {
		row := &v.Partitions[i]
		if row.Error != "" {
			continue
		}
		recs, ok := c.cfg.ShareRecords(v.Name, row.Topic, row.Partition, maxUnsettledRuns)
		if !ok {
			continue
		}
		row.DeliveryLimit = recs.DeliveryLimit
		row.Unsettled = []unsettledView{}
		for _, r := range recs.Runs {
			u := unsettledView{First: r.First, Last: r.Last, State: r.State, DeliveryCount: r.DeliveryCount, Member: r.Member}
			if !r.Deadline.IsZero() {
				u.Deadline = r.Deadline.UnixMilli()
			}
			row.Unsettled = append(row.Unsettled, u)
		}
	}
}

const (
	// maxDeadLetterPartitions and deadLetterScan bound what the share
	// page reads of a dead-letter topic: the newest deadLetterScan records
	// of each of the first partitions.
	maxDeadLetterPartitions = 8
	deadLetterScan          = 50
	// maxRecentDeadLetters is how many of the group's newest the page shows.
	maxRecentDeadLetters = 10
)

// recentDeadLetters counts the records of a dead-letter topic and returns
// the group's newest ones among the last records of its partitions.
func (k *kafkaConn) recentDeadLetters(ctx context.Context, topic, group string) (int64, []deadLetterView, error) {
	out := []deadLetterView{}
	starts, ends, err := k.startsEnds(ctx, topic)
	if err != nil {
		return -1, out, err
	}
	if err := ends.Error(); err != nil {
		return -1, out, err
	}
	var parts []kadm.ListedOffset
	ends.Each(func(o kadm.ListedOffset) { parts = append(parts, o) })
	slices.SortFunc(parts, func(a, b kadm.ListedOffset) int { return cmp.Compare(a.Partition, b.Partition) })
	var total int64
	for _, e := range parts {
		s, ok := starts.Lookup(topic, e.Partition)
		if !ok || s.Err != nil {
			continue
		}
		total += e.Offset - s.Offset
		if e.Partition >= maxDeadLetterPartitions || e.Offset <= s.Offset {
			continue
		}
		b := browse{topic: topic, partition: e.Partition, header: redrive.HeaderPrefix + "group.id=" + group}
		if _, err := k.readRange(ctx, b, max(s.Offset, e.Offset-deadLetterScan), e.Offset, func(rec *kgo.Record) bool {
			out = append(out, deadLetterOf(rec))
			return true
		}); err != nil {
			return total, out, err
		}
	}
	slices.SortFunc(out, func(a, b deadLetterView) int { return cmp.Compare(b.Timestamp, a.Timestamp) })
	return total, out[:min(len(out), maxRecentDeadLetters)], nil
}

func deadLetterOf(rec *kgo.Record) deadLetterView {
	d := deadLetterView{Partition: rec.Partition, Offset: rec.Offset, Timestamp: rec.Timestamp.UnixMilli(),
		Key: bytes.Clone(rec.Key[:min(len(rec.Key), maxShown)])}
	for _, h := range rec.Headers {
		switch strings.TrimPrefix(h.Key, redrive.HeaderPrefix) {
		case "topic":
			d.SourceTopic = string(h.Value)
		case "partition":
			d.SourcePartition = string(h.Value)
		case "offset":
			d.SourceOffset = string(h.Value)
		case "delivery.count":
			d.DeliveryCount = string(h.Value)
		case "reason":
			d.Reason = string(h.Value)
		}
	}
	return d
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
