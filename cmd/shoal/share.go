package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/urfave/cli/v2"
)

func shareCommand() *cli.Command {
	return commandGroup("share", "list, describe, reset, configure and delete share groups (queues)",
		`shoal share list
shoal share describe workers
shoal share config workers --set share.auto.offset.reset=earliest
shoal share reset-offsets workers --topic jobs --to-earliest --execute
shoal share delete workers
shoal share dlq list dlq.jobs`,
		shareListCommand(),
		shareDescribeCommand(),
		shareResetCommand(),
		shareDeleteCommand(),
		shareConfigCommand(),
		shareDLQCommand(),
	)
}

// ---- list

func shareListCommand() *cli.Command {
	return leaf(&cli.Command{
		Name:      "list",
		Aliases:   []string{"ls"},
		Usage:     "list share groups",
		UsageText: "shoal share list\n\nexample: shoal --output json share list",
		Action:    func(c *cli.Context) error { return listGroupsAction(c, "share") },
	})
}

// ---- describe

func shareDescribeCommand() *cli.Command {
	return leaf(&cli.Command{
		Name:  "describe",
		Usage: "show a share group's members and, per partition, its start offset and lag",
		UsageText: `shoal share describe GROUP

START-OFFSET is the share-partition start offset: every record before it
has been acknowledged or archived. LAG counts the records from there to the
log end offset that are not yet acknowledged.

example: shoal share describe workers`,
		Action: shareDescribe,
	})
}

type sharePartitionInfo struct {
	Topic       string `json:"topic"`
	Partition   int32  `json:"partition"`
	StartOffset int64  `json:"start_offset"` // -1: the group has no state
	LogEnd      int64  `json:"log_end_offset"`
	Lag         int64  `json:"lag"` // -1: unknown
	Error       string `json:"error,omitempty"`
}

type shareDescription struct {
	Group       string               `json:"group"`
	State       string               `json:"state"`
	GroupEpoch  int32                `json:"group_epoch"`
	Coordinator int32                `json:"coordinator"`
	Members     []groupMemberInfo    `json:"members"`
	Offsets     []sharePartitionInfo `json:"offsets"`
	TotalLag    int64                `json:"total_lag"`
}

func shareDescribe(c *cli.Context) error {
	return describeOneGroup(c, describeShareGroup, func(w io.Writer, d shareDescription) error {
		if err := writeGroupHeader(w, d.Members, "share group %s (state %s, epoch %d, coordinator %d, %d members)", d.Group, orDash(d.State), d.GroupEpoch, d.Coordinator, len(d.Members)); err != nil {
			return err
		}
		return writeTable(w, []string{"TOPIC", "PARTITION", "START-OFFSET", "LOG-END-OFFSET", "LAG"}, d.Offsets, func(o sharePartitionInfo) []any {
			lag := dash(o.Lag)
			if o.Error != "" {
				lag = o.Error
			}
			return []any{o.Topic, o.Partition, dash(o.StartOffset), dash(o.LogEnd), lag}
		})
	})
}

func describeShareGroup(ctx context.Context, _ *kgo.Client, adm *kadm.Client, group string) (shareDescription, error) {
	d := shareDescription{Group: group, Members: []groupMemberInfo{}, Offsets: []sharePartitionInfo{}}
	dgs, err := adm.DescribeShareGroups(ctx, group)
	if err != nil {
		return d, failure("describe share group %q: %s", group, describeErr(err))
	}
	g, ok := dgs[group]
	if !ok {
		return d, failure("describe share group %q: the broker did not answer for it", group)
	}
	if errors.Is(g.Err, kerr.GroupIDNotFound) || g.GroupState == "Dead" {
		return d, failure("share group %q does not exist", group)
	}
	if g.Err != nil {
		return d, failure("describe share group %q: %s", group, describeErr(g.Err))
	}
	d.State, d.GroupEpoch, d.Coordinator = g.GroupState, g.GroupEpoch, g.Coordinator.NodeID
	for _, m := range g.Members {
		d.Members = append(d.Members, groupMemberInfo{MemberID: m.MemberID, ClientID: m.ClientID, Host: m.ClientHost, Assignment: fromTopicsSet(m.Assignment)})
	}

	offs, err := adm.DescribeShareGroupOffsets(ctx, group)
	if err != nil {
		return d, failure("describe share group %q: offsets: %s", group, describeErr(err))
	}
	og, ok := offs[group]
	if ok && og.Err != nil && !errors.Is(og.Err, kerr.GroupIDNotFound) {
		return d, failure("describe share group %q: offsets: %s", group, describeErr(og.Err))
	}
	topics := slices.Sorted(maps.Keys(og.Offsets))
	bounds, err := topicBounds(ctx, adm, topics...)
	if err != nil {
		return d, failure("describe share group %q: %v", group, err)
	}
	for _, t := range topics {
		for p, o := range og.Offsets[t] {
			pi := sharePartitionInfo{Topic: t, Partition: p, StartOffset: o.StartOffset, LogEnd: -1, Lag: o.Lag}
			if end, ok := bounds[t].end[p]; ok {
				pi.LogEnd = end
			}
			if o.Err != nil {
				pi.Error = describeErr(o.Err)
			}
			if pi.Lag > 0 {
				d.TotalLag += pi.Lag
			}
			d.Offsets = append(d.Offsets, pi)
		}
	}
	sortByTopicPartition(d.Offsets, func(o sharePartitionInfo) (string, int32) { return o.Topic, o.Partition })
	return d, nil
}

