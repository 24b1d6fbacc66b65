package main

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/urfave/cli/v2"
)

func topicCommand() *cli.Command {
	return commandGroup("topic", "create, list, describe, alter, reassign, move between log directories and delete topics",
		`shoal topic create orders --partitions 6 --config retention.ms=86400000
shoal topic list
shoal topic describe orders
shoal topic alter orders --set retention.ms=3600000 --delete cleanup.policy
shoal topic add-partitions orders --total 12
shoal topic reassign --execute --plan plan.json
shoal topic move-dir orders --broker 1 --dir /var/lib/shoal/disk2
shoal topic delete orders`,
		topicCreateCommand(),
		topicListCommand(),
		topicDescribeCommand(),
		topicAlterCommand(),
		topicAddPartitionsCommand(),
		topicReassignCommand(),
		topicMoveDirCommand(),
		topicDeleteCommand(),
	)
}

// intFlagValue reads an integer flag given as a string, so a bad value is
// reported with the flag's name in one line.
func intFlagValue(c *cli.Context, name string, min, max int64) (int64, error) {
	s := c.String(name)
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil {
		return 0, usageError("--%s: %q is not an integer", name, s)
	}
	if n < min || n > max {
		return 0, usageError("--%s: %d is out of range [%d, %d]", name, n, min, max)
	}
	return n, nil
}

// formatTopicID renders a topic id as Kafka does (URL-safe base64, no
// padding); the zero id prints as "-".
func formatTopicID(id kadm.TopicID) string {
	if id == (kadm.TopicID{}) {
		return "-"
	}
	return base64.RawURLEncoding.EncodeToString(id[:])
}

// oneTopicArg returns the single topic name argument of a command.
func oneTopicArg(c *cli.Context) (string, error) {
	args, err := positionalArgs(c)
	if err != nil {
		return "", err
	}
	if lookupFlag(c.Command.Flags, "topic") != nil && c.IsSet("topic") {
		// Kafka's tools name the topic with --topic.
		if len(args) > 0 {
			return "", usageError("%s: give the topic as an argument or with --topic, not both", cmdName(c))
		}
		args = []string{c.String("topic")}
	}
	switch len(args) {
	case 0:
		return "", missingArg(c, "topic name")
	case 1:
		name := args[0]
		if name == "" {
			return "", usageError("%s: empty topic name", cmdName(c))
		}
		return name, nil
	default:
		return "", usageError("%s: expected one topic name, got %d arguments: %s", cmdName(c), len(args), strings.Join(args, " "))
	}
}

func firstLine(s string) string {
	first, _, _ := strings.Cut(s, "\n")
	return first
}

// topicMetadata loads one topic's metadata, failing clearly if it does
// not exist.
func topicMetadata(ctx context.Context, adm *kadm.Client, name string) (kadm.TopicDetail, error) {
	tds, err := adm.ListTopicsWithInternal(ctx, name)
	if err != nil {
		return kadm.TopicDetail{}, failure("topic %q: %s", name, describeErr(err))
	}
	td, ok := tds[name]
	if !ok || errors.Is(td.Err, kerr.UnknownTopicOrPartition) {
		return kadm.TopicDetail{}, failure("topic %q does not exist", name)
	}
	if td.Err != nil {
		return kadm.TopicDetail{}, failure("topic %q: %s", name, describeErr(td.Err))
	}
	return td, nil
}

// replicationFactor is the largest replica count over the partitions.
func replicationFactor(td kadm.TopicDetail) int {
	rf := 0
	for _, p := range td.Partitions {
		rf = max(rf, len(p.Replicas))
	}
	return rf
}

// ---- create

func topicCreateCommand() *cli.Command {
	return leaf(&cli.Command{
		Name:  "create",
		Usage: "create a topic",
		UsageText: `shoal topic create NAME [--partitions N] [--replication-factor N] [--config key=value ...] [--if-not-exists]

example: shoal topic create orders --partitions 6 --config retention.ms=86400000 --config cleanup.policy=delete`,
		Flags: []cli.Flag{
			topicNameFlag(),
			&cli.StringFlag{Name: "partitions", Aliases: []string{"p"}, Value: "-1", Usage: "number of partitions (-1: the broker's num.partitions)"},
			&cli.StringFlag{Name: "replication-factor", Aliases: []string{"r"}, Value: "-1", Usage: "replicas per partition (-1: the broker's default.replication.factor)"},
			listFlag("config", []string{"c"}, "topic config key=value (repeatable)"),
			&cli.BoolFlag{Name: "if-not-exists", Usage: "succeed without change if the topic already exists"},
		},
		Action: topicCreate,
	})
}

