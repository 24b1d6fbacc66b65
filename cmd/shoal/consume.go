package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/urfave/cli/v2"
)

func consumeCommand() *cli.Command {
	return leaf(&cli.Command{
		Name:  "consume",
		Usage: "print a topic's records",
		UsageText: `shoal consume TOPIC [--from earliest|latest|OFFSET|-N|@TIMESTAMP|-DURATION] [--partition N ...]
              [--max-records N] [--exit-at-end] [--format STRING | --output json [--encoding E]]
shoal consume TOPIC --group GROUP [--from earliest|latest] [--max-records N] [--exit-at-end]
shoal consume TOPIC --share-group GROUP [--max-records N]

--from (default earliest), per partition:
  earliest       the log start offset
  latest         the end of the log: only records produced from now on
  OFFSET         that offset, e.g. 1500
  -N             N records before the end, e.g. -10
  @TIMESTAMP     the first record with a timestamp at or after it: Unix
                 milliseconds (@1700000000000) or RFC 3339 (@2024-05-01T12:00:00Z)
  -DURATION      the same, that long ago: -90s, -15m, -1h, -2d

--output json prints one JSON object per record instead: topic, partition,
offset, timestamp (ms), key, value and headers, with bytes as --encoding
says (utf8, base64 or hex).

--format (default "%s\n"): %t topic, %p partition, %o offset, %k key,
%s value, %T timestamp (ms), %h headers (k=v,k=v), %K key length (-1 for
null), %S value length, %% a percent sign, \n newline, \t tab, \\ backslash.

Without --max-records or --exit-at-end it follows the topic until interrupted
(Ctrl-C), then says on stderr how many records it printed. --max-records N
waits until N records arrive.

--group GROUP joins a consumer group: the broker assigns partitions, each
starts at the group's committed offset (or at --from earliest|latest when
there is none), and the offset after every printed record is committed.

--share-group GROUP joins a share group (a queue): records are delivered to
one member at a time and each printed record is acknowledged (ACCEPT);
records received but not printed (past --max-records) are released for
redelivery. Where a share group starts is its share.auto.offset.reset
config (default latest; see 'shoal share config').

examples:
  shoal consume orders --from earliest --exit-at-end
  shoal consume orders --from -1h --format '%p/%o %T %k=%s\n'
  shoal consume orders --partition 0 --from 100 --max-records 10
  shoal consume orders --group billing --max-records 100
  shoal consume jobs --share-group workers --max-records 10`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "from", Aliases: []string{"o"}, Value: "earliest", Usage: "where to start in each partition (see above)"},
			&cli.StringSliceFlag{Name: "partition", Aliases: []string{"p"}, Usage: "consume only partition N (repeatable, or comma separated; default all)"},
			&cli.StringFlag{Name: "max-records", Aliases: []string{"n"}, Usage: "stop after printing N records"},
			&cli.StringFlag{Name: "format", Aliases: []string{"F"}, Value: `%s\n`, Usage: "how to print each record (see above)"},
			&cli.BoolFlag{Name: "exit-at-end", Aliases: []string{"e"}, Usage: "stop at the high watermarks seen at start"},
			&cli.StringFlag{Name: "group", Aliases: []string{"g"}, Usage: "consume as a member of this consumer group, committing offsets"},
			&cli.StringFlag{Name: "encoding", Value: encodingUTF8, Usage: "with --output json: how keys, values and header values are written: utf8, base64 or hex"},
			&cli.StringFlag{Name: "share-group", Usage: "consume as a member of this share group, acknowledging each record"},
		},
		Action: consume,
	})
}

// startPosition is a parsed --from.
type startPosition struct {
	kind   string // earliest, latest, offset, relative, time
	offset int64  // offset: the offset; relative: records before the end
	millis int64  // time: the timestamp
}