// ---- reset-offsets

func shareResetCommand() *cli.Command {
	return leaf(&cli.Command{
		Name:  "reset-offsets",
		Usage: "move a share group's start offsets on a topic",
		UsageText: `shoal share reset-offsets GROUP --topic T (--to-earliest | --to-latest | --to-offset N)
              [--partition N ...] [--dry-run | --execute]

Without --execute only the plan is printed. The group must have no active
members (AlterShareGroupOffsets).

example: shoal share reset-offsets workers --topic jobs --to-earliest --execute`,
		Flags:  resetFlags(false),
		Action: shareReset,
	})
}

func shareReset(c *cli.Context) error {
	return resetOffsets(c, loadShareGroupForReset)
}

// loadShareGroupForReset is the resetLoader of share groups: their start
// offsets, and AlterShareGroupOffsets of the plan.
func loadShareGroupForReset(ctx context.Context, cl *kgo.Client, adm *kadm.Client, group, topic string) (map[int32]int64, func(kadm.Offsets) error, error) {
	lg, found, err := findGroup(ctx, cl, group)
	if err != nil {
		return nil, nil, failure("reset offsets of share group %q: %s", group, describeErr(err))
	}
	if found && lg.Type != "share" {
		return nil, nil, failure("group %q is a %s group (see 'shoal group reset-offsets')", group, lg.Type)
	}
	current := map[int32]int64{}
	if found {
		offs, err := adm.DescribeShareGroupOffsets(ctx, group)
		if err != nil {
			return nil, nil, failure("reset offsets of share group %q: %s", group, describeErr(err))
		}
		for p, o := range offs[group].Offsets[topic] {
			if o.Err == nil && o.StartOffset >= 0 {
				current[p] = o.StartOffset
			}
		}
	}
	apply := func(offs kadm.Offsets) error {
		if found {
			dgs, err := adm.DescribeShareGroups(ctx, group)
			if err == nil {
				if g, ok := dgs[group]; ok && g.Err == nil && len(g.Members) > 0 {
					return failure("share group %q is not empty (state %s, %d members): stop its consumers before --execute", group, g.GroupState, len(g.Members))
				}
			}
		}
		resps, err := adm.AlterShareGroupOffsets(ctx, group, offs)
		if err != nil {
			if errors.Is(err, kerr.NonEmptyGroup) {
				return failure("share group %q is not empty: stop its consumers before --execute", group)
			}
			return failure("reset offsets of share group %q: %s", group, describeErr(err))
		}
		if err := resps.Error(); err != nil {
			return failure("reset offsets of share group %q: %s", group, describeErr(err))
		}
		return nil
	}
	return current, apply, nil
}

// ---- delete

func shareDeleteCommand() *cli.Command {
	return leaf(&cli.Command{
		Name:  "delete",
		Usage: "delete share groups, or one topic's state in a share group",
		UsageText: `shoal share delete GROUP... [--topic T]

With --topic, only the group's state for that topic is deleted
(DeleteShareGroupOffsets); the group must have no members either way.

examples:
  shoal share delete workers
  shoal share delete workers --topic jobs`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "topic", Aliases: []string{"t"}, Usage: "delete only this topic's offsets in the group"},
		},
		Action: shareDelete,
	})
}

