package main

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/urfave/cli/v2"
)

// shoal cluster rebalance: plan (rebalance_plan.go) and run, through
// partition reassignment and a preferred leader election, the moves that
// spread replicas and leaders evenly over the brokers, for instance onto
// a broker that has just joined.

func clusterRebalanceCommand() *cli.Command {
	return leaf(&cli.Command{
		Name:  "rebalance",
		Usage: "spread replicas and preferred leaders evenly over the brokers, rack-aware",
		UsageText: `shoal cluster rebalance [--execute] [--topics orders,payments] [--timeout 30m]

Without --execute (the same as --dry-run, the default) it only prints the
plan: replicas and preferred leaders per broker now and after, and each
partition whose replicas change. The plan moves as few replicas as it can
to bring every broker's replica count within one of the others, never puts
two replicas of a partition on one broker, and, when every broker has a
broker.rack, spreads each partition over as many racks as it can. Then it
orders each partition's replicas so preferred leaders spread evenly.
With --output json, "proposed" is a plan for shoal topic reassign (and
kafka-reassign-partitions.sh), "current" the assignment to roll back to.

--execute runs the plan through partition reassignment, waits until every
partition has moved (progress is shown on a terminal), then runs a
preferred leader election on the moved partitions so leadership follows.

Every registered broker takes part; a fenced (stopped) broker must be
started or removed (shoal cluster remove-broker) first, and no other
reassignment may be in progress.

examples:
  shoal cluster rebalance
  shoal cluster rebalance --dry-run --topics orders
  shoal --output json cluster rebalance > plan.json
  shoal cluster rebalance --execute --timeout 10m`,
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "execute", Usage: "run the plan (default: only print it)"},
			&cli.BoolFlag{Name: "dry-run", Usage: "only print the plan (the default)"},
			&cli.StringFlag{Name: "topics", Usage: "comma-separated topics to balance (default: every topic, internal ones included)"},
			&cli.DurationFlag{Name: "timeout", Value: 30 * time.Minute, Usage: "how long --execute waits for the moves and the election"},
		},
		Action: clusterRebalance,
	})
}

// rebalanceBrokerLoad is one broker in rebalance's output.
type rebalanceBrokerLoad struct {
	ID       int32      `json:"id"`
	Rack     *string    `json:"rack"`
	Current  brokerLoad `json:"current"`
	Proposed brokerLoad `json:"proposed"`
}

// rebalanceOutput is rebalance's --output json answer. Partitions and
// Elections are only there with --execute.
type rebalanceOutput struct {
	Brokers []rebalanceBrokerLoad `json:"brokers"`
	// Moves is how many replicas the plan places on a broker their
	// partition does not use yet: the copies it makes.
	Moves      int               `json:"moves"`
	Current    reassignPlan      `json:"current"`
	Proposed   reassignPlan      `json:"proposed"`
	Executed   bool              `json:"executed"`
	Partitions []reassignOutcome `json:"partitions,omitempty"`
	Elections  []electResult     `json:"elections,omitempty"`
}