func topicCreate(c *cli.Context) error {
	name, err := oneTopicArg(c)
	if err != nil {
		return err
	}
	parts, err := intFlagValue(c, "partitions", -1, 1<<31-1)
	if err != nil {
		return err
	}
	if parts == 0 {
		return usageError("--partitions: must be at least 1 (or -1 for the broker default)")
	}
	rf, err := intFlagValue(c, "replication-factor", -1, 1<<15-1)
	if err != nil {
		return err
	}
	if rf == 0 {
		return usageError("--replication-factor: must be at least 1 (or -1 for the broker default)")
	}
	cfgs, _, err := parseKeyValues("config", listFlagValues(c, "config"))
	if err != nil {
		return err
	}
	return withAdmin(c, func(ctx context.Context, a adminSession) error {
		configs := make(map[string]*string, len(cfgs))
		for k, v := range cfgs {
			configs[k] = kmsg.StringPtr(v)
		}
		resps, err := a.adm.CreateTopics(ctx, int32(parts), int16(rf), configs, name)
		if err != nil {
			return failure("create topic %q: %s", name, describeErr(err))
		}
		resp, ok := resps[name]
		if !ok {
			return failure("create topic %q: the broker did not answer for it", name)
		}
		existed := false
		if resp.Err != nil {
			if errors.Is(resp.Err, kerr.TopicAlreadyExists) && c.Bool("if-not-exists") {
				existed = true
			} else {
				return failure("create topic %q: %s", name, describeErrMsg(resp.Err, resp.ErrMessage))
			}
		}
		w := c.App.Writer
		if a.out == outputJSON {
			return writeJSON(w, struct {
				Name              string `json:"name"`
				ID                string `json:"id,omitempty"`
				Created           bool   `json:"created"`
				Partitions        int32  `json:"partitions,omitempty"`
				ReplicationFactor int16  `json:"replication_factor,omitempty"`
			}{name, idOrEmpty(resp.ID, existed), !existed, resp.NumPartitions, resp.ReplicationFactor})
		}
		if existed {
			fmt.Fprintf(w, "topic %q already exists\n", name)
			return nil
		}
		fmt.Fprintf(w, "created topic %q (partitions: %d, replication factor: %d, id: %s)\n",
			name, resp.NumPartitions, resp.ReplicationFactor, formatTopicID(resp.ID))
		return nil
	})
}

func idOrEmpty(id kadm.TopicID, skip bool) string {
	if skip || id == (kadm.TopicID{}) {
		return ""
	}
	return formatTopicID(id)
}

// ---- list

func topicListCommand() *cli.Command {
	return leaf(&cli.Command{
		Name:      "list",
		Aliases:   []string{"ls"},
		Usage:     "list topics",
		UsageText: "shoal topic list [--internal]\n\nexample: shoal --output json topic list",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "internal", Usage: "include internal topics (__consumer_offsets, ...)"},
		},
		Action: topicList,
	})
}

type topicSummary struct {
	Name              string `json:"name"`
	ID                string `json:"id"`
	Partitions        int    `json:"partitions"`
	ReplicationFactor int    `json:"replication_factor"`
	Internal          bool   `json:"internal"`
}

func topicList(c *cli.Context) error {
	if c.Args().Len() > 0 {
		return usageError("topic list: unexpected argument %q", c.Args().First())
	}
	return withAdmin(c, func(ctx context.Context, a adminSession) error {
		tds, err := a.adm.ListTopicsWithInternal(ctx)
		if err != nil {
			return failure("list topics: %s", describeErr(err))
		}
		list := []topicSummary{}
		for _, name := range tds.Names() {
			td := tds[name]
			if td.IsInternal && !c.Bool("internal") {
				continue
			}
			if td.Err != nil {
				return failure("list topics: topic %q: %s", name, describeErr(td.Err))
			}
			list = append(list, topicSummary{
				Name:              name,
				ID:                formatTopicID(td.ID),
				Partitions:        len(td.Partitions),
				ReplicationFactor: replicationFactor(td),
				Internal:          td.IsInternal,
			})
		}
		return printRows(c.App.Writer, a.out, list, []string{"NAME", "PARTITIONS", "REPLICATION-FACTOR", "ID"}, func(s topicSummary) []any {
			name := s.Name
			if s.Internal {
				name += " (internal)"
			}
			return []any{name, s.Partitions, s.ReplicationFactor, s.ID}
		})
	})
}

// ---- describe