func shareDelete(c *cli.Context) error {
	groups, err := groupArgs(c, true)
	if err != nil {
		return err
	}
	topic := strings.TrimSpace(c.String("topic"))
	if topic != "" && len(groups) != 1 {
		return usageError("%s: --topic takes exactly one group", cmdName(c))
	}
	return withAdmin(c, func(ctx context.Context, a adminSession) error {
		if topic == "" {
			return deleteGroups(c, ctx, a.adm, groups, a.out)
		}
		resps, err := a.adm.DeleteShareGroupOffsets(ctx, groups[0], topic)
		if err != nil {
			if errors.Is(err, kerr.NonEmptyGroup) {
				return failure("share group %q is not empty: stop its consumers first", groups[0])
			}
			return failure("delete offsets of share group %q: %s", groups[0], describeErr(err))
		}
		if err := resps.Error(); err != nil {
			return failure("delete offsets of share group %q topic %q: %s", groups[0], topic, describeErr(err))
		}
		if a.out == outputJSON {
			return writeJSON(c.App.Writer, struct {
				Group   string `json:"group"`
				Topic   string `json:"topic"`
				Deleted bool   `json:"deleted"`
			}{groups[0], topic, true})
		}
		fmt.Fprintf(c.App.Writer, "deleted the offsets of share group %q on topic %q\n", groups[0], topic)
		return nil
	})
}

// ---- config

func shareConfigCommand() *cli.Command {
	return leaf(&cli.Command{
		Name:  "config",
		Usage: "show or change a share group's configs",
		UsageText: `shoal share config GROUP [--set key=value ...] [--delete key ...]

Group configs (resource type GROUP; --delete goes back to the default):
  share.auto.offset.reset          latest | earliest | by_duration:<ISO-8601>, e.g. by_duration:PT1H
  share.isolation.level            read_uncommitted | read_committed (only committed transactions)
  share.record.lock.duration.ms    how long a worker holds a record (broker bounds:
                                   group.share.min/max.record.lock.duration.ms)
  share.delivery.count.limit       deliveries before a record is given up on (broker bounds:
                                   group.share.min/max.delivery.count.limit)
  share.partition.max.record.locks records in flight per partition (broker bounds:
                                   group.share.min/max.partition.max.record.locks)
  share.acquire.mode               batch_optimized | record_limit (a fetch's max records is exact)
  share.renew.acknowledge.enable   true | false: whether workers may RENEW a record's lock
  share.release.backoff.ms         wait before a RELEASEd record is offered again
  share.delivery.ordering          none | key (one record per key in flight, in offset order)
  errors.deadletterqueue.topic.name          where given-up records go (dlq.* by default)
  errors.deadletterqueue.copy.record.enable  true: dead letters carry key, value and headers
With no --set or --delete it prints the group's configs and where each comes
from (GROUP_CONFIG, or the broker's default).

examples:
  shoal share config workers
  shoal share config workers --set share.auto.offset.reset=by_duration:PT30M
  shoal share config workers --set share.isolation.level=read_committed --set share.acquire.mode=record_limit
  shoal share config workers --set share.delivery.count.limit=3 --set share.partition.max.record.locks=500
  shoal share config workers --set errors.deadletterqueue.topic.name=dlq.jobs --set errors.deadletterqueue.copy.record.enable=true
  shoal --output json share config workers`,
		Flags: []cli.Flag{
			listFlag("set", []string{"s"}, "set a config key=value (repeatable)"),
			listFlag("delete", []string{"d"}, "reset a config key to its default (repeatable)"),
		},
		Action: shareConfig,
	})
}

type groupConfigEntry struct {
	Name      string `json:"name"`
	Value     string `json:"value"`
	Source    string `json:"source"`
	Sensitive bool   `json:"sensitive,omitempty"`
}

func shareConfig(c *cli.Context) error {
	args, err := groupArgs(c, false)
	if err != nil {
		return err
	}
	group := args[0]
	sets, order, err := parseKeyValues("set", listFlagValues(c, "set"))
	if err != nil {
		return err
	}
	dels := listFlagValues(c, "delete")
	return withAdmin(c, func(ctx context.Context, a adminSession) error {
		if len(sets) > 0 || len(dels) > 0 {
			if err := alterGroupConfigs(ctx, a.cl, group, sets, order, dels); err != nil {
				return err
			}
		}
		entries, err := describeGroupConfigs(ctx, a.cl, group)
		if err != nil {
			return err
		}
		w := c.App.Writer
		if a.out == outputJSON {
			return writeJSON(w, struct {
				Group   string             `json:"group"`
				Configs []groupConfigEntry `json:"configs"`
			}{group, entries})
		}
		if len(sets) > 0 || len(dels) > 0 {
			fmt.Fprintf(w, "updated configs of group %q\n", group)
		}
		return writeTable(w, []string{"KEY", "VALUE", "SOURCE"}, entries, func(e groupConfigEntry) []any {
			return []any{e.Name, e.Value, e.Source}
		})
	})
}

