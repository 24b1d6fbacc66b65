//go:build race

package log

// raceEnabled: the race detector makes sync.Pool drop items at random, so
// allocation tests that rely on pooling cannot hold.
const raceEnabled = true
