package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/urfave/cli/v2"
)

func clusterCommand() *cli.Command {
	return commandGroup("cluster", "inspect the cluster, elect partition leaders, rebalance and remove brokers",
		`shoal cluster describe
shoal --bootstrap-server 10.0.0.1:9092 --output json cluster describe
shoal cluster elect-leaders --topic orders
shoal cluster rebalance --execute
shoal cluster remove-broker 3`,
		leaf(&cli.Command{
			Name:      "describe",
			Usage:     "show the cluster id, the active controller, the brokers and the metadata quorum",
			UsageText: "shoal cluster describe\nshoal --output json cluster describe",
			Action:    clusterDescribe,
		}),
		clusterElectLeadersCommand(),
		clusterRebalanceCommand(),
		clusterRemoveBrokerCommand(),
	)
}

// clusterBroker is one broker in cluster describe's JSON output.
type clusterBroker struct {
	ID   int32   `json:"id"`
	Host string  `json:"host"`
	Port int32   `json:"port"`
	Rack *string `json:"rack"`
	// Fenced: registered but not heartbeating (stopped or unreachable);
	// it leads no partitions until it is back.
	Fenced bool `json:"fenced"`
}

type clusterInfo struct {
	ClusterID    string          `json:"cluster_id"`
	ControllerID int32           `json:"controller_id"`
	Brokers      []clusterBroker `json:"brokers"`
	// Quorum is null when the quorum could not be described; QuorumError
	// says why.
	Quorum      *quorumInfo `json:"quorum"`
	QuorumError string      `json:"quorum_error,omitempty"`
}

func clusterDescribe(c *cli.Context) error {
	if c.Args().Len() > 0 {
		return usageError("cluster describe: unexpected argument %q", c.Args().First())
	}
	return withAdmin(c, func(ctx context.Context, a adminSession) error {
		resp, err := describeCluster(ctx, a.cl)
		if err != nil {
			return err
		}
		info := clusterInfo{ClusterID: resp.ClusterID, ControllerID: resp.ControllerID, Brokers: []clusterBroker{}}
		for _, b := range resp.Brokers {
			info.Brokers = append(info.Brokers, clusterBroker{ID: b.NodeID, Host: b.Host, Port: b.Port, Rack: b.Rack, Fenced: b.IsFenced})
		}
		sort.Slice(info.Brokers, func(i, j int) bool { return info.Brokers[i].ID < info.Brokers[j].ID })
		// The quorum is extra detail: a broker that cannot describe it still
		// gets its brokers listed.
		info.Quorum, err = describeQuorum(ctx, a.cl)
		if err != nil {
			info.QuorumError = err.Error()
		}

		w := c.App.Writer
		if a.out == outputJSON {
			return writeJSON(w, info)
		}
		fmt.Fprintf(w, "Cluster ID:    %s\n", info.ClusterID)
		fmt.Fprintf(w, "Controller ID: %d\n\n", info.ControllerID)
		if err := writeTable(w, []string{"BROKER", "ADDRESS", "RACK", "STATUS"}, info.Brokers, func(b clusterBroker) []any {
			rack := "-"
			if b.Rack != nil && *b.Rack != "" {
				rack = *b.Rack
			}
			status := "active"
			if b.Fenced {
				status = "fenced"
			}
			return []any{b.ID, net.JoinHostPort(b.Host, strconv.Itoa(int(b.Port))), rack, status}
		}); err != nil {
			return err
		}
		fmt.Fprintln(w)
		return printQuorum(w, info.Quorum, info.QuorumError, time.Now())
	})
}

// describeCluster sends DescribeCluster, fenced brokers included: a dead
// broker shows as fenced, not missing.
func describeCluster(ctx context.Context, cl *kgo.Client) (*kmsg.DescribeClusterResponse, error) {
	req := kmsg.NewPtrDescribeClusterRequest()
	req.IncludeFencedBrokers = true
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return nil, failure("describe cluster: %s", describeErr(err))
	}
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return nil, failure("describe cluster: %s", describeErrMsg(err, deref(resp.ErrorMessage)))
	}
	return resp, nil
}