func clusterRebalance(c *cli.Context) error {
	args, err := positionalArgs(c)
	if err != nil {
		return err
	}
	if len(args) > 0 {
		return usageError("cluster rebalance: unexpected argument %q (name topics with --topics)", args[0])
	}
	if c.Bool("execute") && c.Bool("dry-run") {
		return usageError("cluster rebalance: --execute and --dry-run exclude each other")
	}
	var topics []string
	for _, t := range strings.Split(c.String("topics"), ",") {
		if t = strings.TrimSpace(t); t != "" && !slices.Contains(topics, t) {
			topics = append(topics, t)
		}
	}
	if c.IsSet("topics") && len(topics) == 0 {
		return usageError("--topics: no topic names given")
	}
	return withAdminTimeout(c, c.Duration("timeout"), func(ctx context.Context, a adminSession) error {
		w := c.App.Writer

		brokers, racks, err := rebalanceTargets(ctx, a.cl)
		if err != nil {
			return err
		}
		busy, err := inProgress(ctx, a.cl)
		if err != nil {
			return failure("list partition reassignments: %s", describeErr(err))
		}
		// A partition being reassigned lists its adding and removing replicas
		// among its replicas: planning from that would count them twice.
		blocking := 0
		for tp := range busy {
			if len(topics) == 0 || slices.Contains(topics, tp.topic) {
				blocking++
			}
		}
		if blocking > 0 {
			return failure("cluster rebalance: %d partition reassignments are in progress; wait for them or cancel them (shoal topic reassign --verify|--cancel) first", blocking)
		}
		parts, err := currentAssignment(ctx, a.adm, topics...)
		if err != nil {
			return err
		}
		plan, err := rebalancePlan(brokers, parts)
		if err != nil {
			return failure("cluster rebalance: %v", err)
		}
		res := rebalanceSummary(brokers, racks, parts, plan)

		if c.Bool("execute") && len(plan.Partitions) > 0 {
			if a.out != outputJSON {
				if err := printRebalancePlan(w, res); err != nil {
					return err
				}
				fmt.Fprintf(w, "\nmoving %d replicas of %d partitions\n", res.Moves, len(plan.Partitions))
			}
			res.Executed = true
			res.Partitions, err = executePlan(ctx, w, a.cl, a.adm, plan, true)
			if err != nil {
				return err
			}
			if n := failedOutcomes(res.Partitions); n > 0 {
				if a.out == outputJSON {
					writeJSON(w, res)
				} else {
					printOutcomes(w, res.Partitions, "moved")
				}
				return failure("cluster rebalance: %d of %d partition reassignments failed", n, len(res.Partitions))
			}
			if res.Elections, err = electPreferredLeaders(ctx, a.cl, plan); err != nil {
				return err
			}
			if a.out == outputJSON {
				return writeJSON(w, res)
			}
			if err := printOutcomes(w, res.Partitions, "moved"); err != nil {
				return err
			}
			fmt.Fprintln(w)
			return printElectResults(w, electOutput{Type: "preferred", Results: res.Elections})
		}
		if a.out == outputJSON {
			return writeJSON(w, res)
		}
		if err := printRebalancePlan(w, res); err != nil {
			return err
		}
		if len(plan.Partitions) > 0 {
			fmt.Fprintf(w, "\n%d replicas to move; run with --execute to apply the plan\n", res.Moves)
		}
		return nil
	})
}

// rebalanceTargets is every registered broker with its rack (by id). A
// fenced broker cannot take replicas, and moving its replicas away while
// it may come back is remove-broker's job, so one fails the command.
func rebalanceTargets(ctx context.Context, cl *kgo.Client) ([]rebalanceBroker, map[int32]*string, error) {
	resp, err := describeCluster(ctx, cl)
	if err != nil {
		return nil, nil, err
	}
	var brokers []rebalanceBroker
	racks := map[int32]*string{}
	for _, b := range resp.Brokers {
		if b.IsFenced {
			return nil, nil, failure("cluster rebalance: broker %d is fenced (stopped or unreachable); start it, or retire it with shoal cluster remove-broker %d, then rebalance", b.NodeID, b.NodeID)
		}
		brokers = append(brokers, rebalanceBroker{ID: b.NodeID, Rack: deref(b.Rack)})
		racks[b.NodeID] = b.Rack
	}
	slices.SortFunc(brokers, func(a, b rebalanceBroker) int { return cmp.Compare(a.ID, b.ID) })
	return brokers, racks, nil
}