func topicDescribeCommand() *cli.Command {
	return leaf(&cli.Command{
		Name:  "describe",
		Usage: "show a topic's partitions (leader, replicas, ISR, offsets) and configs",
		UsageText: `shoal topic describe NAME... [--all-configs]

example: shoal topic describe orders
         shoal --output json topic describe orders --all-configs`,
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "all-configs", Usage: "list every config, not only the topic's overrides"},
		},
		Action: topicDescribe,
	})
}

type partitionDescription struct {
	Partition      int32   `json:"partition"`
	Leader         int32   `json:"leader"`
	LeaderEpoch    int32   `json:"leader_epoch"`
	Replicas       []int32 `json:"replicas"`
	ISR            []int32 `json:"isr"`
	LogStartOffset int64   `json:"log_start_offset"`
	HighWatermark  int64   `json:"high_watermark"`
	Error          string  `json:"error,omitempty"`
}

type configDescription struct {
	Name      string  `json:"name"`
	Value     *string `json:"value"`
	Source    string  `json:"source"`
	Sensitive bool    `json:"sensitive"`
}

type topicDescription struct {
	Name              string                 `json:"name"`
	ID                string                 `json:"id"`
	Internal          bool                   `json:"internal"`
	ReplicationFactor int                    `json:"replication_factor"`
	Partitions        []partitionDescription `json:"partitions"`
	Configs           []configDescription    `json:"configs"`
}

func topicDescribe(c *cli.Context) error {
	names, err := someArgs(c, "topic name")
	if err != nil {
		return err
	}
	return withAdmin(c, func(ctx context.Context, a adminSession) error {
		var descs []topicDescription
		for _, name := range names {
			d, err := describeTopic(ctx, a.adm, name, c.Bool("all-configs"))
			if err != nil {
				return err
			}
			descs = append(descs, d)
		}
		w := c.App.Writer
		if a.out == outputJSON {
			if len(descs) == 1 {
				return writeJSON(w, descs[0])
			}
			return writeJSON(w, descs)
		}
		for i, d := range descs {
			if i > 0 {
				fmt.Fprintln(w)
			}
			internal := ""
			if d.Internal {
				internal = "  (internal)"
			}
			fmt.Fprintf(w, "Topic: %s  ID: %s  Partitions: %d  Replication factor: %d%s\n\n",
				d.Name, d.ID, len(d.Partitions), d.ReplicationFactor, internal)
			t := newTable(w, "PARTITION", "LEADER", "EPOCH", "REPLICAS", "ISR", "LOG-START-OFFSET", "HIGH-WATERMARK")
			for _, p := range d.Partitions {
				start, hw := strconv.FormatInt(p.LogStartOffset, 10), strconv.FormatInt(p.HighWatermark, 10)
				if p.Error != "" {
					start, hw = "?", "? ("+p.Error+")"
				}
				t.row(p.Partition, p.Leader, p.LeaderEpoch, joinInt32s(p.Replicas), joinInt32s(p.ISR), start, hw)
			}
			if err := t.flush(); err != nil {
				return err
			}
			fmt.Fprintln(w)
			if len(d.Configs) == 0 {
				fmt.Fprintln(w, "Configs: none set on the topic (all defaults; see --all-configs)")
				continue
			}
			fmt.Fprintln(w, "Configs:")
			t = newTable(w, "  NAME", "VALUE", "SOURCE")
			for _, cfg := range d.Configs {
				v := "null"
				if cfg.Sensitive {
					v = "(sensitive)"
				} else if cfg.Value != nil {
					v = *cfg.Value
				}
				t.row("  "+cfg.Name, v, cfg.Source)
			}
			if err := t.flush(); err != nil {
				return err
			}
		}
		return nil
	})
}

