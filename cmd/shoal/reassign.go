package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/urfave/cli/v2"
)

// shoal topic reassign and shoal cluster remove-broker: partition
// reassignment through AlterPartitionReassignments and
// ListPartitionReassignments, with the plans of Kafka's
// kafka-reassign-partitions.sh (reassign_plan.go).

// reassignPoll is how often a waiting command asks for progress.
const reassignPoll = 250 * time.Millisecond

// nextPoll waits reassignPoll before a waiting command asks again; it
// returns false, at once, when ctx ends first.
func nextPoll(ctx context.Context) bool {
	select {
	case <-ctx.Done():
		return false
	case <-time.After(reassignPoll):
		return true
	}
}

func topicReassignCommand() *cli.Command {
	return leaf(&cli.Command{
		Name:  "reassign",
		Usage: "move partition replicas between brokers with Kafka's JSON reassignment plans",
		UsageText: `shoal topic reassign --generate --topics orders,payments --brokers 1,2,3
shoal topic reassign --execute --plan plan.json
shoal topic reassign --verify --plan plan.json
shoal topic reassign --cancel --plan plan.json

A plan is kafka-reassign-partitions.sh's JSON:
  {"version":1,"partitions":[{"topic":"orders","partition":0,"replicas":[2,3]}]}

--generate prints the current assignment of the topics and a proposed plan
that spreads their replicas and leaders evenly over the brokers (replica
counts within one of each other), moving as few replicas as balance allows
(with --output json: {"current":..,"proposed":..}). When every broker named
has a broker.rack, each partition's replicas are spread over the racks as
Kafka's rack-aware assignment does; --disable-rack-aware ignores racks.
--execute starts the plan and waits until every partition has moved, showing
progress on a terminal (--wait=false returns once it has started). A plan's
"log_dirs" (one per replica, "any" or an absolute path) move each named
replica into that log directory of its broker (AlterReplicaLogDirs), as
Kafka's tool does; --wait waits for those moves too.
--execute --throttle BYTES_PER_SEC limits the replication of the moving
partitions as Kafka does: it sets leader.replication.throttled.rate and
follower.replication.throttled.rate on every broker involved and the topics'
leader/follower.replication.throttled.replicas to the moving replicas.
Followers already in sync are never throttled.
--execute is refused while any reassignment is in progress, unless
--additional: then the plan starts beside them, and a partition already
moving to the plan's replicas goes on as it was. --execute --additional
--throttle with the plan in progress changes the throttle of a running
reassignment.
--verify reports each partition of the plan: completed, in progress, or
differing from the plan; it fails unless every partition is completed. Once
every partition is completed it removes the throttles (unless
--preserve-throttles).
--cancel cancels the plan's reassignments still in progress: their added
replicas are dropped and the replicas return to what they were.

examples:
  shoal --output json topic reassign --generate --topics orders --brokers 2,3 > proposal.json
  shoal topic reassign --generate --topics orders --broker-list 1,2,3,4 --disable-rack-aware
  shoal topic reassign --execute --plan plan.json --timeout 10m
  echo '{"version":1,"partitions":[{"topic":"orders","partition":0,"replicas":[1],"log_dirs":["/data/b"]}]}' | shoal topic reassign --execute --plan -
  shoal topic reassign --execute --plan plan.json --throttle 50000000 --wait=false
  shoal topic reassign --execute --additional --plan plan.json --throttle 100000000 --wait=false
  shoal --output json topic reassign --verify --plan plan.json`,
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "generate", Usage: "propose a balanced plan for --topics over --brokers"},
			&cli.BoolFlag{Name: "execute", Usage: "start the reassignments of --plan"},
			&cli.BoolFlag{Name: "verify", Usage: "report the progress of the reassignments of --plan"},
			&cli.BoolFlag{Name: "cancel", Usage: "cancel the reassignments of --plan still in progress"},
			&cli.StringFlag{Name: "topics", Usage: "comma-separated topics to plan for (--generate)"},
			&cli.StringFlag{Name: "brokers", Aliases: []string{"broker-list"}, Usage: "comma-separated broker ids to place replicas on (--generate)"},
			&cli.BoolFlag{Name: "disable-rack-aware", Usage: "with --generate, ignore the brokers' racks"},
			&cli.StringFlag{Name: "plan", Usage: "the plan file (--execute, --verify, --cancel); - reads standard input"},
			&cli.BoolFlag{Name: "additional", Usage: "with --execute, start the plan although other reassignments are in progress"},
			&cli.BoolFlag{Name: "wait", Value: true, Usage: "with --execute, wait until every partition has moved"},
			&cli.DurationFlag{Name: "timeout", Value: 30 * time.Minute, Usage: "how long --execute waits"},
			&cli.Int64Flag{Name: "throttle", Value: -1, Usage: "with --execute, limit the moving partitions' replication to this many bytes/s (-1: no throttle)"},
			&cli.BoolFlag{Name: "preserve-throttles", Usage: "with --verify, keep the replication throttles when the plan is complete"},
		},
		Action: topicReassign,
	})
}

