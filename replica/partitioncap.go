package replica

import "github.com/shoalmq/shoal/config"

// MaxBrokerPartitions is the cap the controller holds partition replicas
// per broker to: max.broker.partitions when set, otherwise what this
// process's open-file limit can serve (0: no cap).
//
// Each partition keeps its active segment's log, offset index and time
// index open, three descriptors, and a quarter of the limit is kept for
// connections, older segments and everything else the process opens. A
// create beyond that used to be acknowledged and then fail partition by
// partition for lack of descriptors; refusing it up front leaves nothing
// half-created. The controller applies its own limit to every broker: nodes
// of one cluster normally share their limits.
func MaxBrokerPartitions(cfg *config.Broker) int {
	if _, set := cfg.Set["max.broker.partitions"]; set {
		return int(cfg.Int("max.broker.partitions"))
	}
	return partitionsForFiles(openFileLimit())
}

// fdsPerPartition is what one partition with a single segment holds open.
const fdsPerPartition = 3

// partitionsForFiles is the partition cap an open-file limit allows; 0 (no
// cap) when the limit is unknown.
func partitionsForFiles(limit uint64) int {
	if limit == 0 {
		return 0
	}
	usable := limit - limit/4
	return int(max(usable/fdsPerPartition, 1))
}
