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
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/urfave/cli/v2"
)

func groupCommand() *cli.Command {
	return commandGroup("group", "list, describe, reset and delete consumer groups",
		`shoal group list
shoal group describe billing
shoal group reset-offsets billing --topic orders --to-earliest --dry-run
shoal group reset-offsets billing --topic orders --by-duration 1h --execute
shoal group delete billing`,
		groupListCommand(),
		groupDescribeCommand(),
		groupResetCommand(),
		groupDeleteCommand(),
	)
}

// ---- shared helpers (also used by the share commands)

// listedGroup is one group of a ListGroups answer, with its type.
type listedGroup struct {
	Group        string `json:"group"`
	Type         string `json:"type"`
	State        string `json:"state"`
	ProtocolType string `json:"protocol_type,omitempty"`
	Coordinator  int32  `json:"coordinator"`
}

// listGroups asks every broker for its groups, optionally only those of
// the given types (classic, consumer, share).
func listGroups(ctx context.Context, cl *kgo.Client, types ...string) ([]listedGroup, error) {
	req := kmsg.NewPtrListGroupsRequest()
	req.TypesFilter = types
	var out []listedGroup
	var firstErr error
	for _, shard := range cl.RequestSharded(ctx, req) {
		if shard.Err != nil {
			if firstErr == nil {
				firstErr = shard.Err
			}
			continue
		}
		resp := shard.Resp.(*kmsg.ListGroupsResponse)
		if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		for _, g := range resp.Groups {
			typ := strings.ToLower(g.GroupType)
			if typ == "" {
				// Before ListGroups v5 only the protocol type is known.
				typ = "classic"
				if g.ProtocolType == "share" {
					typ = "share"
				}
			}
			out = append(out, listedGroup{
				Group:        g.Group,
				Type:         typ,
				State:        g.GroupState,
				ProtocolType: g.ProtocolType,
				Coordinator:  shard.Meta.NodeID,
			})
		}
	}
	if firstErr != nil && len(out) == 0 {
		return nil, firstErr
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Group < out[j].Group })
	return out, nil
}

// findGroup looks one group up in ListGroups; ok is false if no broker
// knows it.
func findGroup(ctx context.Context, cl *kgo.Client, group string) (listedGroup, bool, error) {
	gs, err := listGroups(ctx, cl)
	if err != nil {
		return listedGroup{}, false, err
	}
	for _, g := range gs {
		if g.Group == group {
			return g, true, nil
		}
	}
	return listedGroup{}, false, nil
}

// groupArgs returns the group names given as arguments (at least one; at
// most one unless many is set).
func groupArgs(c *cli.Context, many bool) ([]string, error) {
	args, err := someArgs(c, "group name")
	if err != nil {
		return nil, err
	}
	if !many && len(args) > 1 {
		return nil, usageError("%s: expected one group name, got %d arguments: %s", cmdName(c), len(args), strings.Join(args, " "))
	}
	for _, a := range args {
		if a == "" {
			return nil, usageError("%s: empty group name", cmdName(c))
		}
	}
	return args, nil
}

// topicPartitions is an assignment of one topic.
type topicPartitions struct {
	Topic      string  `json:"topic"`
	Partitions []int32 `json:"partitions"`
}

func fromTopicsSet(s kadm.TopicsSet) []topicPartitions {
	out := []topicPartitions{}
	for _, t := range s.Sorted() {
		ps := append([]int32(nil), t.Partitions...)
		sort.Slice(ps, func(i, j int) bool { return ps[i] < ps[j] })
		out = append(out, topicPartitions{Topic: t.Topic, Partitions: ps})
	}
	return out
}

// formatAssignment renders "orders:0,1 payments:2".
func formatAssignment(a []topicPartitions) string {
	if len(a) == 0 {
		return "-"
	}
	parts := make([]string, len(a))
	for i, tp := range a {
		parts[i] = tp.Topic + ":" + joinInt32s(tp.Partitions)
	}
	return strings.Join(parts, " ")
}