func topicReassign(c *cli.Context) error {
	if c.Args().Len() > 0 {
		return usageError("topic reassign: unexpected argument %q", c.Args().First())
	}
	var modes []string
	for _, m := range []string{"generate", "execute", "verify", "cancel"} {
		if c.Bool(m) {
			modes = append(modes, m)
		}
	}
	if len(modes) != 1 {
		return usageError("topic reassign: give exactly one of --generate, --execute, --verify, --cancel")
	}
	if modes[0] == "generate" {
		return reassignGenerate(c)
	}
	if c.String("plan") == "" {
		return usageError("topic reassign --%s: --plan FILE is required", modes[0])
	}
	plan, err := readPlan(c.String("plan"))
	if err != nil {
		return usageError("topic reassign: %s: %v", c.String("plan"), err)
	}
	return withAdmin(c, func(ctx context.Context, a adminSession) error {
		switch modes[0] {
		case "execute":
			return reassignExecute(c, a.out, a.cl, a.adm, plan)
		case "verify":
			return reassignVerify(ctx, c.App.Writer, a.out, a.cl, a.adm, plan, !c.Bool("preserve-throttles"))
		default:
			return reassignCancel(ctx, c.App.Writer, a.out, a.adm, plan)
		}
	})
}

func readPlan(path string) (reassignPlan, error) {
	var b []byte
	var err error
	if path == "-" {
		b, err = io.ReadAll(io.LimitReader(os.Stdin, 64<<20))
	} else {
		b, err = os.ReadFile(path)
	}
	if err != nil {
		return reassignPlan{}, err
	}
	return parsePlan(b)
}

// parseIDs reads a comma-separated list of broker ids.
func parseIDs(flag, s string) ([]int32, error) {
	var ids []int32
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		id, err := strconv.ParseInt(f, 10, 32)
		if err != nil || id < 0 {
			return nil, usageError("--%s: %q is not a broker id", flag, f)
		}
		if !slices.Contains(ids, int32(id)) {
			ids = append(ids, int32(id))
		}
	}
	if len(ids) == 0 {
		return nil, usageError("--%s: no broker ids given", flag)
	}
	return ids, nil
}

// currentAssignment is the replica assignment of every partition of the
// topics (all topics, internal ones included, when topics is empty),
// topics by name and partitions in order.
func currentAssignment(ctx context.Context, adm *kadm.Client, topics ...string) ([]planPartitions, error) {
	tds, err := adm.ListTopicsWithInternal(ctx, topics...)
	if err != nil {
		return nil, failure("list topics: %s", describeErr(err))
	}
	for _, name := range topics {
		if td, ok := tds[name]; !ok || td.Err != nil {
			return nil, failure("topic %q does not exist", name)
		}
	}
	var parts []planPartitions
	for _, td := range tds.Sorted() {
		if td.Err != nil {
			continue
		}
		for _, pd := range td.Partitions.Sorted() {
			parts = append(parts, planPartitions{Topic: td.Topic, Partition: pd.Partition, Replicas: slices.Clone(pd.Replicas)})
		}
	}
	return parts, nil
}

