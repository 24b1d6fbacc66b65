package main

// shoal share dlq: the dead letters of share groups (package redrive does
// the work; the console uses it too).

import (
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/urfave/cli/v2"

	"github.com/shoalmq/shoal/redrive"
)

// redriveTimeout bounds a whole redrive (a long one shows its progress).
const redriveTimeout = time.Hour

func shareDLQCommand() *cli.Command {
	return commandGroup("dlq", "inspect the dead letters of share groups and redrive them, once",
		`shoal share dlq list dlq.jobs
shoal share dlq show dlq.jobs 0 42
shoal share dlq redrive dlq.jobs --from 100 --to 199 --execute`,
		shareDLQListCommand(),
		shareDLQShowCommand(),
		shareDLQRedriveCommand(),
	)
}

// selectorFlags choose dead letters.
func selectorFlags() []cli.Flag {
	return []cli.Flag{
		&cli.IntSliceFlag{Name: "partition", Aliases: []string{"p"}, Usage: "only this partition of the dead-letter topic (repeatable)"},
		&cli.Int64Flag{Name: "from", Value: 0, Usage: "first offset of the dead-letter topic to consider"},
		&cli.Int64Flag{Name: "to", Value: -1, Usage: "last offset to consider, inclusive (-1: the end)"},
		&cli.StringSliceFlag{Name: "header", Usage: "only dead letters with this header, key=value (repeatable; __dlq.errors. may be left out, e.g. reason=rejected)"},
	}
}

func selectorOf(c *cli.Context) (redrive.Selector, error) {
	sel := redrive.Selector{From: c.Int64("from"), To: c.Int64("to")}
	for _, p := range c.IntSlice("partition") {
		sel.Partitions = append(sel.Partitions, int32(p))
	}
	h, err := redrive.ParseHeaderMatch(c.StringSlice("header"))
	if err != nil {
		return sel, usageError("--header: %v", err)
	}
	sel.Headers = h
	if sel.From < 0 || sel.To >= 0 && sel.To < sel.From {
		return sel, usageError("--from %d --to %d: not an offset range", sel.From, sel.To)
	}
	return sel, nil
}

// dlqStart checks the command line (nargs positional arguments, the
// dead-letter topic first) and connects, failing fast when no broker
// answers.
func dlqStart(c *cli.Context, nargs int) (args []string, out string, base []kgo.Opt, ctx context.Context, cancel func(), err error) {
	if args, err = positionalArgs(c); err != nil {
		return
	}
	if out, err = outputMode(c); err != nil {
		return
	}
	if len(args) != nargs {
		err = usageError("%s: want %d argument(s) (see 'shoal %s --help')", cmdName(c), nargs, cmdName(c))
		return
	}
	cl, _, err := connect(c)
	if err != nil {
		return
	}
	cl.Close()
	base, err = clientOpts(c)
	ctx, cancel = context.WithTimeout(c.Context, redriveTimeout)
	return
}

// dlqSelectStart is dlqStart for the commands that take one dead-letter
// topic and a selection of its dead letters (list, redrive). The selection
// flags are checked after connecting: a broker that does not answer is
// reported first.
func dlqSelectStart(c *cli.Context) (dlq string, sel redrive.Selector, out string, base []kgo.Opt, ctx context.Context, cancel func(), err error) {
	args, out, base, ctx, cancel, err := dlqStart(c, 1)
	if err != nil {
		return "", sel, out, base, ctx, cancel, err
	}
	if sel, err = selectorOf(c); err != nil {
		cancel()
		return "", sel, out, base, ctx, nil, err
	}
	return args[0], sel, out, base, ctx, cancel, nil
}

func shareDLQListCommand() *cli.Command {
	return leaf(&cli.Command{
		Name:  "list",
		Usage: "list the dead letters of a dead-letter topic",
		UsageText: `shoal share dlq list DLQ-TOPIC [--partition N] [--from OFFSET] [--to OFFSET] [--header key=value] [--limit N]

Each dead letter: its partition and offset on the dead-letter topic, where
it came from (source topic, partition and offset), the share group, its
delivery count and the reason it was given up on (rejected, delivery limit),
and where it was redriven to, if it was.

examples:
  shoal share dlq list dlq.jobs
  shoal share dlq list dlq.jobs --header reason=rejected --limit 20
  shoal --output json share dlq list dlq.jobs --from 100 --to 199`,
		Flags:  append(selectorFlags(), &cli.IntFlag{Name: "limit", Value: 1000, Usage: "show at most this many (0: all)"}),
		Action: shareDLQList,
	})
}

func shareDLQList(c *cli.Context) error {
	dlq, sel, out, base, ctx, cancel, err := dlqSelectStart(c)
	if err != nil {
		return err
	}
	defer cancel()
	limit := c.Int("limit")
	letters := []redrive.Letter{}
	errLimit := fmt.Errorf("limit reached")
	err = redrive.List(ctx, base, dlq, sel, func(l redrive.Letter) error {
		letters = append(letters, l)
		if limit > 0 && len(letters) >= limit {
			return errLimit
		}
		return nil
	})
	if err != nil && err != errLimit {
		return failure("listing dead letters of %s: %s", dlq, describeErr(err))
	}
	return printRows(c.App.Writer, out, letters, []string{"PARTITION", "OFFSET", "SOURCE", "GROUP", "DELIVERIES", "REASON", "REDRIVEN", "KEY"}, func(l redrive.Letter) []any {
		return []any{l.Partition, l.Offset, source(l), orDash(l.Group), l.DeliveryCount, orDash(l.Reason), orDash(l.Redriven), printable(l.Key)}
	})
}