// rebalanceSummary is the output for plan over parts: per-broker counts
// before and after, the copies it makes, and the changed partitions'
// current and proposed replicas.
func rebalanceSummary(brokers []rebalanceBroker, racks map[int32]*string, parts []planPartitions, plan reassignPlan) rebalanceOutput {
	res := rebalanceOutput{
		Current:  reassignPlan{Version: 1, Partitions: []planPartitions{}},
		Proposed: plan,
		Brokers:  []rebalanceBrokerLoad{},
	}
	after := slices.Clone(parts)
	for _, pp := range plan.Partitions {
		i := slices.IndexFunc(parts, func(p planPartitions) bool { return p.Topic == pp.Topic && p.Partition == pp.Partition })
		res.Current.Partitions = append(res.Current.Partitions, parts[i])
		after[i] = pp
		for _, r := range pp.Replicas {
			if !slices.Contains(parts[i].Replicas, r) {
				res.Moves++
			}
		}
	}
	now, next := loadsOf(parts), loadsOf(after)
	for _, b := range brokers {
		res.Brokers = append(res.Brokers, rebalanceBrokerLoad{ID: b.ID, Rack: racks[b.ID], Current: now[b.ID], Proposed: next[b.ID]})
	}
	return res
}

func printRebalancePlan(w io.Writer, res rebalanceOutput) error {
	if err := writeTable(w, []string{"BROKER", "RACK", "REPLICAS", "LEADERS"}, res.Brokers, func(b rebalanceBrokerLoad) []any {
		rack := deref(b.Rack)
		if rack == "" {
			rack = "-"
		}
		return []any{b.ID, rack, fmt.Sprintf("%d -> %d", b.Current.Replicas, b.Proposed.Replicas), fmt.Sprintf("%d -> %d", b.Current.Leaders, b.Proposed.Leaders)}
	}); err != nil {
		return err
	}
	fmt.Fprintln(w)
	if len(res.Proposed.Partitions) == 0 {
		fmt.Fprintln(w, "the cluster is balanced: no partition needs to change")
		return nil
	}
	t := newTable(w, "TOPIC", "PARTITION", "CURRENT", "PROPOSED")
	for i, p := range res.Proposed.Partitions {
		t.row(p.Topic, p.Partition, fmt.Sprint(res.Current.Partitions[i].Replicas), fmt.Sprint(p.Replicas))
	}
	return t.flush()
}

// electPreferredLeaders runs a preferred leader election on the plan's
// partitions, so that leadership moves to the first replicas the plan
// chose. A partition whose preferred replica has not yet caught up with
// the ISR answers PREFERRED_LEADER_NOT_AVAILABLE; it is retried until ctx
// ends. ELECTION_NOT_NEEDED (the leader is already the preferred one) is
// success.
func electPreferredLeaders(ctx context.Context, cl *kgo.Client, plan reassignPlan) ([]electResult, error) {
	final := map[topicPartition]electResult{}
	pending := plan.Partitions
	for {
		req := kmsg.NewPtrElectLeadersRequest()
		req.ElectionType = electPreferred
		req.TimeoutMillis = 10000
		byTopic := map[string]int{}
		for _, p := range pending {
			i, ok := byTopic[p.Topic]
			if !ok {
				i = len(req.Topics)
				byTopic[p.Topic] = i
				rt := kmsg.NewElectLeadersRequestTopic()
				rt.Topic = p.Topic
				req.Topics = append(req.Topics, rt)
			}
			req.Topics[i].Partitions = append(req.Topics[i].Partitions, p.Partition)
		}
		results, err := electLeaders(ctx, cl, req)
		if err != nil {
			return nil, err
		}
		var retry []planPartitions
		for _, r := range results {
			tp := topicPartition{r.Topic, r.Partition}
			final[tp] = r
			if r.Result == "failed" {
				retry = append(retry, planPartitions{Topic: r.Topic, Partition: r.Partition})
			}
		}
		if len(retry) == 0 {
			break
		}
		pending = retry
		if !nextPoll(ctx) {
			return nil, failure("cluster rebalance: the replicas moved, but the preferred leader election of %d partitions failed (%s); run shoal cluster elect-leaders later", len(retry), final[topicPartition{retry[0].Topic, retry[0].Partition}].Error)
		}
	}
	out := make([]electResult, 0, len(final))
	for _, r := range final {
		out = append(out, r)
	}
	sortByTopicPartition(out, func(r electResult) (string, int32) { return r.Topic, r.Partition })
	return out, nil
}