// dash prints -1 (unknown) as "-".
func dash(n int64) string {
	if n < 0 {
		return "-"
	}
	return strconv.FormatInt(n, 10)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// offsetBounds are a topic's log start and end offsets per partition.
type offsetBounds struct {
	start, end map[int32]int64
}

func topicBounds(ctx context.Context, adm *kadm.Client, topics ...string) (map[string]offsetBounds, error) {
	out := map[string]offsetBounds{}
	if len(topics) == 0 {
		return out, nil
	}
	starts, ends, err := listStartsEnds(ctx, adm, topics...)
	if err != nil {
		return nil, err
	}
	for _, t := range topics {
		out[t] = offsetBounds{start: map[int32]int64{}, end: map[int32]int64{}}
	}
	starts.Each(func(o kadm.ListedOffset) {
		if b, ok := out[o.Topic]; ok && o.Err == nil {
			b.start[o.Partition] = o.Offset
		}
	})
	ends.Each(func(o kadm.ListedOffset) {
		if b, ok := out[o.Topic]; ok && o.Err == nil {
			b.end[o.Partition] = o.Offset
		}
	})
	return out, nil
}

// listStartsEnds lists the log start and end offsets of topics' partitions.
func listStartsEnds(ctx context.Context, adm *kadm.Client, topics ...string) (starts, ends kadm.ListedOffsets, err error) {
	if starts, err = adm.ListStartOffsets(ctx, topics...); err != nil {
		return nil, nil, fmt.Errorf("listing start offsets: %s", describeErr(err))
	}
	if ends, err = adm.ListEndOffsets(ctx, topics...); err != nil {
		return nil, nil, fmt.Errorf("listing end offsets: %s", describeErr(err))
	}
	return starts, ends, nil
}

// ---- list

func groupListCommand() *cli.Command {
	return leaf(&cli.Command{
		Name:      "list",
		Aliases:   []string{"ls"},
		Usage:     "list groups of every type (classic, consumer, share)",
		UsageText: "shoal group list [--type classic|consumer|share]\n\nexample: shoal --output json group list --type consumer",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "type", Usage: "only groups of this type: classic, consumer or share"},
		},
		Action: func(c *cli.Context) error { return listGroupsAction(c, c.String("type")) },
	})
}

func listGroupsAction(c *cli.Context, typ string) error {
	if err := noArgs(c); err != nil {
		return err
	}
	if c.IsSet("type") {
		typ = c.String("type")
	}
	var types []string
	switch typ = strings.ToLower(typ); typ {
	case "":
	case "classic", "consumer", "share":
		types = []string{typ}
	default:
		return usageError("--type: %q is not one of classic, consumer, share", typ)
	}
	return withAdmin(c, func(ctx context.Context, a adminSession) error {
		gs, err := listGroups(ctx, a.cl, types...)
		if err != nil {
			return failure("list groups: %s", describeErr(err))
		}
		if gs == nil {
			gs = []listedGroup{}
		}
		return printRows(c.App.Writer, a.out, gs, []string{"GROUP", "TYPE", "STATE"},
			func(g listedGroup) []any { return []any{g.Group, g.Type, orDash(g.State)} })
	})
}

// ---- describe

func groupDescribeCommand() *cli.Command {
	return leaf(&cli.Command{
		Name:  "describe",
		Usage: "show a group's members, assignments, committed offsets and lag",
		UsageText: `shoal group describe GROUP

For each partition with a committed offset or an owner: the committed
offset, the log end offset and the lag between them.

example: shoal group describe billing`,
		Action: groupDescribe,
	})
}

type groupMemberInfo struct {
	MemberID   string            `json:"member_id"`
	InstanceID string            `json:"instance_id,omitempty"`
	ClientID   string            `json:"client_id"`
	Host       string            `json:"host"`
	Assignment []topicPartitions `json:"assignment"`
}

type groupPartitionLag struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Committed int64  `json:"committed_offset"` // -1: none
	LogEnd    int64  `json:"log_end_offset"`
	Lag       int64  `json:"lag"` // -1: unknown (nothing committed)
	MemberID  string `json:"member_id,omitempty"`
	ClientID  string `json:"client_id,omitempty"`
	Host      string `json:"host,omitempty"`
}

type groupDescription struct {
	Group       string              `json:"group"`
	Type        string              `json:"type"`
	State       string              `json:"state"`
	Protocol    string              `json:"protocol,omitempty"`
	Coordinator int32               `json:"coordinator"`
	Members     []groupMemberInfo   `json:"members"`
	Offsets     []groupPartitionLag `json:"offsets"`
	TotalLag    int64               `json:"total_lag"`
}

