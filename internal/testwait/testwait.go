// Package testwait waits in tests for what another goroutine or process
// does, by polling a condition with a deadline rather than sleeping and
// hoping it happened.
package testwait

import (
	"testing"
	"time"
)

// For polls cond every 5 ms until it holds, failing the test with what
// after ten seconds.
func For(t testing.TB, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// Recv returns the next value sent on ch, failing the test with what if
// none comes within ten seconds.
func Recv[T any](t testing.TB, what string, ch <-chan T) T {
	t.Helper()
	var v T
	select {
	case v = <-ch:
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
	}
	return v
}
