// Package baseline starts the kfake cluster that shoal's
// whole-system benchmarks measure against. It lives apart from package bench
// so that only tests link kfake, not the shoal binary.
package baseline

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"

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

// StartKfakeProcess runs the kfakeserver command at bin (built from
// ./bench/baseline/kfakeserver) as a process of its own, the way a real
// broker is measured: an in-process baseline's round trips skip the
// cross-process wake-ups every real server pays, which flatters it. stop
// kills the process and waits for it.
func StartKfakeProcess(bin string, partitions int) (addrs []string, stop func(), err error) {
	cmd := exec.Command(bin, "-partitions", strconv.Itoa(partitions))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, nil, err
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, nil, fmt.Errorf("baseline: starting %s: %w", bin, err)
	}
	stop = func() {
		stdin.Close()
		cmd.Process.Kill()
		cmd.Wait()
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		stop()
		return nil, nil, fmt.Errorf("baseline: reading kfakeserver's address: %w", err)
	}
	return strings.Split(strings.TrimSpace(line), ","), stop, nil
}