// ---- the metadata quorum

// metadataTopic is the KRaft metadata log DescribeQuorum reports on.
const metadataTopic = "__cluster_metadata"

// quorumInfo is the metadata quorum as the active controller sees it.
type quorumInfo struct {
	LeaderID      int32           `json:"leader_id"`
	LeaderEpoch   int32           `json:"leader_epoch"`
	HighWatermark int64           `json:"high_watermark"`
	Voters        []quorumReplica `json:"voters"`
	Observers     []quorumReplica `json:"observers"`
}

// quorumReplica is one voter or observer. Unknown values (the controller
// has not heard from the replica yet) are null.
type quorumReplica struct {
	ID           int32  `json:"id"`
	Role         string `json:"role"` // leader, follower or observer
	LogEndOffset *int64 `json:"log_end_offset"`
	// Lag is how many offsets the replica is behind the leader's log end.
	Lag *int64 `json:"lag"`
	// Timestamps are Unix milliseconds.
	LastFetchTimestamp    *int64 `json:"last_fetch_timestamp"`
	LastCaughtUpTimestamp *int64 `json:"last_caught_up_timestamp"`
}

// describeQuorum asks the cluster (the request goes to the controller) for
// the state of the metadata log's quorum.
func describeQuorum(ctx context.Context, cl *kgo.Client) (*quorumInfo, error) {
	req := kmsg.NewPtrDescribeQuorumRequest()
	rt := kmsg.NewDescribeQuorumRequestTopic()
	rt.Topic = metadataTopic
	rp := kmsg.NewDescribeQuorumRequestTopicPartition()
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return nil, errors.New(describeErr(err))
	}
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return nil, errors.New(describeErrMsg(err, deref(resp.ErrorMessage)))
	}
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if t.Topic != metadataTopic || p.Partition != 0 {
				continue
			}
			if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
				return nil, errors.New(describeErrMsg(err, deref(p.ErrorMessage)))
			}
			return quorumFromResponse(p), nil
		}
	}
	return nil, fmt.Errorf("the broker did not describe %s-0", metadataTopic)
}

// quorumFromResponse turns DescribeQuorum's partition into quorumInfo,
// computing each replica's lag behind the leader.
func quorumFromResponse(p kmsg.DescribeQuorumResponseTopicPartition) *quorumInfo {
	q := &quorumInfo{
		LeaderID:      p.LeaderID,
		LeaderEpoch:   p.LeaderEpoch,
		HighWatermark: p.HighWatermark,
		Voters:        []quorumReplica{},
		Observers:     []quorumReplica{},
	}
	leaderEnd := int64(-1)
	for _, r := range p.CurrentVoters {
		if r.ReplicaID == p.LeaderID {
			leaderEnd = r.LogEndOffset
		}
	}
	replica := func(r kmsg.DescribeQuorumResponseTopicPartitionReplicaState, role string) quorumReplica {
		qr := quorumReplica{
			ID:                    r.ReplicaID,
			Role:                  role,
			LogEndOffset:          known(r.LogEndOffset),
			LastFetchTimestamp:    known(r.LastFetchTimestamp),
			LastCaughtUpTimestamp: known(r.LastCaughtUpTimestamp),
		}
		if leaderEnd >= 0 && r.LogEndOffset >= 0 {
			lag := max(leaderEnd-r.LogEndOffset, 0)
			qr.Lag = &lag
		}
		return qr
	}
	for _, r := range p.CurrentVoters {
		role := "follower"
		if r.ReplicaID == p.LeaderID {
			role = "leader"
		}
		q.Voters = append(q.Voters, replica(r, role))
	}
	for _, r := range p.Observers {
		q.Observers = append(q.Observers, replica(r, "observer"))
	}
	byID := func(rs []quorumReplica) {
		sort.Slice(rs, func(i, j int) bool { return rs[i].ID < rs[j].ID })
	}
	byID(q.Voters)
	byID(q.Observers)
	return q
}