func alterGroupConfigs(ctx context.Context, cl *kgo.Client, group string, sets map[string]string, order, dels []string) error {
	req := kmsg.NewPtrIncrementalAlterConfigsRequest()
	res := kmsg.NewIncrementalAlterConfigsRequestResource()
	res.ResourceType = kmsg.ConfigResourceTypeGroupConfig
	res.ResourceName = group
	for _, k := range order {
		cfg := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
		cfg.Name, cfg.Value, cfg.Op = k, kmsg.StringPtr(sets[k]), kmsg.IncrementalAlterConfigOpSet
		res.Configs = append(res.Configs, cfg)
	}
	for _, k := range dels {
		cfg := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
		cfg.Name, cfg.Op = k, kmsg.IncrementalAlterConfigOpDelete
		res.Configs = append(res.Configs, cfg)
	}
	req.Resources = append(req.Resources, res)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return failure("alter configs of group %q: %s", group, describeErr(err))
	}
	for _, r := range resp.Resources {
		if err := kerr.ErrorForCode(r.ErrorCode); err != nil {
			return failure("alter configs of group %q: %s", group, describeErrMsg(err, deref(r.ErrorMessage)))
		}
	}
	return nil
}

func describeGroupConfigs(ctx context.Context, cl *kgo.Client, group string) ([]groupConfigEntry, error) {
	req := kmsg.NewPtrDescribeConfigsRequest()
	res := kmsg.NewDescribeConfigsRequestResource()
	res.ResourceType = kmsg.ConfigResourceTypeGroupConfig
	res.ResourceName = group
	req.Resources = append(req.Resources, res)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return nil, failure("describe configs of group %q: %s", group, describeErr(err))
	}
	entries := []groupConfigEntry{}
	for _, r := range resp.Resources {
		if err := kerr.ErrorForCode(r.ErrorCode); err != nil {
			return nil, failure("describe configs of group %q: %s", group, describeErrMsg(err, deref(r.ErrorMessage)))
		}
		for _, cfg := range r.Configs {
			v := ""
			if cfg.Value != nil {
				v = *cfg.Value
			}
			entries = append(entries, groupConfigEntry{Name: cfg.Name, Value: v, Source: groupConfigSource(cfg.Source), Sensitive: cfg.IsSensitive})
		}
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].Name < entries[j].Name })
	return entries, nil
}

// groupConfigSource is Kafka's name for a group config's source.
func groupConfigSource(s kmsg.ConfigSource) string {
	if s == kmsg.ConfigSourceGroupConfig {
		return "GROUP_CONFIG"
	}
	return configSourceName(s)
}

// ---- consume --share-group

// consumeShare prints records delivered to this member of a share group.
// Each printed record is acknowledged with ACCEPT; records received but
// not printed (past --max-records) are released for redelivery.
func consumeShare(c *cli.Context, gc groupConsume) error {
	_, adm, ctx, closeAdmin, err := connectAdmin(c)
	if err != nil {
		return err
	}
	_, err = topicMetadata(ctx, adm, gc.topic)
	closeAdmin()
	if err != nil {
		return err
	}
	opts := []kgo.Opt{
		kgo.ShareGroup(gc.group),
		kgo.ConsumeTopics(gc.topic),
		kgo.FetchMaxWait(500 * time.Millisecond),
	}
	if gc.maxRecords > 0 && gc.maxRecords < 500 {
		opts = append(opts, kgo.ShareMaxRecords(int32(gc.maxRecords)))
	}
	consumer, _, err := connect(c, opts...)
	if err != nil {
		return err
	}
	defer consumer.Close() // releases anything unacknowledged and leaves the group

	var printed int64
	return printPolls(c, consumer, &printed, func(w *bufio.Writer, fetches kgo.Fetches) (bool, error) {
		var accepted, released []*kgo.Record
		fetches.EachRecord(func(r *kgo.Record) {
			if gc.maxRecords > 0 && printed >= gc.maxRecords {
				released = append(released, r)
				return
			}
			gc.format.write(w, r)
			accepted = append(accepted, r)
			printed++
		})
		if err := w.Flush(); err != nil {
			consumer.MarkAcks(kgo.AckRelease, accepted...)
			return true, failure("writing output: %v", err)
		}
		consumer.MarkAcks(kgo.AckAccept, accepted...)
		consumer.MarkAcks(kgo.AckRelease, released...)
		if gc.maxRecords > 0 && printed >= gc.maxRecords {
			fctx, fcancel := context.WithTimeout(c.Context, adminTimeout)
			err := consumer.FlushAcks(fctx)
			fcancel()
			if err != nil {
				return true, failure("consume %q: acknowledging records of share group %q: %s", gc.topic, gc.group, describeErr(err))
			}
			return true, nil
		}
		return false, nil
	})
}