func reassignGenerate(c *cli.Context) error {
	var topics []string
	for _, t := range strings.Split(c.String("topics"), ",") {
		if t = strings.TrimSpace(t); t != "" && !slices.Contains(topics, t) {
			topics = append(topics, t)
		}
	}
	if len(topics) == 0 {
		return usageError("topic reassign --generate: --topics is required")
	}
	brokers, err := parseIDs("brokers", c.String("brokers"))
	if err != nil {
		return err
	}
	return withAdmin(c, func(ctx context.Context, a adminSession) error {
		parts, err := currentAssignment(ctx, a.adm, topics...)
		if err != nil {
			return err
		}
		cluster, err := describeCluster(ctx, a.cl)
		if err != nil {
			return err
		}
		targets, err := generateTargets(cluster, brokers, c.Bool("disable-rack-aware"))
		if err != nil {
			return err
		}
		proposed, err := generatePlan(targets, parts)
		if err != nil {
			return failure("topic reassign --generate: %v", err)
		}
		current := reassignPlan{Version: 1, Partitions: parts}
		w := c.App.Writer
		if a.out == outputJSON {
			return writeJSON(w, struct {
				Current  reassignPlan `json:"current"`
				Proposed reassignPlan `json:"proposed"`
			}{current, proposed})
		}
		fmt.Fprintln(w, "Current partition replica assignment")
		if err := writeJSON(w, current); err != nil {
			return err
		}
		fmt.Fprintln(w, "\nProposed partition reassignment configuration")
		return writeJSON(w, proposed)
	})
}

// generateTargets is the brokers --generate places replicas on, with
// their racks from DescribeCluster. As in Kafka's tool, every broker named
// must exist, and the plan is rack-aware unless disableRack: then either
// every one of them has a broker.rack or none has.
func generateTargets(cluster *kmsg.DescribeClusterResponse, ids []int32, disableRack bool) ([]rebalanceBroker, error) {
	racks := map[int32]string{}
	for _, b := range cluster.Brokers {
		racks[b.NodeID] = deref(b.Rack)
	}
	var out []rebalanceBroker
	withRack := 0
	for _, id := range ids {
		rack, ok := racks[id]
		if !ok {
			return nil, failure("topic reassign --generate: broker %d is not in the cluster (see shoal cluster describe)", id)
		}
		if disableRack {
			rack = ""
		}
		if rack != "" {
			withRack++
		}
		out = append(out, rebalanceBroker{ID: id, Rack: rack})
	}
	if withRack > 0 && withRack < len(out) {
		return nil, failure("topic reassign --generate: %d of the %d brokers have no broker.rack; give every broker a rack, or plan without racks with --disable-rack-aware", len(out)-withRack, len(out))
	}
	return out, nil
}

// reassignOutcome is one partition's result of --execute or --cancel.
type reassignOutcome struct {
	Topic     string  `json:"topic"`
	Partition int32   `json:"partition"`
	Replicas  []int32 `json:"replicas,omitempty"`
	// Error is Kafka's error name, Message the broker's explanation.
	Error   string `json:"error,omitempty"`
	Message string `json:"message,omitempty"`
}

// alterReassignments sends the plan's partitions (cancel: with null
// replicas, which cancels them) and returns each partition's outcome in
// plan order.
func alterReassignments(ctx context.Context, adm *kadm.Client, plan reassignPlan, cancel bool) ([]reassignOutcome, error) {
	req := kadm.AlterPartitionAssignmentsReq{}
	for _, p := range plan.Partitions {
		if cancel {
			req.CancelAssign(p.Topic, p.Partition)
		} else {
			req.Assign(p.Topic, p.Partition, p.Replicas)
		}
	}
	resps, err := adm.AlterPartitionAssignments(ctx, req)
	if err != nil {
		return nil, failure("alter partition reassignments: %s", describeErr(err))
	}
	var outs []reassignOutcome
	for _, p := range plan.Partitions {
		o := reassignOutcome{Topic: p.Topic, Partition: p.Partition}
		if !cancel {
			o.Replicas = p.Replicas
		}
		r, ok := resps[p.Topic][p.Partition]
		switch {
		case !ok:
			o.Error = "NO_RESPONSE"
		case r.Err != nil:
			var ke *kerr.Error
			if errors.As(r.Err, &ke) {
				o.Error = ke.Message
			} else {
				o.Error = r.Err.Error()
			}
			o.Message = oneLine(r.ErrMessage)
		}
		outs = append(outs, o)
	}
	return outs, nil
}

// failedOutcomes counts the outcomes that carry an error.
func failedOutcomes(outs []reassignOutcome) int {
	n := 0
	for _, o := range outs {
		if o.Error != "" {
			n++
		}
	}
	return n
}

func printOutcomes(w io.Writer, outs []reassignOutcome, ok string) error {
	return writeTable(w, []string{"TOPIC", "PARTITION", "RESULT"}, outs, func(o reassignOutcome) []any {
		res := ok
		if o.Error != "" {
			res = "failed: " + o.Error
			if o.Message != "" {
				res += ": " + o.Message
			}
		}
		return []any{o.Topic, o.Partition, res}
	})
}

