package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/urfave/cli/v2"
)

// shoal cluster remove-broker: retire a broker the way Kafka's operators
// do it by hand (reassign its replicas away, stop it, kafka-cluster.sh
// unregister), in one command. A broker that still runs registers again
// after it is unregistered, so the command waits for it to stop before
// unregistering it.

func clusterRemoveBrokerCommand() *cli.Command {
	return leaf(&cli.Command{
		Name:  "remove-broker",
		Usage: "move every replica off a broker, wait for it to stop, then unregister it",
		UsageText: `shoal cluster remove-broker ID [--timeout 30m] [--if-registered]

Moves each replica on broker ID to the remaining broker holding the fewest
replicas, waiting until every move has completed (progress is shown on a
terminal), then waits until broker ID has stopped (stop its process once it
says so), and unregisters it: DescribeCluster no longer lists it.

examples:
  shoal cluster remove-broker 3
  shoal --output json cluster remove-broker 3 --timeout 10m`,
		Flags: []cli.Flag{
			&cli.DurationFlag{Name: "timeout", Value: 30 * time.Minute, Usage: "how long to wait for the moves and for the broker to stop"},
			&cli.BoolFlag{Name: "if-registered", Usage: "succeed without change if the broker is not registered (already removed)"},
		},
		Action: clusterRemoveBroker,
	})
}

// registeredBrokers describes the cluster's brokers, fenced ones included:
// id -> fenced.
func registeredBrokers(ctx context.Context, cl *kgo.Client) (map[int32]bool, error) {
	resp, err := describeCluster(ctx, cl)
	if err != nil {
		return nil, err
	}
	out := map[int32]bool{}
	for _, b := range resp.Brokers {
		out[b.NodeID] = b.IsFenced
	}
	return out, nil
}

func clusterRemoveBroker(c *cli.Context) error {
	arg, err := oneArg(c, "broker id")
	if err != nil {
		return err
	}
	id64, err := strconv.ParseInt(arg, 10, 32)
	if err != nil || id64 < 0 {
		return usageError("cluster remove-broker: %q is not a broker id", arg)
	}
	id := int32(id64)
	return withAdminTimeout(c, c.Duration("timeout"), func(ctx context.Context, a adminSession) error {
		w, errw := c.App.Writer, c.App.ErrWriter

		brokers, err := registeredBrokers(ctx, a.cl)
		if err != nil {
			return err
		}
		if _, ok := brokers[id]; !ok {
			if !c.Bool("if-registered") {
				return failure("cluster remove-broker: broker %d is not registered", id)
			}
			if a.out == outputJSON {
				return writeRemoveBroker(w, id, nil, false)
			}
			fmt.Fprintf(w, "broker %d is not registered; nothing to do\n", id)
			return nil
		}
		var targets []int32
		for b, fenced := range brokers {
			if b != id && !fenced {
				targets = append(targets, b)
			}
		}
		parts, err := currentAssignment(ctx, a.adm)
		if err != nil {
			return err
		}
		plan, err := removalPlan(parts, targets, id)
		if err != nil {
			return failure("cluster remove-broker: %v", err)
		}
		var outs []reassignOutcome
		if len(plan.Partitions) > 0 {
			if a.out != outputJSON {
				fmt.Fprintf(w, "moving %d replicas off broker %d\n", len(plan.Partitions), id)
			}
			outs, err = executePlan(ctx, w, a.cl, a.adm, plan, true)
			if err != nil {
				return err
			}
			if n := failedOutcomes(outs); n > 0 {
				if a.out != outputJSON {
					printOutcomes(w, outs, "moved")
				}
				return failure("cluster remove-broker: %d of %d replica moves failed; broker %d stays registered", n, len(outs), id)
			}
		}
		if err := waitStopped(ctx, a.cl, errw, id); err != nil {
			return err
		}
		if err := unregisterBroker(ctx, a.cl, id); err != nil {
			return err
		}
		if a.out == outputJSON {
			return writeRemoveBroker(w, id, outs, true)
		}
		if len(outs) > 0 {
			if err := printOutcomes(w, outs, "moved"); err != nil {
				return err
			}
		}
		fmt.Fprintf(w, "broker %d unregistered\n", id)
		return nil
	})
}

// unregisterBroker sends UnregisterBroker, retrying while the answer is
// retriable (the stopped broker may have been the active controller, and
// a new one is being elected).
func unregisterBroker(ctx context.Context, cl *kgo.Client, id int32) error {
	return retryUnregister(ctx, id, func(ctx context.Context) (*kmsg.UnregisterBrokerResponse, error) {
		req := kmsg.NewPtrUnregisterBrokerRequest()
		req.BrokerID = id
		return req.RequestWith(ctx, cl)
	})
}

// retryUnregister is unregisterBroker's loop around send. An attempt that
// failed retriably may still have taken effect: a controller that loses its
// leadership while proposing the removal answers NOT_CONTROLLER, and the
// next leader commits the entry anyway. The retry then finds the broker
// gone; BROKER_ID_NOT_REGISTERED is the state the command asked for, so it
// counts as done (the caller saw the broker registered before the first
// attempt).
func retryUnregister(ctx context.Context, id int32, send func(context.Context) (*kmsg.UnregisterBrokerResponse, error)) error {
	for {
		resp, err := send(ctx)
		if err == nil {
			err = kerr.ErrorForCode(resp.ErrorCode)
			if err == nil || errors.Is(err, kerr.BrokerIDNotRegistered) {
				return nil
			}
			if !kerr.IsRetriable(err) {
				return failure("unregister broker %d: %s", id, describeErrMsg(err, deref(resp.ErrorMessage)))
			}
		}
		if !nextPoll(ctx) {
			return failure("unregister broker %d: %s", id, describeErr(err))
		}
	}
}

// writeRemoveBroker is remove-broker's --output json answer.
func writeRemoveBroker(w io.Writer, id int32, moved []reassignOutcome, unregistered bool) error {
	if moved == nil {
		moved = []reassignOutcome{}
	}
	return writeJSON(w, struct {
		Broker       int32             `json:"broker"`
		Moved        []reassignOutcome `json:"moved"`
		Unregistered bool              `json:"unregistered"`
	}{id, moved, unregistered})
}

// waitStopped waits until broker id is fenced (stopped: its heartbeats
// ended) or gone, telling the operator once on errw to stop it.
func waitStopped(ctx context.Context, cl *kgo.Client, errw io.Writer, id int32) error {
	told := false
	for {
		brokers, err := registeredBrokers(ctx, cl)
		if err == nil {
			if fenced, ok := brokers[id]; !ok || fenced {
				return nil
			}
			if !told {
				fmt.Fprintf(errw, "broker %d holds no replicas now; waiting for it to stop (stop its process to finish)\n", id)
				told = true
			}
		}
		if !nextPoll(ctx) {
			return failure("cluster remove-broker: broker %d did not stop in time; it stays registered", id)
		}
	}
}