func parseFrom(s string, now time.Time) (startPosition, error) {
	s = strings.TrimSpace(s)
	switch strings.ToLower(s) {
	case "earliest", "beginning", "start", "oldest":
		return startPosition{kind: "earliest"}, nil
	case "latest", "end", "newest":
		return startPosition{kind: "latest"}, nil
	case "":
		return startPosition{}, usageError("--from: empty")
	}
	if strings.HasPrefix(s, "@") {
		v := s[1:]
		if ms, err := strconv.ParseInt(v, 10, 64); err == nil && ms >= 0 {
			return startPosition{kind: "time", millis: ms}, nil
		}
		if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
			return startPosition{kind: "time", millis: t.UnixMilli()}, nil
		}
		return startPosition{}, usageError("--from: %q is not @MILLISECONDS or @RFC3339 time", s)
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		if n >= 0 {
			return startPosition{kind: "offset", offset: n}, nil
		}
		return startPosition{kind: "relative", offset: -n}, nil
	}
	if strings.HasPrefix(s, "-") {
		d, err := parseAgo(s[1:])
		if err != nil {
			return startPosition{}, usageError("--from: %q: %v", s, err)
		}
		return startPosition{kind: "time", millis: now.Add(-d).UnixMilli()}, nil
	}
	return startPosition{}, usageError("--from: %q is not earliest, latest, an offset, -N, @TIMESTAMP or -DURATION", s)
}

// parseAgo parses a Go duration, plus whole days ("2d").
func parseAgo(s string) (time.Duration, error) {
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.ParseInt(days, 10, 64)
		if err != nil || n <= 0 {
			return 0, fmt.Errorf("not a duration like 90s, 15m, 1h or 2d")
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("not a duration like 90s, 15m, 1h or 2d")
	}
	return d, nil
}