func groupDescribe(c *cli.Context) error {
	return describeOneGroup(c, describeGroup, func(w io.Writer, d groupDescription) error {
		if err := writeGroupHeader(w, d.Members, "group %s (type %s, state %s, coordinator %d, %d members)", d.Group, d.Type, orDash(d.State), d.Coordinator, len(d.Members)); err != nil {
			return err
		}
		return writeTable(w, []string{"TOPIC", "PARTITION", "CURRENT-OFFSET", "LOG-END-OFFSET", "LAG", "CONSUMER-ID", "HOST", "CLIENT-ID"}, d.Offsets, func(o groupPartitionLag) []any {
			return []any{o.Topic, o.Partition, dash(o.Committed), dash(o.LogEnd), dash(o.Lag), orDash(o.MemberID), orDash(o.Host), orDash(o.ClientID)}
		})
	})
}

// describeOneGroup runs a describe command of the one group named on the
// command line: describe gathers the description, which is printed as
// JSON or by print.
func describeOneGroup[D any](c *cli.Context, describe func(context.Context, *kgo.Client, *kadm.Client, string) (D, error), print func(io.Writer, D) error) error {
	args, err := groupArgs(c, false)
	if err != nil {
		return err
	}
	return withAdmin(c, func(ctx context.Context, a adminSession) error {
		d, err := describe(ctx, a.cl, a.adm, args[0])
		if err != nil {
			return err
		}
		if a.out == outputJSON {
			return writeJSON(c.App.Writer, d)
		}
		return print(c.App.Writer, d)
	})
}

// writeGroupHeader prints the top of a group description: the summary
// line, the members table after a blank line if there are members, and the
// blank line before the offsets table.
func writeGroupHeader(w io.Writer, members []groupMemberInfo, format string, args ...any) error {
	fmt.Fprintf(w, format+"\n", args...)
	if len(members) > 0 {
		fmt.Fprintln(w)
		if err := writeTable(w, []string{"MEMBER-ID", "CLIENT-ID", "HOST", "ASSIGNMENT"}, members, func(m groupMemberInfo) []any {
			return []any{m.MemberID, orDash(m.ClientID), orDash(m.Host), formatAssignment(m.Assignment)}
		}); err != nil {
			return err
		}
	}
	fmt.Fprintln(w)
	return nil
}

