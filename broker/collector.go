package broker

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/shoalmq/shoal/coordinator"
)

// stateCollector turns the broker's state into gauges at scrape time, so
// nothing on the request path pays for metrics it does not serve.
type stateCollector struct {
	srv *Server

	raftTerm, raftCommit, raftLeader  *prometheus.Desc
	underReplicated, offline          *prometheus.Desc
	groupLag, shareInFlight, shareLag *prometheus.Desc
	txnOpen, txnOldest, lsoLag        *prometheus.Desc
	quotaRate                         *prometheus.Desc
}

func newStateCollector(s *Server) *stateCollector {
	return &stateCollector{
		srv:             s,
		raftTerm:        prometheus.NewDesc("shoal_raft_term", "Current term of the metadata quorum.", nil, nil),
		raftCommit:      prometheus.NewDesc("shoal_raft_commit_index", "Highest committed index of the metadata log.", nil, nil),
		raftLeader:      prometheus.NewDesc("shoal_raft_leader", "Node id of the active controller (-1: none).", nil, nil),
		underReplicated: prometheus.NewDesc("shoal_under_replicated_partitions", "Partitions led here whose ISR is smaller than their replica set.", nil, nil),
		offline:         prometheus.NewDesc("shoal_offline_partitions", "Partitions without a leader.", nil, nil),
		groupLag:        prometheus.NewDesc("shoal_group_lag", "High watermark minus committed offset, by group, topic and partition.", []string{"group", "topic", "partition"}, nil),
		shareInFlight:   prometheus.NewDesc("shoal_share_in_flight_records", "In-flight records of share partitions led here, by state.", []string{"group", "topic", "partition", "state"}, nil),
		shareLag:        prometheus.NewDesc("shoal_share_lag", "Records of a share partition not yet acknowledged or archived.", []string{"group", "topic", "partition"}, nil),
		txnOpen:         prometheus.NewDesc("shoal_transactions_open", "Transactions in progress on the transaction coordinators of this node, by state (Ongoing, PrepareCommit, PrepareAbort).", []string{"state"}, nil),
		txnOldest:       prometheus.NewDesc("shoal_transaction_oldest_age_seconds", "Age of the oldest transaction in progress on the transaction coordinators of this node (0: none).", nil, nil),
		quotaRate:       prometheus.NewDesc("shoal_client_quota_rate", "Measured rate of each client active within the quota window against a quota it falls under, by quota key and entity (users/<u>/clients/<c>, clients/<c>, ips/<ip>; broker for max.connection.creation.rate), in the key's unit: bytes/s, percent of one thread, connections/s.", []string{"key", "entity"}, nil),
		lsoLag:          prometheus.NewDesc("shoal_partition_lso_lag", "High watermark minus last stable offset of a partition led here, for partitions with an open transaction: records read_committed consumers cannot read yet.", []string{"topic", "partition"}, nil),
	}
}

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.raftTerm, c.raftCommit, c.raftLeader, c.underReplicated, c.offline, c.groupLag, c.shareInFlight, c.shareLag, c.txnOpen, c.txnOldest, c.lsoLag, c.quotaRate} {
		ch <- d
	}
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.srv
	if s.meta == nil {
		return
	}
	ch <- prometheus.MustNewConstMetric(c.raftTerm, prometheus.GaugeValue, float64(s.meta.Term()))
	ch <- prometheus.MustNewConstMetric(c.raftCommit, prometheus.GaugeValue, float64(s.meta.CommitIndex()))
	ch <- prometheus.MustNewConstMetric(c.raftLeader, prometheus.GaugeValue, float64(s.meta.LeaderID()))
	img := s.meta.Image()
	under, offline := 0, 0
	for _, t := range img.Topics {
		for _, ps := range t.Partitions {
			if ps.Leader < 0 {
				offline++
			} else if ps.Leader == s.cfg.NodeID && len(ps.ISR) < len(ps.Replicas) {
				under++
			}
		}
	}
	ch <- prometheus.MustNewConstMetric(c.underReplicated, prometheus.GaugeValue, float64(under))
	ch <- prometheus.MustNewConstMetric(c.offline, prometheus.GaugeValue, float64(offline))

	if s.coord != nil {
		s.coord.Groups.EachOffset(func(group, topic string, partition int32, offset int64) {
			if p := s.logs.Partition(topic, partition); p != nil {
				ch <- prometheus.MustNewConstMetric(c.groupLag, prometheus.GaugeValue, float64(max(p.HighWatermark()-offset, 0)),
					group, topic, strconv.Itoa(int(partition)))
			}
		})
	}
	if s.coord != nil {
		c.collectTxns(ch)
	}
	for _, p := range s.logs.Partitions() {
		if p.FirstUnstableOffset() < 0 {
			continue
		}
		if t := img.Topics[p.Topic()]; !t.HasPartition(p.Index()) || t.Partitions[p.Index()].Leader != s.cfg.NodeID {
			continue
		}
		ch <- prometheus.MustNewConstMetric(c.lsoLag, prometheus.GaugeValue, float64(max(p.HighWatermark()-p.LastStableOffset(), 0)),
			p.Topic(), strconv.Itoa(int(p.Index())))
	}
	for k, rate := range s.quotas.Rates(s.now()) {
		entity := k.ID.String()
		if entity == "" {
			entity = "broker"
		}
		ch <- prometheus.MustNewConstMetric(c.quotaRate, prometheus.GaugeValue, rate, k.Key, entity)
	}
	if s.shares != nil {
		for _, st := range s.shares.Stats() {
			part := strconv.Itoa(int(st.Key.Partition))
			for state, n := range map[string]int64{"available": st.Counts.Available, "acquired": st.Counts.Acquired, "acknowledged": st.Counts.Acknowledged, "archived": st.Counts.Archived} {
				ch <- prometheus.MustNewConstMetric(c.shareInFlight, prometheus.GaugeValue, float64(n), st.Key.Group, st.Topic, part, state)
			}
			lag := st.HighWatermark - st.StartOffset - st.Counts.Acknowledged - st.Counts.Archived
			ch <- prometheus.MustNewConstMetric(c.shareLag, prometheus.GaugeValue, float64(max(lag, 0)), st.Key.Group, st.Topic, part)
		}
	}
}

// inProgressStates are the states of a transaction in progress.
var inProgressStates = []string{"Ongoing", "PrepareCommit", "PrepareAbort"}

// collectTxns counts the transactions in progress and the age of the
// oldest.
func (c *stateCollector) collectTxns(ch chan<- prometheus.Metric) {
	now := c.srv.now()
	counts := map[string]int{}
	oldest := int64(-1)
	c.srv.coord.Txns.Each(func(sh *coordinator.TxnShard) {
		rows, _ := sh.List(now, coordinator.TxnListFilter{States: inProgressStates, MinDuration: -1})
		for _, r := range rows {
			counts[r.State.String()]++
			if d, err := sh.Describe(r.TransactionalID); err == nil && d.StartMs >= 0 && (oldest < 0 || d.StartMs < oldest) {
				oldest = d.StartMs
			}
		}
	})
	for _, st := range inProgressStates {
		ch <- prometheus.MustNewConstMetric(c.txnOpen, prometheus.GaugeValue, float64(counts[st]), st)
	}
	age := 0.0
	if oldest >= 0 {
		age = max(float64(now.UnixMilli()-oldest)/1000, 0)
	}
	ch <- prometheus.MustNewConstMetric(c.txnOldest, prometheus.GaugeValue, age)
}