func describeTopic(ctx context.Context, adm *kadm.Client, name string, allConfigs bool) (topicDescription, error) {
	td, err := topicMetadata(ctx, adm, name)
	if err != nil {
		return topicDescription{}, err
	}
	starts, ends, err := listStartsEnds(ctx, adm, name)
	if err != nil {
		return topicDescription{}, failure("topic %q: %s", name, err)
	}
	d := topicDescription{
		Name:              name,
		ID:                formatTopicID(td.ID),
		Internal:          td.IsInternal,
		ReplicationFactor: replicationFactor(td),
		Partitions:        []partitionDescription{},
		Configs:           []configDescription{},
	}
	for _, p := range td.Partitions.Sorted() {
		pd := partitionDescription{
			Partition:      p.Partition,
			Leader:         p.Leader,
			LeaderEpoch:    p.LeaderEpoch,
			Replicas:       nonNil(p.Replicas),
			ISR:            nonNil(p.ISR),
			LogStartOffset: -1,
			HighWatermark:  -1,
		}
		if p.Err != nil {
			pd.Error = describeErr(p.Err)
		}
		if o, ok := starts.Lookup(name, p.Partition); ok {
			if o.Err != nil {
				pd.Error = describeErr(o.Err)
			} else {
				pd.LogStartOffset = o.Offset
			}
		}
		if o, ok := ends.Lookup(name, p.Partition); ok {
			if o.Err != nil {
				pd.Error = describeErr(o.Err)
			} else {
				pd.HighWatermark = o.Offset
			}
		}
		d.Partitions = append(d.Partitions, pd)
	}
	rcs, err := adm.DescribeTopicConfigs(ctx, name)
	if err != nil {
		return topicDescription{}, failure("topic %q: describing configs: %s", name, describeErr(err))
	}
	rc, err := rcs.On(name, nil)
	if err != nil {
		return topicDescription{}, failure("topic %q: describing configs: %s", name, describeErr(err))
	}
	if rc.Err != nil {
		return topicDescription{}, failure("topic %q: describing configs: %s", name, describeErrMsg(rc.Err, rc.ErrMessage))
	}
	for _, cfg := range rc.Configs {
		if !allConfigs && cfg.Source != kmsg.ConfigSourceDynamicTopicConfig {
			continue
		}
		d.Configs = append(d.Configs, configDescription{
			Name:      cfg.Key,
			Value:     cfg.Value,
			Source:    configSourceName(cfg.Source),
			Sensitive: cfg.Sensitive,
		})
	}
	sort.Slice(d.Configs, func(i, j int) bool { return d.Configs[i].Name < d.Configs[j].Name })
	return d, nil
}

func nonNil(xs []int32) []int32 {
	if xs == nil {
		return []int32{}
	}
	return xs
}

// configSourceName is Kafka's name for a config source.
func configSourceName(s kmsg.ConfigSource) string {
	switch s {
	case kmsg.ConfigSourceDynamicTopicConfig:
		return "DYNAMIC_TOPIC_CONFIG"
	case kmsg.ConfigSourceDynamicBrokerConfig:
		return "DYNAMIC_BROKER_CONFIG"
	case kmsg.ConfigSourceDynamicDefaultBrokerConfig:
		return "DYNAMIC_DEFAULT_BROKER_CONFIG"
	case kmsg.ConfigSourceStaticBrokerConfig:
		return "STATIC_BROKER_CONFIG"
	case kmsg.ConfigSourceDefaultConfig:
		return "DEFAULT_CONFIG"
	case kmsg.ConfigSourceDynamicBrokerLoggerConfig:
		return "DYNAMIC_BROKER_LOGGER_CONFIG"
	default:
		return "UNKNOWN"
	}
}

// ---- alter

func topicAlterCommand() *cli.Command {
	return leaf(&cli.Command{
		Name:  "alter",
		Usage: "set or remove a topic's config overrides (IncrementalAlterConfigs)",
		UsageText: `shoal topic alter NAME [--set key=value ...] [--delete key ...]

example: shoal topic alter orders --set retention.ms=3600000 --set max.message.bytes=2097152 --delete cleanup.policy`,
		Flags: []cli.Flag{
			topicNameFlag(),
			listFlag("set", nil, "set a config: key=value (repeatable)"),
			listFlag("delete", nil, "remove a config override, back to the default (repeatable)"),
		},
		Action: topicAlter,
	})
}

func topicAlter(c *cli.Context) error {
	name, err := oneTopicArg(c)
	if err != nil {
		return err
	}
	ch, err := parseConfigChanges(c, "topic alter")
	if err != nil {
		return err
	}
	return withAdmin(c, func(ctx context.Context, a adminSession) error {
		resps, err := a.adm.AlterTopicConfigs(ctx, ch.alters, name)
		if err := alterConfigsFailure(resps, err, fmt.Sprintf("alter topic %q", name), failure("topic %q does not exist", name)); err != nil {
			return err
		}
		if a.out == outputJSON {
			return writeJSON(c.App.Writer, struct {
				Topic   string            `json:"topic"`
				Set     map[string]string `json:"set"`
				Deleted []string          `json:"deleted"`
			}{name, ch.setMap(), append([]string{}, ch.del...)})
		}
		fmt.Fprintf(c.App.Writer, "altered topic %q: %s\n", name, ch.summary())
		return nil
	})
}

// ---- add-partitions

