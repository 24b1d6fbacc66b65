package main

import (
	"context"
	"fmt"
	"strconv"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/urfave/cli/v2"
)

func txnCommand() *cli.Command {
	return commandGroup("txn", "list, describe and abort transactions",
		`shoal txn list
shoal txn describe payments-tx
shoal txn abort --topic orders --partition 0 --start-offset 1200`,
		txnListCommand(),
		txnDescribeCommand(),
		txnAbortCommand(),
	)
}

type listedTxn struct {
	TransactionalID string `json:"transactional_id"`
	ProducerID      int64  `json:"producer_id"`
	State           string `json:"state"`
	Coordinator     int32  `json:"coordinator"`
}

func txnListCommand() *cli.Command {
	return leaf(&cli.Command{
		Name:      "list",
		Aliases:   []string{"ls"},
		Usage:     "list the transactional ids of every transaction coordinator",
		UsageText: "shoal txn list [--state Ongoing]...\n\nexample: shoal --output json txn list --state Ongoing",
		Flags:     []cli.Flag{listFlag("state", nil, "only transactions in this state (Empty, Ongoing, PrepareCommit, PrepareAbort, CompleteCommit, CompleteAbort); repeatable")},
		Action: func(c *cli.Context) error {
			if err := noArgs(c); err != nil {
				return err
			}
			return withAdmin(c, func(ctx context.Context, a adminSession) error {
				listed, err := a.adm.ListTransactions(ctx, nil, listFlagValues(c, "state"))
				if err != nil && len(listed) == 0 {
					return failure("list transactions: %s", describeErr(err))
				}
				rows := []listedTxn{}
				for _, l := range listed.Sorted() {
					rows = append(rows, listedTxn{TransactionalID: l.TxnID, ProducerID: l.ProducerID, State: l.State, Coordinator: l.Coordinator})
				}
				return printRows(c.App.Writer, a.out, rows, []string{"TRANSACTIONAL_ID", "PRODUCER_ID", "STATE", "COORDINATOR"},
					func(r listedTxn) []any { return []any{r.TransactionalID, r.ProducerID, r.State, r.Coordinator} })
			})
		},
	})
}

type describedTxn struct {
	TransactionalID string            `json:"transactional_id"`
	State           string            `json:"state"`
	ProducerID      int64             `json:"producer_id"`
	ProducerEpoch   int16             `json:"producer_epoch"`
	TimeoutMs       int32             `json:"timeout_ms"`
	StartTimestamp  int64             `json:"start_timestamp"` // -1: no transaction in progress
	Coordinator     int32             `json:"coordinator"`
	Partitions      []topicPartitions `json:"partitions"`
}

func txnDescribeCommand() *cli.Command {
	return leaf(&cli.Command{
		Name:      "describe",
		Usage:     "show a transactional id's state, producer and partitions",
		UsageText: "shoal txn describe TRANSACTIONAL_ID\n\nexample: shoal txn describe payments-tx",
		Action: func(c *cli.Context) error {
			args, err := positionalArgs(c)
			if err != nil {
				return err
			}
			if len(args) != 1 || args[0] == "" {
				return usageError("%s: expected one transactional id (usage: %s)", cmdName(c), firstLine(c.Command.UsageText))
			}
			return withAdmin(c, func(ctx context.Context, a adminSession) error {
				described, err := a.adm.DescribeTransactions(ctx, args[0])
				if err != nil {
					return failure("describe transaction %s: %s", args[0], describeErr(err))
				}
				d := described[args[0]]
				if d.Err != nil {
					return failure("describe transaction %s: %s", args[0], describeErr(d.Err))
				}
				res := describedTxn{TransactionalID: d.TxnID, State: d.State, ProducerID: d.ProducerID, ProducerEpoch: d.ProducerEpoch,
					TimeoutMs: d.TimeoutMillis, StartTimestamp: d.StartTimestamp, Coordinator: d.Coordinator, Partitions: fromTopicsSet(d.Topics)}
				if a.out == outputJSON {
					return writeJSON(c.App.Writer, res)
				}
				t := newTable(c.App.Writer, "TRANSACTIONAL_ID", "STATE", "PRODUCER_ID", "EPOCH", "TIMEOUT_MS", "STARTED", "COORDINATOR", "PARTITIONS")
				t.row(res.TransactionalID, res.State, res.ProducerID, res.ProducerEpoch, res.TimeoutMs, dash(res.StartTimestamp), res.Coordinator, formatAssignment(res.Partitions))
				return t.flush()
			})
		},
	})
}