// describeGroup gathers a classic or consumer group's members and offsets.
func describeGroup(ctx context.Context, cl *kgo.Client, adm *kadm.Client, group string) (groupDescription, error) {
	lg, found, err := findGroup(ctx, cl, group)
	if err != nil {
		return groupDescription{}, failure("describe group %q: %s", group, describeErr(err))
	}
	if !found {
		return groupDescription{}, failure("group %q does not exist", group)
	}
	if lg.Type == "share" {
		return groupDescription{}, failure("group %q is a share group (see 'shoal share describe %s')", group, group)
	}
	d := groupDescription{Group: group, Type: lg.Type, State: lg.State, Coordinator: lg.Coordinator, Members: []groupMemberInfo{}, Offsets: []groupPartitionLag{}}

	owners := map[string]map[int32]*groupMemberInfo{}
	addOwner := func(m *groupMemberInfo) {
		for _, tp := range m.Assignment {
			if owners[tp.Topic] == nil {
				owners[tp.Topic] = map[int32]*groupMemberInfo{}
			}
			for _, p := range tp.Partitions {
				owners[tp.Topic][p] = m
			}
		}
	}
	if lg.Type == "consumer" {
		dgs, err := adm.DescribeConsumerGroups(ctx, group)
		g, err := describedGroup(dgs, err, group, func(g kadm.DescribedConsumerGroup) error { return g.Err })
		if err != nil {
			return d, err
		}
		d.State, d.Protocol = g.State, g.AssignorName
		for _, m := range g.Members {
			d.Members = append(d.Members, groupMemberInfo{MemberID: m.MemberID, InstanceID: deref(m.InstanceID), ClientID: m.ClientID, Host: m.ClientHost, Assignment: fromTopicsSet(m.Assignment)})
		}
	} else {
		dgs, err := adm.DescribeGroups(ctx, group)
		g, err := describedGroup(dgs, err, group, func(g kadm.DescribedGroup) error { return g.Err })
		if err != nil {
			return d, err
		}
		d.State, d.Protocol = g.State, g.Protocol
		for _, m := range g.Members {
			mi := groupMemberInfo{MemberID: m.MemberID, InstanceID: deref(m.InstanceID), ClientID: m.ClientID, Host: m.ClientHost, Assignment: []topicPartitions{}}
			if a, ok := m.Assigned.AsConsumer(); ok {
				set := kadm.TopicsSet{}
				for _, t := range a.Topics {
					set.Add(t.Topic, t.Partitions...)
				}
				mi.Assignment = fromTopicsSet(set)
			}
			d.Members = append(d.Members, mi)
		}
	}
	sort.Slice(d.Members, func(i, j int) bool { return d.Members[i].MemberID < d.Members[j].MemberID })
	for i := range d.Members {
		addOwner(&d.Members[i])
	}

	committed, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		return d, failure("describe group %q: fetching committed offsets: %s", group, describeErr(err))
	}
	if err := committed.Error(); err != nil {
		return d, failure("describe group %q: fetching committed offsets: %s", group, describeErr(err))
	}
	rows := map[string]map[int32]*groupPartitionLag{}
	row := func(t string, p int32) *groupPartitionLag {
		if rows[t] == nil {
			rows[t] = map[int32]*groupPartitionLag{}
		}
		r := rows[t][p]
		if r == nil {
			r = &groupPartitionLag{Topic: t, Partition: p, Committed: -1, LogEnd: -1, Lag: -1}
			rows[t][p] = r
		}
		return r
	}
	committed.Each(func(o kadm.OffsetResponse) {
		if o.At >= 0 {
			row(o.Topic, o.Partition).Committed = o.At
		}
	})
	for t, ps := range owners {
		for p, m := range ps {
			r := row(t, p)
			r.MemberID, r.ClientID, r.Host = m.MemberID, m.ClientID, m.Host
		}
	}
	topics := slices.Sorted(maps.Keys(rows))
	bounds, err := topicBounds(ctx, adm, topics...)
	if err != nil {
		return d, failure("describe group %q: %v", group, err)
	}
	for _, t := range topics {
		for _, r := range rows[t] {
			if end, ok := bounds[t].end[r.Partition]; ok {
				r.LogEnd = end
				if r.Committed >= 0 {
					r.Lag = max(end-r.Committed, 0)
					d.TotalLag += r.Lag
				}
			}
			d.Offsets = append(d.Offsets, *r)
		}
	}
	sortByTopicPartition(d.Offsets, func(o groupPartitionLag) (string, int32) { return o.Topic, o.Partition })
	return d, nil
}

// describedGroup picks group's answer from a describe call's result,
// failing on the call's error, a missing answer or the group's error.
func describedGroup[G any](answers map[string]G, err error, group string, groupErr func(G) error) (G, error) {
	var g G
	if err != nil {
		return g, failure("describe group %q: %s", group, describeErr(err))
	}
	g, ok := answers[group]
	if !ok {
		return g, failure("describe group %q: the broker did not answer for it", group)
	}
	if err := groupErr(g); err != nil {
		return g, failure("describe group %q: %s", group, describeErr(err))
	}
	return g, nil
}

// ---- reset-offsets

// resetTarget is a parsed --to-* / --by-duration choice.
type resetTarget struct {
	kind   string // earliest, latest, offset, time
	offset int64
	millis int64
}

func (r resetTarget) String() string {
	switch r.kind {
	case "offset":
		return "offset " + strconv.FormatInt(r.offset, 10)
	case "time":
		return "time " + time.UnixMilli(r.millis).UTC().Format(time.RFC3339)
	}
	return r.kind
}

// resetFlags are the flags of reset-offsets; withTime adds the
// timestamp-based targets.
func resetFlags(withTime bool) []cli.Flag {
	fs := []cli.Flag{
		&cli.StringFlag{Name: "topic", Aliases: []string{"t"}, Usage: "the topic whose offsets to reset (required)"},
		&cli.StringSliceFlag{Name: "partition", Aliases: []string{"p"}, Usage: "only partition N (repeatable, or comma separated; default all)"},
		&cli.BoolFlag{Name: "to-earliest", Usage: "reset to the log start offset"},
		&cli.BoolFlag{Name: "to-latest", Usage: "reset to the log end offset"},
		&cli.StringFlag{Name: "to-offset", Usage: "reset to offset N (clamped to the log's bounds)"},
	}
	if withTime {
		fs = append(fs,
			&cli.StringFlag{Name: "to-datetime", Usage: "reset to the first record at or after an RFC 3339 time"},
			&cli.StringFlag{Name: "by-duration", Usage: "reset to the first record at or after that long ago (90s, 15m, 1h, 2d)"},
		)
	}
	return append(fs,
		&cli.BoolFlag{Name: "dry-run", Usage: "print the plan without changing anything (the default)"},
		&cli.BoolFlag{Name: "execute", Usage: "apply the plan (the group must have no members)"},
	)
}

