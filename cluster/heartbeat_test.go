package cluster

import (
	"context"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoalmq/shoal/raftmeta"
)

// A broker whose heartbeat the controller answers STALE_BROKER_EPOCH
// registers again and heartbeats at its new epoch; controlled shutdown
// ends the heartbeats. The controller is an in-test listener at a voter's
// address.
func TestHeartbeatsRegisterAgainWhenTheEpochIsStale(t *testing.T) {
	var registrations, heartbeats atomic.Int32
	r := startResponder(t, func(key, version int16, corr int32) []byte {
		switch key {
		case kmsg.BrokerRegistration.Int16():
			resp := kmsg.NewPtrBrokerRegistrationResponse()
			resp.SetVersion(version)
			resp.BrokerEpoch = 40 + int64(registrations.Add(1))
			return responseFrame(corr, true, resp.AppendTo(nil))
		case kmsg.BrokerHeartbeat.Int16():
			resp := kmsg.NewPtrBrokerHeartbeatResponse()
			resp.SetVersion(version)
			if heartbeats.Add(1) == 1 {
				resp.ErrorCode = kerr.StaleBrokerEpoch.Code
			}
			return responseFrame(corr, true, resp.AppendTo(nil))
		}
		return nil
	})
	pool := testPool(t, r) // node 5 is a voter at the responder
	meta := newFakeMeta(5)
	c := NewControllerClient(Config{
		NodeID:            7,
		Voters:            map[int32]string{5: r.ln.Addr().String()},
		MultiNode:         true,
		HeartbeatInterval: 10 * time.Millisecond,
		Version:           func(int16) int16 { return 0 },
		Logger:            slog.New(slog.NewTextHandler(io.Discard, nil)),
	}, meta, nil, pool)

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := c.Register(ctx, []raftmeta.Endpoint{{Listener: "PLAINTEXT", Host: "127.0.0.1", Port: 9092}}); err != nil {
		t.Fatal(err)
	}
	if e := c.BrokerEpoch(); e != 41 {
		t.Fatalf("epoch %d after registering, want 41", e)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.RunHeartbeats(ctx)
	}()
	for c.BrokerEpoch() != 42 || heartbeats.Load() < 3 {
		if ctx.Err() != nil {
			t.Fatalf("epoch %d after %d heartbeats: the stale epoch was not replaced", c.BrokerEpoch(), heartbeats.Load())
		}
		time.Sleep(5 * time.Millisecond)
	}
	if !c.ControlledShutdown(ctx) {
		t.Fatal("controlled shutdown failed")
	}
	select {
	case <-done:
	case <-ctx.Done():
		t.Fatal("heartbeats went on after controlled shutdown")
	}
}
