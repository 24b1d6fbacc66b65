package cluster

import (
	"context"
	"sync"
)

// ProducerIDBlock is how many producer ids a node asks the controller for
// at once, so that InitProducerID costs a raft round only once per block.
const ProducerIDBlock = 1000

// producerIDSource allocates blocks of producer ids cluster-wide: the
// ControllerClient (AllocateProducerIDs on the active controller).
type producerIDSource interface {
	AllocateProducerIDs(ctx context.Context, count int64) (first, n int64, err error)
}

// ProducerIDs hands out this node's idempotent producer ids from blocks
// the active controller allocates. Ids are unique cluster-wide because each
// block is recorded in the metadata log before it is handed out; a node
// that restarts asks for a new block and never reuses the rest of the old
// one.
//
// mu is held across the controller call, so that concurrent requests wait
// for the one allocation instead of each asking for a block; it comes
// first in the package's lock order (controller.go).
type ProducerIDs struct {
	src producerIDSource

	mu        sync.Mutex
	next, end int64 // the unused part of the current block: [next, end)
}

// NewProducerIDs hands out ids from blocks src allocates.
func NewProducerIDs(src producerIDSource) *ProducerIDs {
	return &ProducerIDs{src: src}
}

// Next returns an unused producer id, asking for a new block when the
// current one is spent. An allocation error (no controller, NOT_CONTROLLER
// retries exhausted) is returned as is.
func (p *ProducerIDs) Next(ctx context.Context) (int64, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.next >= p.end {
		first, n, err := p.src.AllocateProducerIDs(ctx, ProducerIDBlock)
		if err != nil {
			return -1, err
		}
		p.next, p.end = first, first+n
	}
	id := p.next
	p.next++
	return id, nil
}