func parseResetTarget(c *cli.Context, now time.Time) (resetTarget, error) {
	var targets []resetTarget
	var names []string
	if c.Bool("to-earliest") {
		targets, names = append(targets, resetTarget{kind: "earliest"}), append(names, "--to-earliest")
	}
	if c.Bool("to-latest") {
		targets, names = append(targets, resetTarget{kind: "latest"}), append(names, "--to-latest")
	}
	if c.IsSet("to-offset") {
		n, err := intFlagValue(c, "to-offset", 0, 1<<62)
		if err != nil {
			return resetTarget{}, err
		}
		targets, names = append(targets, resetTarget{kind: "offset", offset: n}), append(names, "--to-offset")
	}
	if lookupFlag(c.Command.Flags, "to-datetime") != nil && c.IsSet("to-datetime") {
		ts, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(c.String("to-datetime")))
		if err != nil {
			return resetTarget{}, usageError("--to-datetime: %q is not an RFC 3339 time like 2024-05-01T12:00:00Z", c.String("to-datetime"))
		}
		targets, names = append(targets, resetTarget{kind: "time", millis: ts.UnixMilli()}), append(names, "--to-datetime")
	}
	if lookupFlag(c.Command.Flags, "by-duration") != nil && c.IsSet("by-duration") {
		d, err := parseAgo(strings.TrimPrefix(strings.TrimSpace(c.String("by-duration")), "-"))
		if err != nil {
			return resetTarget{}, usageError("--by-duration: %q: %v", c.String("by-duration"), err)
		}
		targets, names = append(targets, resetTarget{kind: "time", millis: now.Add(-d).UnixMilli()}), append(names, "--by-duration")
	}
	switch len(targets) {
	case 0:
		return resetTarget{}, usageError("%s: say where to reset to: --to-earliest, --to-latest or --to-offset N", cmdName(c))
	case 1:
		return targets[0], nil
	default:
		return resetTarget{}, usageError("%s: give only one of %s", cmdName(c), strings.Join(names, ", "))
	}
}

// resetRow is one partition of a reset plan.
type resetRow struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Current   int64  `json:"current_offset"` // -1: none
	New       int64  `json:"new_offset"`
}

type resetResult struct {
	Group    string     `json:"group"`
	Executed bool       `json:"executed"`
	Plan     []resetRow `json:"partitions"`
}

// resetPlan resolves a reset target into a new offset per partition.
// current gives the group's present offsets (missing: none).
func resetPlan(ctx context.Context, adm *kadm.Client, topic string, want []int32, target resetTarget, current map[int32]int64) ([]resetRow, error) {
	td, err := topicMetadata(ctx, adm, topic)
	if err != nil {
		return nil, err
	}
	parts := want
	if len(parts) == 0 {
		for _, p := range td.Partitions.Sorted() {
			parts = append(parts, p.Partition)
		}
	}
	for _, p := range parts {
		if _, ok := td.Partitions[p]; !ok {
			return nil, failure("topic %q has no partition %d (it has %d)", topic, p, len(td.Partitions))
		}
	}
	bs, err := topicBounds(ctx, adm, topic)
	if err != nil {
		return nil, failure("topic %q: %v", topic, err)
	}
	b := bs[topic]
	var byTime kadm.ListedOffsets
	if target.kind == "time" {
		if byTime, err = adm.ListOffsetsAfterMilli(ctx, target.millis, topic); err != nil {
			return nil, failure("topic %q: listing offsets by timestamp: %s", topic, describeErr(err))
		}
	}
	var plan []resetRow
	for _, p := range parts {
		start, okS := b.start[p]
		end, okE := b.end[p]
		if !okS || !okE {
			return nil, failure("topic %q partition %d: no log offsets", topic, p)
		}
		var n int64
		switch target.kind {
		case "earliest":
			n = start
		case "latest":
			n = end
		case "offset":
			n = min(max(target.offset, start), end)
		case "time":
			o, ok := byTime.Lookup(topic, p)
			if !ok || o.Err != nil {
				return nil, failure("topic %q partition %d: no offset for the timestamp", topic, p)
			}
			n = o.Offset
			if n < 0 || n > end {
				n = end
			}
		}
		cur, ok := current[p]
		if !ok {
			cur = -1
		}
		plan = append(plan, resetRow{Topic: topic, Partition: p, Current: cur, New: n})
	}
	return plan, nil
}