// known maps Kafka's -1 for "unknown" to nil.
func known(v int64) *int64 {
	if v < 0 {
		return nil
	}
	return &v
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// printQuorum prints the quorum section of cluster describe; times are
// shown relative to now.
func printQuorum(w io.Writer, q *quorumInfo, errMsg string, now time.Time) error {
	if q == nil {
		fmt.Fprintf(w, "Metadata quorum: unavailable (%s)\n", oneLine(errMsg))
		return nil
	}
	fmt.Fprintf(w, "Metadata quorum: leader %d, epoch %d, high watermark %d\n\n", q.LeaderID, q.LeaderEpoch, q.HighWatermark)
	return writeTable(w, []string{"NODE", "ROLE", "LOG-END-OFFSET", "LAG", "LAST-FETCH", "LAST-CAUGHT-UP"}, slices.Concat(q.Voters, q.Observers), func(r quorumReplica) []any {
		return []any{r.ID, r.Role, int64OrDash(r.LogEndOffset), int64OrDash(r.Lag), ago(r.LastFetchTimestamp, now), ago(r.LastCaughtUpTimestamp, now)}
	})
}

func int64OrDash(v *int64) string {
	if v == nil {
		return "-"
	}
	return strconv.FormatInt(*v, 10)
}

// ago renders a Unix millisecond timestamp as "N ms ago", like Kafka's
// metadata quorum tool. Clock skew between the controller and this
// machine is not shown as a time in the future.
func ago(ms *int64, now time.Time) string {
	if ms == nil {
		return "-"
	}
	d := max(now.Sub(time.UnixMilli(*ms)), 0)
	return fmt.Sprintf("%d ms ago", d.Milliseconds())
}

// ---- elect-leaders

func clusterElectLeadersCommand() *cli.Command {
	return leaf(&cli.Command{
		Name:  "elect-leaders",
		Usage: "move leadership back to preferred replicas, or elect leaders for partitions without one",
		UsageText: `shoal cluster elect-leaders [--type preferred|unclean] [--topic NAME [--partition N]...]

With no --topic every partition is considered and only those that needed
an election are listed.

example: shoal cluster elect-leaders
         shoal cluster elect-leaders --topic orders --partition 0 --partition 3
         shoal cluster elect-leaders --type unclean --topic orders`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "type", Value: "preferred", Usage: "preferred: make each partition's first replica leader if it is in the ISR; " +
				"unclean: elect a leader for partitions without one, from outside the ISR if need be (records only the old ISR had are lost)"},
			&cli.StringFlag{Name: "topic", Aliases: []string{"t"}, Usage: "only this topic's partitions"},
			// No alias: urfave/cli copies a flag given under one name to its
			// aliases, which would add the joined values once more.
			listFlag("partition", nil, "only this partition of --topic (repeatable)"),
		},
		Action: clusterElectLeaders,
	})
}

// Election types of the ElectLeaders request.
const (
	electPreferred int8 = 0
	electUnclean   int8 = 1
)

// electResult is one partition in elect-leaders' output. Result is
// "elected", "not_needed" (the partition already had the leader asked
// for) or "failed".
type electResult struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Result    string `json:"result"`
	Error     string `json:"error,omitempty"`
	Message   string `json:"message,omitempty"`
}

type electOutput struct {
	Type    string        `json:"type"`
	Results []electResult `json:"results"`
}

// electArgs are elect-leaders' validated flags.
type electArgs struct {
	typ        int8
	typName    string
	topic      string // "" for every partition
	partitions []int32
}

func parseElectArgs(c *cli.Context) (electArgs, error) {
	args, err := positionalArgs(c)
	if err != nil {
		return electArgs{}, err
	}
	if len(args) > 0 {
		return electArgs{}, usageError("cluster elect-leaders: unexpected argument %q (name a topic with --topic)", args[0])
	}
	var a electArgs
	switch a.typName = strings.ToLower(strings.TrimSpace(c.String("type"))); a.typName {
	case "preferred":
		a.typ = electPreferred
	case "unclean":
		a.typ = electUnclean
	default:
		return electArgs{}, usageError("--type: %q is not one of preferred, unclean", c.String("type"))
	}
	if c.IsSet("topic") {
		if a.topic = c.String("topic"); a.topic == "" {
			return electArgs{}, usageError("--topic: empty topic name")
		}
	}
	for _, s := range listFlagValues(c, "partition") {
		p, err := strconv.ParseInt(strings.TrimSpace(s), 10, 32)
		if err != nil || p < 0 {
			return electArgs{}, usageError("--partition: %q is not a partition number", s)
		}
		if !slices.Contains(a.partitions, int32(p)) {
			a.partitions = append(a.partitions, int32(p))
		}
	}
	if len(a.partitions) > 0 && a.topic == "" {
		return electArgs{}, usageError("--partition needs --topic")
	}
	return a, nil
}

