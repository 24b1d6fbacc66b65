package cluster

import (
	"context"
	"errors"
	"testing"
)

// blockSource allocates consecutive blocks, or fails while err is set.
type blockSource struct {
	calls int
	next  int64
	err   error
}

func (s *blockSource) AllocateProducerIDs(_ context.Context, count int64) (int64, int64, error) {
	s.calls++
	if s.err != nil {
		return 0, 0, s.err
	}
	first := s.next
	s.next += count
	return first, count, nil
}

// Ids come from one block until it is spent, then from the next; a failed
// allocation is reported and the next call tries again.
func TestProducerIDsComeFromBlocks(t *testing.T) {
	src := &blockSource{next: 5000}
	ids := NewProducerIDs(src)
	ctx := context.Background()
	for i := int64(0); i < ProducerIDBlock+1; i++ {
		id, err := ids.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if id != 5000+i {
			t.Fatalf("id %d: got %d", i, id)
		}
	}
	if src.calls != 2 {
		t.Fatalf("%d allocations for one block and one id; want 2", src.calls)
	}

	// Spend the second block, then fail the allocation of a third.
	for i := 1; i < ProducerIDBlock; i++ {
		if _, err := ids.Next(ctx); err != nil {
			t.Fatal(err)
		}
	}
	src.err = errors.New("no controller")
	if id, err := ids.Next(ctx); !errors.Is(err, src.err) || id != -1 {
		t.Fatalf("got %d, %v; want -1 and the allocation error", id, err)
	}
	src.err = nil
	if id, err := ids.Next(ctx); err != nil || id != 5000+2*ProducerIDBlock {
		t.Fatalf("after recovery got %d, %v; want %d", id, err, 5000+2*ProducerIDBlock)
	}
}