func printReset(c *cli.Context, out string, res resetResult) error {
	w := c.App.Writer
	if out == outputJSON {
		return writeJSON(w, res)
	}
	if err := writeTable(w, []string{"GROUP", "TOPIC", "PARTITION", "CURRENT-OFFSET", "NEW-OFFSET"}, res.Plan, func(r resetRow) []any {
		return []any{res.Group, r.Topic, r.Partition, dash(r.Current), r.New}
	}); err != nil {
		return err
	}
	if res.Executed {
		fmt.Fprintf(w, "reset %d partition(s) of group %s\n", len(res.Plan), res.Group)
	} else {
		fmt.Fprintf(w, "dry run: nothing changed (use --execute to apply)\n")
	}
	return nil
}

func groupResetCommand() *cli.Command {
	return leaf(&cli.Command{
		Name:  "reset-offsets",
		Usage: "move a group's committed offsets on a topic",
		UsageText: `shoal group reset-offsets GROUP --topic T (--to-earliest | --to-latest | --to-offset N |
              --to-datetime RFC3339 | --by-duration 1h) [--partition N ...] [--dry-run | --execute]

Without --execute only the plan is printed. --execute requires the group to
have no active members, as in Kafka.

examples:
  shoal group reset-offsets billing --topic orders --to-earliest --dry-run
  shoal group reset-offsets billing --topic orders --to-datetime 2024-05-01T12:00:00Z --execute`,
		Flags:  resetFlags(true),
		Action: groupReset,
	})
}

// resetLoader looks a group up for reset-offsets: it fails if the group is
// of the other kind, and returns the group's present offsets on topic
// (missing: none) and how to apply a plan, which must refuse a group with
// members.
type resetLoader func(ctx context.Context, cl *kgo.Client, adm *kadm.Client, group, topic string) (current map[int32]int64, apply func(kadm.Offsets) error, err error)

// resetOffsets is reset-offsets for either kind of group: it parses the
// command line, has load look the group up, plans the reset, applies it
// with --execute, and prints the plan.
func resetOffsets(c *cli.Context, load resetLoader) error {
	args, err := groupArgs(c, false)
	if err != nil {
		return err
	}
	group := args[0]
	topic := strings.TrimSpace(c.String("topic"))
	if topic == "" {
		return usageError("%s: --topic is required", cmdName(c))
	}
	parts, err := parsePartitions(c.StringSlice("partition"))
	if err != nil {
		return err
	}
	target, err := parseResetTarget(c, time.Now())
	if err != nil {
		return err
	}
	if c.Bool("dry-run") && c.Bool("execute") {
		return usageError("%s: give --dry-run or --execute, not both", cmdName(c))
	}
	return withAdmin(c, func(ctx context.Context, a adminSession) error {
		current, apply, err := load(ctx, a.cl, a.adm, group, topic)
		if err != nil {
			return err
		}
		plan, err := resetPlan(ctx, a.adm, topic, parts, target, current)
		if err != nil {
			return err
		}
		res := resetResult{Group: group, Plan: plan}
		if c.Bool("execute") {
			offs := kadm.Offsets{}
			for _, r := range plan {
				offs.Add(kadm.Offset{Topic: r.Topic, Partition: r.Partition, At: r.New, LeaderEpoch: -1})
			}
			if err := apply(offs); err != nil {
				return err
			}
			res.Executed = true
		}
		return printReset(c, a.out, res)
	})
}

func groupReset(c *cli.Context) error {
	return resetOffsets(c, loadGroupForReset)
}

