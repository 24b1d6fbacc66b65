package main

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

// The log_dirs of a reassignment plan: after the reassignments start,
// --execute sends AlterReplicaLogDirs to each broker a plan's replica names
// a directory for, as kafka-reassign-partitions.sh does. A replica that the
// reassignment has not created yet answers REPLICA_NOT_AVAILABLE, so that
// answer is retried until the replica exists (or --timeout).

// dirMove is one replica the plan puts in a named log dir.
type dirMove struct {
	broker    int32
	dir       string
	topic     string
	partition int32
}

// planDirMoves lists the replicas of parts whose log_dirs entry is not
// "any", ordered by broker, dir, topic and partition.
func planDirMoves(parts []planPartitions) []dirMove {
	var out []dirMove
	for _, p := range parts {
		for i, d := range p.LogDirs {
			if d != "any" {
				out = append(out, dirMove{broker: p.Replicas[i], dir: d, topic: p.Topic, partition: p.Partition})
			}
		}
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.broker != b.broker {
			return a.broker < b.broker
		}
		if a.dir != b.dir {
			return a.dir < b.dir
		}
		if a.topic != b.topic {
			return a.topic < b.topic
		}
		return a.partition < b.partition
	})
	return out
}

// sendDirMoves sends the moves, each to its broker, and returns the error
// of each one that failed: a Kafka error, or the broker's silence. Moves
// answered REPLICA_NOT_AVAILABLE are sent again every reassignPoll until
// ctx ends.
func sendDirMoves(ctx context.Context, adm *kadm.Client, moves []dirMove) map[dirMove]error {
	failed := map[dirMove]error{}
	pending := moves
	for len(pending) > 0 {
		byBroker := map[int32]kadm.AlterReplicaLogDirsReq{}
		for _, m := range pending {
			req := byBroker[m.broker]
			set := kadm.TopicsSet{}
			set.Add(m.topic, m.partition)
			req.Add(m.dir, set)
			byBroker[m.broker] = req
		}
		var retry []dirMove
		for _, m := range pending {
			failed[m] = nil
		}
		for broker, req := range byBroker {
			resps, err := adm.AlterBrokerReplicaLogDirs(ctx, broker, req)
			for _, m := range pending {
				if m.broker != broker {
					continue
				}
				r, ok := resps[m.topic][m.partition]
				switch {
				case err != nil:
					failed[m] = err
				case !ok:
					failed[m] = errors.New("no answer from the broker")
				case errors.Is(r.Err, kerr.ReplicaNotAvailable):
					failed[m] = r.Err
					retry = append(retry, m)
				default:
					failed[m] = r.Err
				}
			}
		}
		if len(retry) == 0 {
			break
		}
		if !nextPoll(ctx) {
			retry = nil
		}
		pending = retry
	}
	for m, err := range failed {
		if err == nil {
			delete(failed, m)
		}
	}
	return failed
}

// executeDirMoves sends the log_dirs moves of the started partitions of
// plan (outs in plan order) and, with wait, waits until every one is done.
// A failed move marks its partition's outcome failed.
func executeDirMoves(ctx context.Context, adm *kadm.Client, plan reassignPlan, outs []reassignOutcome, wait bool) error {
	var started []planPartitions
	at := map[topicPartition]int{}
	for i, o := range outs {
		if o.Error == "" {
			started = append(started, plan.Partitions[i])
			at[topicPartition{o.Topic, o.Partition}] = i
		}
	}
	moves := planDirMoves(started)
	failed := sendDirMoves(ctx, adm, moves)
	type target struct {
		broker     int32
		dir, topic string
	}
	waiting := map[target][]int32{}
	for _, m := range moves {
		if err, bad := failed[m]; bad {
			o := &outs[at[topicPartition{m.topic, m.partition}]]
			var ke *kerr.Error
			if errors.As(err, &ke) {
				o.Error = ke.Message
			} else {
				o.Error = err.Error()
			}
			o.Message = fmt.Sprintf("moving the replica on broker %d to %s", m.broker, m.dir)
			continue
		}
		tg := target{m.broker, m.dir, m.topic}
		waiting[tg] = append(waiting[tg], m.partition)
	}
	if !wait {
		return nil
	}
	for tg, parts := range waiting {
		if err := waitMovedDir(ctx, adm, tg.broker, tg.dir, tg.topic, parts); err != nil {
			return err
		}
	}
	return nil
}
