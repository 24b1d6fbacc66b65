// Package syncbuf is a bytes.Buffer that several goroutines may write while
// another reads it, for tests that collect what a goroutine or a child
// process prints.
package syncbuf

import (
	"bytes"
	"sync"
)

// Buffer collects writes under a lock. The zero Buffer is empty and ready.
type Buffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns what has been written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