func clusterElectLeaders(c *cli.Context) error {
	args, err := parseElectArgs(c)
	if err != nil {
		return err
	}
	return withAdmin(c, func(ctx context.Context, a adminSession) error {
		req := kmsg.NewPtrElectLeadersRequest()
		req.ElectionType = args.typ
		if args.topic != "" {
			// A topic without partitions would elect nothing: --topic alone
			// means all of its partitions.
			parts := args.partitions
			if len(parts) == 0 {
				td, err := topicMetadata(ctx, a.adm, args.topic)
				if err != nil {
					return err
				}
				for p := range td.Partitions {
					parts = append(parts, p)
				}
			}
			rt := kmsg.NewElectLeadersRequestTopic()
			rt.Topic, rt.Partitions = args.topic, parts
			req.Topics = []kmsg.ElectLeadersRequestTopic{rt}
		}
		results, err := electLeaders(ctx, a.cl, req)
		if err != nil {
			return err
		}
		res := electOutput{Type: args.typName, Results: results}

		w := c.App.Writer
		if a.out == outputJSON {
			if err := writeJSON(w, res); err != nil {
				return err
			}
		} else if err := printElectResults(w, res); err != nil {
			return err
		}
		failed := 0
		for _, r := range res.Results {
			if r.Result == "failed" {
				failed++
			}
		}
		if failed > 0 {
			return failure("elect leaders: %d of %d partitions failed", failed, len(res.Results))
		}
		return nil
	})
}

// electLeaders sends req and returns each partition's result. kadm's
// ElectLeaders drops the top-level error code (v1+), which is the only
// error a request for every partition can carry.
func electLeaders(ctx context.Context, cl *kgo.Client, req *kmsg.ElectLeadersRequest) ([]electResult, error) {
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return nil, failure("elect leaders: %s", describeErr(err))
	}
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return nil, failure("elect leaders: %s", describeErrMsg(err, ""))
	}
	if resp.Version < 1 && req.ElectionType != electPreferred {
		return nil, failure("elect leaders: the broker supports only preferred elections")
	}
	return electResults(resp), nil
}

// electResults flattens a response into results sorted by topic and
// partition.
func electResults(resp *kmsg.ElectLeadersResponse) []electResult {
	out := []electResult{}
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			r := electResult{Topic: t.Topic, Partition: p.Partition, Result: "elected"}
			if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
				r.Result = "failed"
				if errors.Is(err, kerr.ElectionNotNeeded) {
					r.Result = "not_needed"
				}
				r.Error = err.(*kerr.Error).Message
				r.Message = oneLine(deref(p.ErrorMessage))
			}
			out = append(out, r)
		}
	}
	sortByTopicPartition(out, func(r electResult) (string, int32) { return r.Topic, r.Partition })
	return out
}

func printElectResults(w io.Writer, res electOutput) error {
	if len(res.Results) == 0 {
		fmt.Fprintf(w, "no partition needed a %s election\n", res.Type)
		return nil
	}
	return writeTable(w, []string{"TOPIC", "PARTITION", "RESULT"}, res.Results, func(r electResult) []any {
		return []any{r.Topic, r.Partition, electResultText(r)}
	})
}

func electResultText(r electResult) string {
	switch r.Result {
	case "elected":
		return "elected"
	case "not_needed":
		return "not needed (" + r.Error + ")"
	}
	if r.Message == "" {
		return "failed: " + r.Error
	}
	return "failed: " + r.Error + ": " + r.Message
}
