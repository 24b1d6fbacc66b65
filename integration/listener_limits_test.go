package integration

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestListenerMaxConnections: listener.name.external.max.connections=1,
// set at runtime with `shoal config set`, makes a second connection on
// EXTERNAL wait until the first closes, while PLAINTEXT goes on serving
// new connections; DescribeConfigs reports the listener's limit, and a
// limit for a listener the broker does not have is refused.
func TestListenerMaxConnections(t *testing.T) {
	t.Parallel()
	n := startNode(t, nodeOpts{
		extraListener: "EXTERNAL",
		configFile:    "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,EXTERNAL:PLAINTEXT,CONTROLLER:PLAINTEXT\ninter.broker.listener.name=PLAINTEXT\n",
	})
	adm := n.Admin(t)
	if err, out := runShoalCLI(t, n, "config", "set", "--broker", "1", "--set", "listener.name.external.max.connections=1"); err != nil {
		t.Fatalf("config set: %v\n%s", err, out)
	}
	waitFor(t, opTimeout, "the listener's limit described", func() (bool, string) {
		c, _ := brokerConfig(t, adm, "listener.name.external.max.connections", 1)
		return c.MaybeValue() == "1" && c.Source == kmsg.ConfigSourceDynamicBrokerConfig, fmt.Sprintf("%+v", c)
	})
	held, _, answer := dialUntilWaiting(t, n, n.ExtraAddr(), "127.0.0.31", 2)
	for range 3 {
		if !served(t, dialFrom(t, "127.0.0.32", n.Addr())) {
			t.Fatal("a new connection on PLAINTEXT was not served while EXTERNAL was at its limit")
		}
	}
	select {
	case err := <-answer:
		t.Fatalf("the connection waiting on EXTERNAL got an answer (%v) before one closed", err)
	default:
	}
	for _, c := range held {
		c.Close()
	}
	expectAnswered(t, answer, "the connection waiting on EXTERNAL, once its listener's connection closed")
	rs, err := adm.AlterBrokerConfigs(ctxT(t, opTimeout), []kadm.AlterConfig{setConfig("listener.name.internal.max.connections", "1")}, 1)
	if err != nil {
		t.Fatal(err)
	}
	if !errors.Is(rs[0].Err, kerr.InvalidRequest) {
		t.Fatalf("a limit for a listener the broker does not have: %v, want INVALID_REQUEST", rs[0].Err)
	}
}

// TestListenerConnectionCreationRate: a static
// listener.name.external.max.connection.creation.rate holds EXTERNAL's
// accepts near it, delaying connections rather than refusing them, while
// PLAINTEXT accepts at full speed at the same time.
func TestListenerConnectionCreationRate(t *testing.T) {
	const rate = 5
	n := startNode(t, nodeOpts{
		extraListener: "EXTERNAL",
		configFile:    "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,EXTERNAL:PLAINTEXT,CONTROLLER:PLAINTEXT\ninter.broker.listener.name=PLAINTEXT\n",
		set:           []string{"quota.window.num=3", "quota.window.size.seconds=1", fmt.Sprintf("listener.name.external.max.connection.creation.rate=%d", rate)},
	})
	// Measured over 5 s after a 3 s warm-up (two whole windows may burst).
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	external, plain := &connMeter{from: start.Add(3 * time.Second)}, &connMeter{from: start.Add(3 * time.Second)}
	external.run(t, ctx, &wg, "127.0.0.41", n.ExtraAddr(), time.Millisecond)
	plain.run(t, ctx, &wg, "127.0.0.42", n.Addr(), 20*time.Millisecond)
	wg.Wait()
	perSec := func(m *connMeter) float64 { return float64(m.answered.Load()) / 5 }
	t.Logf("EXTERNAL %.1f conn/s answered, %d closed; PLAINTEXT %.1f conn/s", perSec(external), external.closed.Load(), perSec(plain))
	if r := perSec(external); r < 0.5*rate || r > 1.6*rate {
		t.Errorf("EXTERNAL accepted %.1f connections/s, want near %d", r, rate)
	}
	if external.closed.Load() != 0 {
		t.Errorf("%d connections closed on EXTERNAL, whose rate delays rather than refuses", external.closed.Load())
	}
	if r := perSec(plain); r < 3*rate {
		t.Errorf("PLAINTEXT accepted %.1f connections/s, want unthrottled", r)
	}
}