func reassignExecute(c *cli.Context, out string, cl *kgo.Client, adm *kadm.Client, plan reassignPlan) error {
	ctx, cancel := context.WithTimeout(c.Context, c.Duration("timeout"))
	defer cancel()
	rate := c.Int64("throttle")
	if rate < -1 {
		return usageError("topic reassign --throttle: %d is neither -1 nor a rate in bytes/s", rate)
	}
	busy, err := inProgress(ctx, cl)
	if err != nil {
		return failure("list partition reassignments: %s", describeErr(err))
	}
	if len(busy) > 0 && !c.Bool("additional") {
		return failure("topic reassign --execute: %d partition reassignments are in progress; wait for them (--verify) or cancel them (--cancel), or start this plan beside them with --additional (which, given the plan in progress and --throttle, changes its throttle)", len(busy))
	}
	if rate >= 0 {
		th, err := setThrottles(ctx, adm, plan, busy, rate)
		if err != nil {
			return err
		}
		if out != outputJSON {
			fmt.Fprintf(c.App.Writer, "The inter-broker throttle limit was set to %d B/s on brokers %v for topics %v.\n", rate, th.brokers, th.topics())
			fmt.Fprintln(c.App.Writer, "Run --verify until the reassignment completes: it removes the throttle.")
		}
	}
	outs, err := executePlan(ctx, c.App.Writer, cl, adm, plan, c.Bool("wait"))
	if err != nil {
		return err
	}
	if out == outputJSON {
		var throttle *int64
		if rate >= 0 {
			throttle = &rate
		}
		if err := writeJSON(c.App.Writer, struct {
			Partitions []reassignOutcome `json:"partitions"`
			Completed  bool              `json:"completed"`
			Throttle   *int64            `json:"throttle"`
		}{outs, c.Bool("wait") && failedOutcomes(outs) == 0, throttle}); err != nil {
			return err
		}
	} else {
		status := "started"
		if c.Bool("wait") {
			status = "completed"
		}
		if err := printOutcomes(c.App.Writer, outs, status); err != nil {
			return err
		}
	}
	if n := failedOutcomes(outs); n > 0 {
		return failure("topic reassign --execute: %d of %d partitions failed", n, len(outs))
	}
	return nil
}

// executePlan starts the plan's reassignments and, with wait, waits until
// none of them is in progress any more, showing progress on w when it is
// a terminal.
func executePlan(ctx context.Context, w io.Writer, cl *kgo.Client, adm *kadm.Client, plan reassignPlan, wait bool) ([]reassignOutcome, error) {
	outs, err := alterReassignments(ctx, adm, plan, false)
	if err != nil {
		return outs, err
	}
	if wait {
		var started reassignPlan
		for i, o := range outs {
			if o.Error == "" {
				started.Partitions = append(started.Partitions, plan.Partitions[i])
			}
		}
		tty := isTerminal(w)
		progress := func(done, total int) {
			if tty {
				fmt.Fprintf(w, "\rreassigning: %d of %d partitions moved", done, total)
			}
		}
		err = waitReassigned(ctx, cl, started, progress)
		if tty {
			fmt.Fprintln(w)
		}
		if err != nil {
			return outs, err
		}
	}
	return outs, executeDirMoves(ctx, adm, plan, outs, wait)
}

// inProgress lists the reassignments in progress in the cluster.
func inProgress(ctx context.Context, cl *kgo.Client) (map[topicPartition]kmsg.ListPartitionReassignmentsResponseTopicPartition, error) {
	req := kmsg.NewPtrListPartitionReassignmentsRequest() // null topics: all of them
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return nil, err
	}
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return nil, fmt.Errorf("%s", describeErrMsg(err, deref(resp.ErrorMessage)))
	}
	m := map[topicPartition]kmsg.ListPartitionReassignmentsResponseTopicPartition{}
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			m[topicPartition{t.Topic, p.Partition}] = p
		}
	}
	return m, nil
}

// waitReassigned polls until no partition of plan is being reassigned,
// calling progress with how many are done.
func waitReassigned(ctx context.Context, cl *kgo.Client, plan reassignPlan, progress func(done, total int)) error {
	for {
		busy, err := inProgress(ctx, cl)
		if err == nil {
			done := 0
			for _, p := range plan.Partitions {
				if _, ok := busy[topicPartition{p.Topic, p.Partition}]; !ok {
					done++
				}
			}
			progress(done, len(plan.Partitions))
			if done == len(plan.Partitions) {
				return nil
			}
		}
		if !nextPoll(ctx) {
			if err != nil {
				return failure("waiting for the reassignments: %s", describeErr(err))
			}
			return failure("waiting for the reassignments: timed out; see shoal topic reassign --verify")
		}
	}
}

