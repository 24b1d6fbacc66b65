// Package firsterr keeps the first error goroutines working together
// report: the one that says what went wrong, before the others fail in its
// wake.
package firsterr

import "sync"

// Keeper holds the first non-nil error set on it. The zero value is ready
// to use.
type Keeper struct {
	mu  sync.Mutex
	err error
}

// Set keeps err if no error is kept yet; a nil err changes nothing.
func (k *Keeper) Set(err error) {
	k.mu.Lock()
	if k.err == nil {
		k.err = err
	}
	k.mu.Unlock()
}

// Err returns the error kept, or nil.
func (k *Keeper) Err() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.err
}