func topicAddPartitionsCommand() *cli.Command {
	return leaf(&cli.Command{
		Name:  "add-partitions",
		Usage: "raise a topic's partition count",
		UsageText: `shoal topic add-partitions NAME --total N

example: shoal topic add-partitions orders --total 12`,
		Flags: []cli.Flag{
			topicNameFlag(),
			&cli.StringFlag{Name: "total", Usage: "the new total number of partitions (required)"},
		},
		Action: topicAddPartitions,
	})
}

func topicAddPartitions(c *cli.Context) error {
	name, err := oneTopicArg(c)
	if err != nil {
		return err
	}
	if !c.IsSet("total") {
		return usageError("topic add-partitions: --total N is required")
	}
	total, err := intFlagValue(c, "total", 1, 1<<31-1)
	if err != nil {
		return err
	}
	return withAdmin(c, func(ctx context.Context, a adminSession) error {
		td, err := topicMetadata(ctx, a.adm, name)
		if err != nil {
			return err
		}
		if cur := int64(len(td.Partitions)); total <= cur {
			return failure("add partitions to %q: it already has %d partitions; --total must be more than that", name, cur)
		}
		resps, err := a.adm.UpdatePartitions(ctx, int(total), name)
		if err != nil {
			return failure("add partitions to %q: %s", name, describeErr(err))
		}
		if r, ok := resps[name]; ok && r.Err != nil {
			return failure("add partitions to %q: %s", name, describeErrMsg(r.Err, r.ErrMessage))
		}
		if a.out == outputJSON {
			return writeJSON(c.App.Writer, struct {
				Topic      string `json:"topic"`
				Partitions int64  `json:"partitions"`
				Previous   int    `json:"previous_partitions"`
			}{name, total, len(td.Partitions)})
		}
		fmt.Fprintf(c.App.Writer, "topic %q now has %d partitions (was %d)\n", name, total, len(td.Partitions))
		return nil
	})
}

// ---- delete

func topicDeleteCommand() *cli.Command {
	return leaf(&cli.Command{
		Name:  "delete",
		Usage: "delete topics and all their records",
		UsageText: `shoal topic delete NAME... [--if-exists]

example: shoal topic delete orders payments`,
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "if-exists", Usage: "succeed for topics that do not exist"},
		},
		Action: topicDelete,
	})
}

func topicDelete(c *cli.Context) error {
	names, err := someArgs(c, "topic name")
	if err != nil {
		return err
	}
	for _, n := range names {
		if n == "" {
			return usageError("topic delete: empty topic name")
		}
	}
	return withAdmin(c, func(ctx context.Context, a adminSession) error {
		resps, err := a.adm.DeleteTopics(ctx, names...)
		if err != nil {
			return failure("delete topics: %s", describeErr(err))
		}
		// deleteResult is one topic's outcome in --output json.
		type deleteResult struct {
			Topic   string `json:"topic"`
			Deleted bool   `json:"deleted"`
			Error   string `json:"error,omitempty"`
		}
		var failed []string
		var results []deleteResult
		say := func(format string, args ...any) {
			if a.out != outputJSON {
				fmt.Fprintf(c.App.Writer, format, args...)
			}
		}
		for _, n := range names {
			r, ok := resps[n]
			res := deleteResult{Topic: n}
			switch {
			case !ok:
				res.Error = "no answer from the broker"
				failed = append(failed, fmt.Sprintf("%q: %s", n, res.Error))
			case errors.Is(r.Err, kerr.UnknownTopicOrPartition):
				res.Error = fmt.Sprintf("topic %q does not exist", n)
				if c.Bool("if-exists") {
					say("topic %q does not exist\n", n)
				} else {
					failed = append(failed, res.Error)
				}
			case r.Err != nil:
				res.Error = describeErrMsg(r.Err, r.ErrMessage)
				failed = append(failed, fmt.Sprintf("%q: %s", n, res.Error))
			default:
				res.Deleted = true
				say("deleted topic %q\n", n)
			}
			results = append(results, res)
		}
		if a.out == outputJSON {
			if err := writeJSON(c.App.Writer, results); err != nil {
				return err
			}
		}
		if len(failed) > 0 {
			return failure("delete topics: %s", strings.Join(failed, "; "))
		}
		return nil
	})
}

// topicNameFlag is --topic, the Kafka tools' way of naming the topic a
// command works on, accepted beside the positional NAME.
func topicNameFlag() cli.Flag {
	return &cli.StringFlag{Name: "topic", Usage: "the topic (same as the NAME argument, as Kafka's tools spell it)"}
}
