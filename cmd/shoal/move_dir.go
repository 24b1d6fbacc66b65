package main

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/urfave/cli/v2"
)

// shoal topic move-dir: AlterReplicaLogDirs, moving a broker's replicas of
// a topic to another of its log.dirs, then DescribeLogDirs until they are
// there (kafka-reassign-partitions.sh does the same for the log_dirs of a
// plan).

func topicMoveDirCommand() *cli.Command {
	return leaf(&cli.Command{
		Name:  "move-dir",
		Usage: "move a broker's replicas of a topic to another of its log directories",
		UsageText: `shoal topic move-dir NAME --broker ID --dir PATH [--partitions 0,1] [--wait=false]

Sends AlterReplicaLogDirs to the broker: each partition's replica there is
copied into PATH (one of the broker's log.dirs, as an absolute path) while
it keeps serving produce and fetch, then switched over and its old
directory removed. Without --partitions every partition of the topic with
a replica on the broker moves. By default the command waits until
DescribeLogDirs shows every partition in PATH with no copy in progress.

examples:
  shoal topic move-dir orders --broker 1 --dir /var/lib/shoal/disk2
  shoal --output json topic move-dir orders --broker 1 --dir /var/lib/shoal/disk2 --partitions 0,3 --timeout 1h`,
		Flags: []cli.Flag{
			topicNameFlag(),
			&cli.StringFlag{Name: "broker", Usage: "the broker whose replicas move (required)"},
			&cli.StringFlag{Name: "dir", Usage: "the target log directory, an absolute path in the broker's log.dirs (required)"},
			&cli.StringFlag{Name: "partitions", Usage: "comma-separated partitions (default: every partition with a replica on the broker)"},
			&cli.BoolFlag{Name: "wait", Value: true, Usage: "wait until every partition is in the directory"},
			&cli.DurationFlag{Name: "timeout", Value: 30 * time.Minute, Usage: "how long to wait"},
		},
		Action: topicMoveDir,
	})
}

// moveDirResult is one partition's outcome in --output json.
type moveDirResult struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	// Status is moved (in the directory), moving (copy in progress, when
	// not waiting), or failed.
	Status string `json:"status"`
	Error  string `json:"error,omitempty"`
}

func topicMoveDir(c *cli.Context) error {
	name, err := oneTopicArg(c)
	if err != nil {
		return err
	}
	if !c.IsSet("broker") || !c.IsSet("dir") {
		return usageError("topic move-dir: --broker ID and --dir PATH are required")
	}
	broker, err := intFlagValue(c, "broker", 0, 1<<31-1)
	if err != nil {
		return err
	}
	dir := c.String("dir")
	if !filepath.IsAbs(dir) {
		return usageError("topic move-dir: --dir %q is not an absolute path; give the log directory as the broker's log.dirs names it", dir)
	}
	var parts []int32
	if c.IsSet("partitions") {
		for _, f := range strings.Split(c.String("partitions"), ",") {
			n, err := strconv.ParseInt(strings.TrimSpace(f), 10, 32)
			if err != nil || n < 0 {
				return usageError("--partitions: %q is not a partition", f)
			}
			parts = append(parts, int32(n))
		}
	}
	return withAdmin(c, func(ctx context.Context, a adminSession) error {
		td, err := topicMetadata(ctx, a.adm, name)
		if err != nil {
			return err
		}
		if parts == nil {
			for _, p := range td.Partitions.Sorted() {
				if slices.Contains(p.Replicas, int32(broker)) {
					parts = append(parts, p.Partition)
				}
			}
			if len(parts) == 0 {
				return failure("topic %q has no replica on broker %d", name, broker)
			}
		}
		set := kadm.TopicsSet{}
		set.Add(name, parts...)
		var req kadm.AlterReplicaLogDirsReq
		req.Add(dir, set)
		resps, err := a.adm.AlterBrokerReplicaLogDirs(ctx, int32(broker), req)
		if err != nil {
			return failure("move %q to %s on broker %d: %s", name, dir, broker, describeErr(err))
		}
		results := make([]moveDirResult, len(parts))
		var failed, moving []int32
		for i, p := range parts {
			results[i] = moveDirResult{Topic: name, Partition: p, Status: "moving"}
			r, ok := resps[name][p]
			switch {
			case !ok:
				results[i].Error = "no answer from the broker"
			case r.Err != nil:
				results[i].Error = describeErr(r.Err)
			default:
				moving = append(moving, p)
				continue
			}
			results[i].Status = "failed"
			failed = append(failed, p)
		}
		if c.Bool("wait") && len(moving) > 0 {
			wctx, cancel := context.WithTimeout(c.Context, c.Duration("timeout"))
			defer cancel()
			if err := waitMovedDir(wctx, a.adm, int32(broker), dir, name, moving); err != nil {
				return err
			}
			for i := range results {
				if results[i].Status == "moving" {
					results[i].Status = "moved"
				}
			}
		}
		if a.out == outputJSON {
			if err := writeJSON(c.App.Writer, results); err != nil {
				return err
			}
		} else {
			for _, r := range results {
				switch r.Status {
				case "failed":
					fmt.Fprintf(c.App.Writer, "%s-%d: %s\n", r.Topic, r.Partition, r.Error)
				case "moving":
					fmt.Fprintf(c.App.Writer, "%s-%d: moving to %s on broker %d\n", r.Topic, r.Partition, dir, broker)
				default:
					fmt.Fprintf(c.App.Writer, "%s-%d: in %s on broker %d\n", r.Topic, r.Partition, dir, broker)
				}
			}
		}
		if len(failed) > 0 {
			return failure("move %q to %s on broker %d: %d of %d partitions failed", name, dir, broker, len(failed), len(parts))
		}
		return nil
	})
}

// waitMovedDir polls DescribeLogDirs until every partition is in dir and
// no future replica of them remains.
func waitMovedDir(ctx context.Context, adm *kadm.Client, broker int32, dir, topic string, parts []int32) error {
	set := kadm.TopicsSet{}
	set.Add(topic, parts...)
	for {
		dirs, err := adm.DescribeBrokerLogDirs(ctx, broker, set)
		if err == nil && movedDir(dirs, dir, topic, parts) {
			return nil
		}
		if !nextPoll(ctx) {
			if err != nil {
				return failure("waiting for the move: %s", describeErr(err))
			}
			return failure("waiting for the move: timed out; the copy goes on in the broker (see DescribeLogDirs)")
		}
	}
}

// movedDir reports whether every partition's current replica is in dir
// and none has a future replica anywhere.
func movedDir(dirs kadm.DescribedLogDirs, dir, topic string, parts []int32) bool {
	for _, p := range parts {
		in := false
		for _, d := range dirs {
			dp, ok := d.Topics[topic][p]
			if !ok {
				continue
			}
			if dp.IsFuture {
				return false
			}
			in = in || filepath.Clean(d.Dir) == filepath.Clean(dir)
		}
		if !in {
			return false
		}
	}
	return true
}