// loadGroupForReset is the resetLoader of classic and consumer groups:
// their committed offsets, and a commit of the plan.
func loadGroupForReset(ctx context.Context, cl *kgo.Client, adm *kadm.Client, group, topic string) (map[int32]int64, func(kadm.Offsets) error, error) {
	lg, found, err := findGroup(ctx, cl, group)
	if err != nil {
		return nil, nil, failure("reset offsets of group %q: %s", group, describeErr(err))
	}
	if found && lg.Type == "share" {
		return nil, nil, failure("group %q is a share group (see 'shoal share reset-offsets')", group)
	}
	current := map[int32]int64{}
	if found {
		committed, err := adm.FetchOffsetsForTopics(ctx, group, topic)
		if err != nil {
			return nil, nil, failure("reset offsets of group %q: fetching committed offsets: %s", group, describeErr(err))
		}
		committed.Each(func(o kadm.OffsetResponse) {
			if o.Topic == topic && o.Err == nil && o.At >= 0 {
				current[o.Partition] = o.At
			}
		})
	}
	apply := func(offs kadm.Offsets) error {
		if found {
			if err := requireEmptyGroup(ctx, adm, lg); err != nil {
				return err
			}
		}
		resps, err := adm.CommitOffsets(ctx, group, offs)
		if err != nil {
			return failure("reset offsets of group %q: %s", group, describeErr(err))
		}
		if err := resps.Error(); err != nil {
			if errors.Is(err, kerr.UnknownMemberID) || errors.Is(err, kerr.IllegalGeneration) || errors.Is(err, kerr.StaleMemberEpoch) || errors.Is(err, kerr.RebalanceInProgress) {
				return failure("reset offsets of group %q: the group is not empty (%s); stop its consumers first", group, describeErr(err))
			}
			return failure("reset offsets of group %q: %s", group, describeErr(err))
		}
		return nil
	}
	return current, apply, nil
}

// requireEmptyGroup fails unless a classic or consumer group has no
// members.
func requireEmptyGroup(ctx context.Context, adm *kadm.Client, lg listedGroup) error {
	members, state := 0, lg.State
	if lg.Type == "consumer" {
		dgs, err := adm.DescribeConsumerGroups(ctx, lg.Group)
		if err != nil {
			return failure("describe group %q: %s", lg.Group, describeErr(err))
		}
		if g, ok := dgs[lg.Group]; ok && g.Err == nil {
			members, state = len(g.Members), g.State
		}
	} else {
		dgs, err := adm.DescribeGroups(ctx, lg.Group)
		if err != nil {
			return failure("describe group %q: %s", lg.Group, describeErr(err))
		}
		if g, ok := dgs[lg.Group]; ok && g.Err == nil {
			members, state = len(g.Members), g.State
		}
	}
	if members > 0 {
		return failure("group %q is not empty (state %s, %d members): stop its consumers before --execute", lg.Group, state, members)
	}
	return nil
}

// ---- delete

func groupDeleteCommand() *cli.Command {
	return leaf(&cli.Command{
		Name:      "delete",
		Usage:     "delete groups and their committed offsets (they must have no members)",
		UsageText: "shoal group delete GROUP...\n\nexample: shoal group delete billing audit",
		Action:    groupDelete,
	})
}

type deleteResult struct {
	Group   string `json:"group"`
	Deleted bool   `json:"deleted"`
	Error   string `json:"error,omitempty"`
}

func groupDelete(c *cli.Context) error {
	groups, err := groupArgs(c, true)
	if err != nil {
		return err
	}
	return withAdmin(c, func(ctx context.Context, a adminSession) error {
		return deleteGroups(c, ctx, a.adm, groups, a.out)
	})
}

func deleteGroups(c *cli.Context, ctx context.Context, adm *kadm.Client, groups []string, out string) error {
	resps, err := adm.DeleteGroups(ctx, groups...)
	if err != nil && len(resps) == 0 {
		return failure("delete groups: %s", describeErr(err))
	}
	var results []deleteResult
	var failed []string
	for _, g := range groups {
		r, ok := resps[g]
		res := deleteResult{Group: g, Deleted: ok && r.Err == nil}
		switch {
		case !ok:
			res.Error = "no answer from the broker"
		case errors.Is(r.Err, kerr.GroupIDNotFound):
			res.Error = fmt.Sprintf("group %q does not exist", g)
		case errors.Is(r.Err, kerr.NonEmptyGroup):
			res.Error = fmt.Sprintf("group %q is not empty: stop its consumers first", g)
		case r.Err != nil:
			res.Error = fmt.Sprintf("group %q: %s", g, describeErr(r.Err))
		}
		if res.Error != "" {
			failed = append(failed, res.Error)
		}
		results = append(results, res)
	}
	w := c.App.Writer
	if out == outputJSON {
		if err := writeJSON(w, results); err != nil {
			return err
		}
	} else {
		for _, r := range results {
			if r.Deleted {
				fmt.Fprintf(w, "deleted group %q\n", r.Group)
			}
		}
	}
	if len(failed) > 0 {
		return failure("delete groups: %s", strings.Join(failed, "; "))
	}
	return nil
}

