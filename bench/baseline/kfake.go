// Package baseline starts the in-process kfake cluster that shoal's
// whole-system benchmarks measure against. It lives apart from package bench
// so that only tests link kfake, not the shoal binary.
package baseline

import (
	"github.com/twmb/franz-go/pkg/kfake"
)

// StartKfake starts an in-process kfake cluster of one broker, whose topics
// default to the given number of partitions, as a baseline to compare a real
// broker against. It panics if the cluster cannot start (it only listens on
// a loopback port). stop shuts it down.
func StartKfake(partitions int) (addrs []string, stop func()) {
	if partitions <= 0 {
		partitions = 8
	}
	c, err := kfake.NewCluster(
		kfake.NumBrokers(1),
		kfake.DefaultNumPartitions(partitions),
	)
	if err != nil {
		panic("baseline: starting kfake: " + err.Error())
	}
	return c.ListenAddrs(), c.Close
}