// source renders where a dead letter came from: topic/partition@offset.
func source(l redrive.Letter) string {
	return l.SourceTopic + "/" + strconv.Itoa(int(l.SourcePartition)) + "@" + strconv.FormatInt(l.SourceOffset, 10)
}

func shareDLQShowCommand() *cli.Command {
	return leaf(&cli.Command{
		Name:  "show",
		Usage: "show one dead letter: its origin, reason, headers, key and value",
		UsageText: `shoal share dlq show DLQ-TOPIC PARTITION OFFSET

example: shoal share dlq show dlq.jobs 0 42`,
		Action: shareDLQShow,
	})
}

func shareDLQShow(c *cli.Context) error {
	args, out, base, ctx, cancel, err := dlqStart(c, 3)
	if err != nil {
		return err
	}
	defer cancel()
	dlq := args[0]
	p, err1 := strconv.ParseInt(args[1], 10, 32)
	o, err2 := strconv.ParseInt(args[2], 10, 64)
	if err1 != nil || err2 != nil || p < 0 || o < 0 {
		return usageError("%s: PARTITION and OFFSET must be non-negative numbers", cmdName(c))
	}
	var found *redrive.Letter
	err = redrive.List(ctx, base, dlq, redrive.Selector{Partitions: []int32{int32(p)}, From: o, To: o}, func(l redrive.Letter) error {
		found = &l
		return nil
	})
	if err != nil {
		return failure("reading %s partition %d offset %d: %s", dlq, p, o, describeErr(err))
	}
	if found == nil {
		return failure("%s partition %d has no dead letter at offset %d", dlq, p, o)
	}
	if out == outputJSON {
		return writeJSON(c.App.Writer, found)
	}
	l := found
	t := newTable(c.App.Writer)
	t.row("dead letter:", fmt.Sprintf("%s/%d@%d", dlq, l.Partition, l.Offset))
	t.row("timestamp:", l.Timestamp.UTC().Format(time.RFC3339Nano))
	t.row("source:", source(*l))
	t.row("group:", orDash(l.Group))
	t.row("deliveries:", l.DeliveryCount)
	t.row("reason:", orDash(l.Reason))
	t.row("redriven to:", orDash(l.Redriven))
	t.row("key:", printable(l.Key))
	t.row("value:", printable(l.Value))
	for _, h := range l.Headers {
		t.row("header:", h.Key+"="+printable([]byte(h.Value)))
	}
	return t.flush()
}

func shareDLQRedriveCommand() *cli.Command {
	return leaf(&cli.Command{
		Name:  "redrive",
		Usage: "produce selected dead letters again to their source topic (or another), each once ever",
		UsageText: `shoal share dlq redrive DLQ-TOPIC [--partition N] [--from OFFSET] [--to OFFSET] [--header key=value] [--to-topic TOPIC] [--execute]

Without --execute it only shows what it would do. A dead letter goes back
to its source topic and partition with its key, value and its own headers
(not the __dlq.errors.* ones), or to --to-topic, partitioned by key.

Each dead letter is redriven at most once, across reruns, concurrent runs
and crashes of this command: the records and a marker per dead letter (on
the compacted topic DLQ-TOPIC.redriven) are produced in one transaction, and
a dead letter with a marker is skipped ("already redriven"). Consumers of
the target topic see a redrive cut short by a crash only if they read
uncommitted records.

examples:
  shoal share dlq redrive dlq.jobs
  shoal share dlq redrive dlq.jobs --header reason=rejected --execute
  shoal share dlq redrive dlq.jobs --from 100 --to 199 --to-topic jobs-retry --execute
  shoal --output json share dlq redrive dlq.jobs --execute`,
		Flags: append(selectorFlags(),
			&cli.StringFlag{Name: "to-topic", Usage: "produce to this topic instead of each dead letter's source topic"},
			&cli.BoolFlag{Name: "execute", Usage: "redrive (without it: show what would be redriven)"},
		),
		Action: shareDLQRedrive,
	})
}

func shareDLQRedrive(c *cli.Context) error {
	dlq, sel, out, base, ctx, cancel, err := dlqSelectStart(c)
	if err != nil {
		return err
	}
	defer cancel()
	opt := redrive.Options{Selector: sel, To: c.String("to-topic"), DryRun: !c.Bool("execute")}
	// Progress goes to stderr, so that stdout stays the result (JSON
	// included).
	started := time.Now()
	opt.Progress = func(n int) {
		progress(c.App.ErrWriter, n, time.Since(started))
	}
	results, err := redrive.Redrive(ctx, base, dlq, opt)
	if results == nil {
		results = []redrive.Result{}
	}
	if werr := printRows(c.App.Writer, out, results, []string{"PARTITION", "OFFSET", "TO", "STATUS"}, func(r redrive.Result) []any {
		return []any{r.Partition, r.Offset, orDash(r.To), r.Status}
	}); werr != nil {
		return werr
	}
	if err != nil {
		return failure("redriving dead letters of %s: %s", dlq, describeErr(err))
	}
	return nil
}

// progress reports how far a redrive got, one line per transaction.
func progress(w io.Writer, handled int, elapsed time.Duration) {
	if w == nil {
		w = os.Stderr
	}
	fmt.Fprintf(w, "redrive: %d dead letters handled (%s)\n", handled, elapsed.Round(time.Millisecond))
}