// verifyResult is one partition's state against the plan.
type verifyResult struct {
	Topic     string  `json:"topic"`
	Partition int32   `json:"partition"`
	Target    []int32 `json:"target"`
	Replicas  []int32 `json:"replicas"`
	Adding    []int32 `json:"adding"`
	Removing  []int32 `json:"removing"`
	// Status is completed, in_progress, or differs (no reassignment in
	// progress, but the replicas are not the plan's).
	Status string `json:"status"`
}

// reassignVerify reports the plan's progress; with clear, once every
// partition is completed, it removes the replication throttles.
func reassignVerify(ctx context.Context, w io.Writer, out string, cl *kgo.Client, adm *kadm.Client, plan reassignPlan, clear bool) error {
	busy, err := inProgress(ctx, cl)
	if err != nil {
		return failure("list partition reassignments: %s", describeErr(err))
	}
	var topics []string
	for _, p := range plan.Partitions {
		if !slices.Contains(topics, p.Topic) {
			topics = append(topics, p.Topic)
		}
	}
	tds, err := adm.ListTopicsWithInternal(ctx, topics...)
	if err != nil {
		return failure("list topics: %s", describeErr(err))
	}
	var res []verifyResult
	complete := true
	for _, p := range plan.Partitions {
		r := verifyResult{Topic: p.Topic, Partition: p.Partition, Target: p.Replicas, Replicas: []int32{}, Adding: []int32{}, Removing: []int32{}}
		if pd, ok := tds[p.Topic].Partitions[p.Partition]; ok {
			r.Replicas = pd.Replicas
		}
		if b, ok := busy[topicPartition{p.Topic, p.Partition}]; ok {
			r.Replicas, r.Adding, r.Removing = b.Replicas, nonNil(b.AddingReplicas), nonNil(b.RemovingReplicas)
			r.Status = "in_progress"
		} else if slices.Equal(r.Replicas, p.Replicas) {
			r.Status = "completed"
		} else {
			r.Status = "differs"
		}
		complete = complete && r.Status == "completed"
		res = append(res, r)
	}
	var cleared []int32
	if complete && clear {
		if cleared, err = clearThrottles(ctx, adm, topics); err != nil {
			return err
		}
	}
	if out == outputJSON {
		if err := writeJSON(w, struct {
			Partitions       []verifyResult `json:"partitions"`
			Complete         bool           `json:"complete"`
			ThrottlesCleared bool           `json:"throttles_cleared"`
		}{res, complete, complete && clear}); err != nil {
			return err
		}
	} else {
		for _, r := range res {
			switch r.Status {
			case "completed":
				fmt.Fprintf(w, "Reassignment of partition %s-%d is completed.\n", r.Topic, r.Partition)
			case "in_progress":
				fmt.Fprintf(w, "Reassignment of partition %s-%d is still in progress (adding %v, removing %v).\n", r.Topic, r.Partition, r.Adding, r.Removing)
			default:
				fmt.Fprintf(w, "There is no active reassignment of partition %s-%d, but replica set is %v rather than %v.\n", r.Topic, r.Partition, r.Replicas, r.Target)
			}
		}
		if complete && clear {
			fmt.Fprintf(w, "Clearing broker-level throttles on brokers %v\nClearing topic-level throttles on topics %v\n", cleared, topics)
		}
	}
	if !complete {
		return failure("topic reassign --verify: not every partition of the plan is reassigned")
	}
	return nil
}

func reassignCancel(ctx context.Context, w io.Writer, out string, adm *kadm.Client, plan reassignPlan) error {
	outs, err := alterReassignments(ctx, adm, plan, true)
	if err != nil {
		return err
	}
	if out == outputJSON {
		if err := writeJSON(w, struct {
			Partitions []reassignOutcome `json:"partitions"`
		}{outs}); err != nil {
			return err
		}
	} else if err := printOutcomes(w, outs, "cancelled"); err != nil {
		return err
	}
	if n := failedOutcomes(outs); n > 0 {
		return failure("topic reassign --cancel: %d of %d partitions not cancelled", n, len(outs))
	}
	return nil
}
