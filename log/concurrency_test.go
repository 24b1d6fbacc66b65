package log

import (
	"errors"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestConcurrentUse runs a writer, readers, retention, DeleteRecords and
// Sync at once; run with -race. Readers must only ever see whole batches
// that contain the offset they asked for.
func TestConcurrentUse(t *testing.T) {
	cfg := smallSegments()
	cfg.RetentionBytes = 5000
	cfg.RetentionMs = -1
	m, p, _ := newTestPartition(t, cfg)
	defer m.Close()
	const batches = 400
	var done atomic.Bool
	stop := make(chan struct{})
	var wg sync.WaitGroup
	errc := make(chan error, 16)
	fail := func(err error) {
		select {
		case errc <- err:
		default:
		}
	}
	wg.Add(1)
	go func() { // writer
		defer wg.Done()
		defer close(stop)
		defer done.Store(true)
		for i := range batches {
			res, err := appendCopy(p, simpleBatch(t, 3, int64(i), "c"), int32(i/100))
			if err != nil {
				fail(err)
				return
			}
			p.SetHighWatermark(res.LastOffset + 1)
			if i%50 == 0 {
				if err := p.Sync(res.LastOffset); err != nil {
					fail(err)
					return
				}
			}
		}
	}()
	for r := range 2 {
		wg.Add(1)
		go func() { // readers
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(r), 1))
			for !done.Load() {
				hw := p.HighWatermark()
				if hw == 0 {
					select {
					case <-p.Wait():
					case <-stop:
					}
					continue
				}
				off := p.LogStartOffset() + rng.Int64N(max(hw-p.LogStartOffset(), 1))
				res, err := p.Read(off, 2000, hw, true)
				if errors.Is(err, ErrOffsetOutOfRange) {
					continue // retention moved the start meanwhile
				}
				if err != nil {
					fail(err)
					return
				}
				h, err := ParseBatchHeader(res.Data)
				if err != nil || h.BaseOffset > off || h.LastOffset() < off || !VerifyBatchCRC(res.Data) {
					fail(errors.New("read returned the wrong batch"))
					return
				}
				p.OffsetForTimestamp(rng.Int64N(batches))
				p.MaxTimestamp()
			}
		}()
	}
	wg.Add(1)
	go func() { // retention and DeleteRecords
		defer wg.Done()
		for i := 0; !done.Load(); i++ {
			m.EnforceRetention(time.Now())
			if i%3 == 0 {
				p.DeleteRecordsBefore(p.HighWatermark() / 2)
			}
			m.FlushIfDue(time.Now())
			select {
			case <-p.Wait():
			case <-stop:
			}
		}
	}()
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	if p.LogEndOffset() != 3*batches || p.LogStartOffset() == 0 {
		t.Fatalf("LEO %d start %d", p.LogEndOffset(), p.LogStartOffset())
	}
}
