// Package integration drives the shoal binary as real processes on loopback
// with real Kafka clients: produce and consume, crashes and restarts,
// retention, malformed input and configuration errors.
//
// TestMain builds ./cmd/shoal once; every test starts its own node(s) with
// fresh ports and a fresh data directory. Run with:
//
//	go test ./integration/
package integration
