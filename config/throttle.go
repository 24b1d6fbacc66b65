package config

import (
	"fmt"
	"strconv"
	"strings"
)

// Replication throttles (KIP-73): a topic lists the replicas whose
// replication traffic is throttled, as partition:broker pairs or "*" for
// all of them. Each broker only cares about the pairs that name it: the
// leader config names the brokers that throttle as leaders, the follower
// config the brokers that throttle as followers.

// throttledReplicas checks a leader/follower.replication.throttled.replicas
// value with Kafka's rule: the literal "*", or a list whose every entry is
// partition:broker (an empty entry is allowed, as Kafka allows it).
func throttledReplicas(v string) error {
	if strings.TrimSpace(v) == "*" {
		return nil
	}
	for _, e := range strings.Split(v, ",") {
		e = strings.TrimSpace(e)
		if e == "" {
			continue
		}
		part, broker, ok := strings.Cut(e, ":")
		if !ok || !isDigits(part) || !isDigits(broker) {
			return fmt.Errorf("must be the literal '*' or a list of replicas in the following format: [partitionId]:[brokerId],[partitionId]:[brokerId],...")
		}
	}
	return nil
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// ReplicaThrottled reports whether a throttled-replicas value (validated)
// names partition on broker: "*" names every partition on every broker.
func ReplicaThrottled(value string, partition, broker int32) bool {
	value = strings.TrimSpace(value)
	if value == "" {
		return false
	}
	if value == "*" {
		return true
	}
	for _, e := range strings.Split(value, ",") {
		part, b, ok := strings.Cut(strings.TrimSpace(e), ":")
		if !ok {
			continue
		}
		pn, err1 := strconv.ParseInt(part, 10, 32)
		bn, err2 := strconv.ParseInt(b, 10, 32)
		if err1 == nil && err2 == nil && int32(pn) == partition && int32(bn) == broker {
			return true
		}
	}
	return false
}

// ThrottledReplicas formats partition:broker pairs as a throttled-replicas
// value, in the order given.
func ThrottledReplicas(pairs [][2]int32) string {
	out := make([]string, len(pairs))
	for i, p := range pairs {
		out[i] = fmt.Sprintf("%d:%d", p[0], p[1])
	}
	return strings.Join(out, ",")
}