// ---- consume --group

// groupConsume is a consume run as a group member.
type groupConsume struct {
	topic, group string
	reset        string // consumer groups: earliest or latest
	maxRecords   int64  // -1: no limit
	format       recordWriter
	exitAtEnd    bool
}

// consumeGroup prints a topic's records as a member of a consumer group,
// committing the offset after each printed record once it is written out.
// With --exit-at-end it stops when every partition has reached the end
// offset it had at start, counting from the group's committed offsets;
// that assumes this member is assigned every partition.
func consumeGroup(c *cli.Context, gc groupConsume) error {
	_, adm, ctx, closeAdmin, err := connectAdmin(c)
	if err != nil {
		return err
	}
	_, err = topicMetadata(ctx, adm, gc.topic)
	done := map[int32]bool{}
	var ends map[int32]int64
	if err == nil && gc.exitAtEnd {
		ends, err = groupConsumeEnds(ctx, adm, gc, done)
	}
	closeAdmin()
	if err != nil {
		return err
	}
	if gc.exitAtEnd && len(done) == len(ends) {
		return nil
	}

	reset := kgo.NewOffset().AtStart()
	if gc.reset == "latest" {
		reset = kgo.NewOffset().AtEnd()
	}
	consumer, _, err := connect(c,
		kgo.ConsumerGroup(gc.group),
		kgo.ConsumeTopics(gc.topic),
		kgo.ConsumeResetOffset(reset),
		kgo.DisableAutoCommit(),
		kgo.FetchMaxWait(500*time.Millisecond),
	)
	if err != nil {
		return err
	}
	defer consumer.Close() // leaves the group

	var printed int64
	return printPolls(c, consumer, &printed, func(w *bufio.Writer, fetches kgo.Fetches) (bool, error) {
		var toCommit []*kgo.Record
		stopNow := false
		fetches.EachRecord(func(r *kgo.Record) {
			if stopNow || done[r.Partition] {
				return
			}
			if gc.exitAtEnd && r.Offset >= ends[r.Partition] {
				done[r.Partition] = true
				return
			}
			gc.format.write(w, r)
			toCommit = append(toCommit, r)
			printed++
			if gc.exitAtEnd && r.Offset+1 >= ends[r.Partition] {
				done[r.Partition] = true
			}
			if gc.maxRecords > 0 && printed >= gc.maxRecords {
				stopNow = true
			}
		})
		if err := w.Flush(); err != nil {
			return true, failure("writing output: %v", err)
		}
		if len(toCommit) > 0 {
			cctx, ccancel := context.WithTimeout(c.Context, adminTimeout)
			err := consumer.CommitRecords(cctx, toCommit...)
			ccancel()
			if err != nil {
				return true, failure("consume %q: committing offsets of group %q: %s", gc.topic, gc.group, describeErr(err))
			}
		}
		if stopNow || (gc.exitAtEnd && len(done) == len(ends)) {
			return true, nil
		}
		return false, nil
	})
}

// groupConsumeEnds returns the end offsets of the topic's partitions and
// marks in done those where the group has nothing left to read.
func groupConsumeEnds(ctx context.Context, adm *kadm.Client, gc groupConsume, done map[int32]bool) (map[int32]int64, error) {
	bs, err := topicBounds(ctx, adm, gc.topic)
	if err != nil {
		return nil, failure("consume %q: %v", gc.topic, err)
	}
	committed, err := adm.FetchOffsetsForTopics(ctx, gc.group, gc.topic)
	if err != nil {
		return nil, failure("consume %q: fetching committed offsets of group %q: %s", gc.topic, gc.group, describeErr(err))
	}
	b := bs[gc.topic]
	for p, end := range b.end {
		start := b.start[p]
		if gc.reset == "latest" {
			start = end
		}
		if o, ok := committed.Lookup(gc.topic, p); ok && o.Err == nil && o.At >= 0 {
			start = o.At
		}
		if start >= end {
			done[p] = true
		}
	}
	return b.end, nil
}