// parsePartitions parses repeated or comma-separated --partition values.
func parsePartitions(vals []string) ([]int32, error) {
	seen := map[int32]bool{}
	var out []int32
	for _, v := range vals {
		for _, s := range strings.Split(v, ",") {
			s = strings.TrimSpace(s)
			n, err := strconv.ParseInt(s, 10, 32)
			if err != nil || n < 0 {
				return nil, usageError("--partition: %q is not a partition number", s)
			}
			if !seen[int32(n)] {
				seen[int32(n)] = true
				out = append(out, int32(n))
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out, nil
}

func consume(c *cli.Context) error {
	topic, err := oneArg(c, "topic name")
	if err != nil {
		return err
	}
	from, err := parseFrom(c.String("from"), time.Now())
	if err != nil {
		return err
	}
	wantParts, err := parsePartitions(c.StringSlice("partition"))
	if err != nil {
		return err
	}
	maxRecords := int64(-1)
	if c.IsSet("max-records") {
		if maxRecords, err = intFlagValue(c, "max-records", 1, 1<<62); err != nil {
			return err
		}
	}
	format, err := recordWriterFor(c)
	if err != nil {
		return err
	}
	exitAtEnd := c.Bool("exit-at-end")

	if c.IsSet("group") || c.IsSet("share-group") {
		gc := groupConsume{topic: topic, maxRecords: maxRecords, format: format, exitAtEnd: exitAtEnd}
		switch {
		case c.IsSet("group") && c.IsSet("share-group"):
			return usageError("consume: give --group or --share-group, not both")
		case len(wantParts) > 0:
			return usageError("consume: --partition cannot be used with a group (the group assigns partitions)")
		case c.IsSet("group"):
			if gc.group = c.String("group"); gc.group == "" {
				return usageError("consume: --group: empty group name")
			}
			if c.IsSet("from") && from.kind != "earliest" && from.kind != "latest" {
				return usageError("consume: with --group, --from is where to start without a committed offset: earliest or latest")
			}
			gc.reset = from.kind
			return consumeGroup(c, gc)
		default:
			if gc.group = c.String("share-group"); gc.group == "" {
				return usageError("consume: --share-group: empty group name")
			}
			if c.IsSet("from") {
				return usageError("consume: --from cannot be used with --share-group (set the group's share.auto.offset.reset with 'shoal share config')")
			}
			if exitAtEnd {
				return usageError("consume: --exit-at-end cannot be used with --share-group (a share group has no end to reach); use --max-records")
			}
			return consumeShare(c, gc)
		}
	}

	// Resolve the assignment with an admin client: which partitions, from
	// which offsets, and (with --exit-at-end) up to which offsets. With a
	// group (above) the broker assigns partitions instead.
	_, adm, ctx, closeAdmin, err := connectAdmin(c)
	if err != nil {
		return err
	}
	plan, err := planConsume(ctx, adm, topic, wantParts, from)
	closeAdmin()
	if err != nil {
		return err
	}

	done := map[int32]bool{}
	offsets := map[int32]kgo.Offset{}
	for _, p := range plan.partitions {
		if exitAtEnd && plan.start[p] >= plan.end[p] {
			done[p] = true
			continue
		}
		offsets[p] = kgo.NewOffset().At(plan.start[p])
	}
	if len(offsets) == 0 {
		return nil
	}

	consumer, _, err := connect(c,
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: offsets}),
		kgo.FetchMaxWait(500*time.Millisecond),
		kgo.KeepControlRecords(),
	)
	if err != nil {
		return err
	}
	defer consumer.Close()

	var printed int64
	return printPolls(c, consumer, &printed, func(w *bufio.Writer, fetches kgo.Fetches) (bool, error) {
		stopNow := false
		fetches.EachPartition(func(fp kgo.FetchTopicPartition) {
			if stopNow || done[fp.Partition] {
				return
			}
			for _, r := range fp.Records {
				if exitAtEnd && r.Offset >= plan.end[fp.Partition] {
					done[fp.Partition] = true
					break
				}
				if !r.Attrs.IsControl() {
					format.write(w, r)
					printed++
					if maxRecords > 0 && printed >= maxRecords {
						stopNow = true
						return
					}
				}
				if exitAtEnd && r.Offset+1 >= plan.end[fp.Partition] {
					done[fp.Partition] = true
					break
				}
			}
		})
		if err := w.Flush(); err != nil {
			return true, failure("writing output: %v", err)
		}
		if stopNow {
			return true, nil
		}
		if exitAtEnd && len(done) == len(plan.partitions) {
			return true, nil
		}
		if exitAtEnd {
			var paused []int32
			for p := range done {
				paused = append(paused, p)
			}
			consumer.PauseFetchPartitions(map[string][]int32{topic: paused})
		}
		return false, nil
	})
}

// consumePlan is the resolved assignment of a consume run.
type consumePlan struct {
	partitions []int32
	start      map[int32]int64 // first offset to read
	end        map[int32]int64 // high watermark when the run started
}

func planConsume(ctx context.Context, adm *kadm.Client, topic string, want []int32, from startPosition) (consumePlan, error) {
	td, err := topicMetadata(ctx, adm, topic)
	if err != nil {
		return consumePlan{}, err
	}
	plan := consumePlan{start: map[int32]int64{}, end: map[int32]int64{}}
	if len(want) == 0 {
		for _, p := range td.Partitions.Sorted() {
			plan.partitions = append(plan.partitions, p.Partition)
		}
	} else {
		for _, p := range want {
			if _, ok := td.Partitions[p]; !ok {
				return consumePlan{}, failure("consume: topic %q has no partition %d (it has %d)", topic, p, len(td.Partitions))
			}
		}
		plan.partitions = want
	}
	starts, ends, err := listStartsEnds(ctx, adm, topic)
	if err != nil {
		return consumePlan{}, failure("consume %q: %s", topic, err)
	}
	var byTime kadm.ListedOffsets
	if from.kind == "time" {
		byTime, err = adm.ListOffsetsAfterMilli(ctx, from.millis, topic)
		if err != nil {
			return consumePlan{}, failure("consume %q: listing offsets by timestamp: %s", topic, describeErr(err))
		}
	}
	lookup := func(lo kadm.ListedOffsets, p int32, what string) (int64, error) {
		o, ok := lo.Lookup(topic, p)
		if !ok {
			return 0, failure("consume %q: no %s offset for partition %d", topic, what, p)
		}
		if o.Err != nil {
			return 0, failure("consume %q partition %d: %s offset: %s", topic, p, what, describeErr(o.Err))
		}
		return o.Offset, nil
	}
	for _, p := range plan.partitions {
		lso, err := lookup(starts, p, "start")
		if err != nil {
			return consumePlan{}, err
		}
		hw, err := lookup(ends, p, "end")
		if err != nil {
			return consumePlan{}, err
		}
		plan.end[p] = hw
		var s int64
		switch from.kind {
		case "earliest":
			s = lso
		case "latest":
			s = hw
		case "offset":
			s = from.offset
		case "relative":
			s = max(hw-from.offset, lso)
		case "time":
			o, err := lookup(byTime, p, "timestamp")
			if err != nil {
				return consumePlan{}, err
			}
			// No record at or after the timestamp: start at the end.
			if o < 0 {
				o = hw
			}
			s = o
		}
		plan.start[p] = s
	}
	return plan, nil
}

// recordFormat is a compiled --format string.
type recordFormat []formatPart

type formatPart struct {
	lit  string
	verb byte // 0 for a literal
}

func compileFormat(s string) (recordFormat, error) {
	var f recordFormat
	directives := 0
	var lit strings.Builder
	flushLit := func() {
		if lit.Len() > 0 {
			f = append(f, formatPart{lit: lit.String()})
			lit.Reset()
		}
	}
	for i := 0; i < len(s); i++ {
		ch := s[i]
		switch ch {
		case '\\':
			if i+1 >= len(s) {
				lit.WriteByte('\\')
				continue
			}
			i++
			switch s[i] {
			case 'n':
				lit.WriteByte('\n')
			case 't':
				lit.WriteByte('\t')
			case 'r':
				lit.WriteByte('\r')
			case '0':
				lit.WriteByte(0)
			case '\\':
				lit.WriteByte('\\')
			default:
				lit.WriteByte('\\')
				lit.WriteByte(s[i])
			}
		case '%':
			if i+1 >= len(s) {
				return nil, usageError("--format: %q ends with a lone %%", s)
			}
			i++
			switch v := s[i]; v {
			case '%':
				lit.WriteByte('%')
			case 't', 'p', 'o', 'k', 's', 'T', 'h', 'K', 'S':
				flushLit()
				f = append(f, formatPart{verb: v})
				directives++
			default:
				return nil, usageError("--format: unknown directive %%%c (known: %%t %%p %%o %%k %%s %%T %%h %%K %%S %%%%)", v)
			}
		default:
			lit.WriteByte(ch)
		}
	}
	flushLit()
	if directives == 0 {
		// "--format json" is someone asking for a format by name, not a
		// template that prints the same text for every record.
		return nil, usageError("--format: %q prints no record field (use %%s for the value, %%k the key, ...; JSON is --output json)", s)
	}
	return f, nil
}

func (f recordFormat) write(w io.Writer, r *kgo.Record) {
	var num [24]byte
	for _, part := range f {
		switch part.verb {
		case 0:
			io.WriteString(w, part.lit)
		case 't':
			io.WriteString(w, r.Topic)
		case 'p':
			w.Write(strconv.AppendInt(num[:0], int64(r.Partition), 10))
		case 'o':
			w.Write(strconv.AppendInt(num[:0], r.Offset, 10))
		case 'k':
			w.Write(r.Key)
		case 's':
			w.Write(r.Value)
		case 'T':
			w.Write(strconv.AppendInt(num[:0], r.Timestamp.UnixMilli(), 10))
		case 'h':
			for i, h := range r.Headers {
				if i > 0 {
					io.WriteString(w, ",")
				}
				io.WriteString(w, h.Key)
				io.WriteString(w, "=")
				w.Write(h.Value)
			}
		case 'K':
			n := int64(len(r.Key))
			if r.Key == nil {
				n = -1
			}
			w.Write(strconv.AppendInt(num[:0], n, 10))
		case 'S':
			n := int64(len(r.Value))
			if r.Value == nil {
				n = -1
			}
			w.Write(strconv.AppendInt(num[:0], n, 10))
		}
	}
}

// pollErrors turns a poll's errors into one failure; data-loss notices
// are warnings and a closed client is not an error.
func pollErrors(c *cli.Context, w *bufio.Writer, fetches kgo.Fetches) error {
	var fatal error
	fetches.EachError(func(t string, p int32, err error) {
		var dl *kgo.ErrDataLoss
		switch {
		case errors.Is(err, context.Canceled), errors.Is(err, kgo.ErrClientClosed):
		case errors.As(err, &dl):
			w.Flush()
			fmt.Fprintf(c.App.ErrWriter, "warning: partition %d: %v\n", p, err)
		default:
			if fatal == nil {
				fatal = failure("consume %q partition %d: %s", t, p, describeErr(err))
			}
		}
	})
	return fatal
}