func txnAbortCommand() *cli.Command {
	return leaf(&cli.Command{
		Name:  "abort",
		Usage: "abort a hanging transaction in a partition",
		UsageText: `shoal txn abort --topic TOPIC --partition N --start-offset OFFSET

Aborts the open transaction that began at OFFSET in the partition (see the
producers of the partition with their transaction start offsets in the
output of a failed abort): an abort marker is written for its producer, as
kafka-transactions.sh --abort does. Use it only for a transaction its
coordinator no longer ends (a hanging transaction holding back the last
stable offset).

example: shoal txn abort --topic orders --partition 0 --start-offset 1200`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "topic", Required: true, Usage: "the partition's topic"},
			&cli.IntFlag{Name: "partition", Required: true, Usage: "the partition"},
			&cli.Int64Flag{Name: "start-offset", Required: true, Usage: "the first offset of the transaction to abort"},
		},
		Action: txnAbort,
	})
}

// abortedTxn is what txn abort reports.
type abortedTxn struct {
	Topic         string `json:"topic"`
	Partition     int32  `json:"partition"`
	ProducerID    int64  `json:"producer_id"`
	ProducerEpoch int16  `json:"producer_epoch"`
	StartOffset   int64  `json:"start_offset"`
}

func txnAbort(c *cli.Context) error {
	if err := noArgs(c); err != nil {
		return err
	}
	topic, partition, start := c.String("topic"), int32(c.Int("partition")), c.Int64("start-offset")
	return withAdmin(c, func(ctx context.Context, a adminSession) error {
		var set kadm.TopicsSet
		set.Add(topic, partition)
		described, err := a.adm.DescribeProducers(ctx, set)
		if err != nil {
			return failure("describe producers of %s/%d: %s", topic, partition, describeErr(err))
		}
		p, ok := described[topic].Partitions[partition]
		if !ok {
			return failure("describe producers of %s/%d: no answer for the partition", topic, partition)
		}
		if p.Err != nil {
			return failure("describe producers of %s/%d: %s", topic, partition, describeErr(p.Err))
		}
		var open []string
		for _, pr := range p.ActiveProducers.Sorted() {
			if pr.CurrentTxnStartOffset < 0 {
				continue
			}
			if pr.CurrentTxnStartOffset != start {
				open = append(open, fmt.Sprintf("producer %d from offset %d", pr.ProducerID, pr.CurrentTxnStartOffset))
				continue
			}
			marker := kadm.TxnMarkers{ProducerID: pr.ProducerID, ProducerEpoch: pr.ProducerEpoch, CoordinatorEpoch: pr.CoordinatorEpoch}
			marker.Topics.Add(topic, partition)
			resps, err := a.adm.WriteTxnMarkers(ctx, marker)
			if err != nil {
				return failure("write abort marker: %s", describeErr(err))
			}
			if r, ok := resps[pr.ProducerID].Topics[topic].Partitions[partition]; ok && r.Err != nil {
				return failure("write abort marker: %s", describeErr(r.Err))
			}
			if a.out == outputJSON {
				return writeJSON(c.App.Writer, abortedTxn{Topic: topic, Partition: partition, ProducerID: pr.ProducerID,
					ProducerEpoch: pr.ProducerEpoch, StartOffset: start})
			}
			fmt.Fprintf(c.App.Writer, "aborted the transaction of producer %d (epoch %d) from offset %d in %s/%d\n",
				pr.ProducerID, pr.ProducerEpoch, start, topic, partition)
			return nil
		}
		if len(open) == 0 {
			return failure("%s/%d has no open transaction", topic, partition)
		}
		return failure("no open transaction of %s/%d starts at offset %s; open: %v", topic, partition, strconv.FormatInt(start, 10), open)
	})
}
