package log

import (
	"fmt"
	"maps"
	"sync"
	"time"
)

// Group commit.
//
// An fsync costs about the same whether it covers one append or a thousand,
// so Sync callers do not fsync themselves: they join the next round of one
// flusher goroutine per Manager. A round fsyncs every dirty segment of every
// partition that asked, once, then releases all of that round's callers.
// Callers arriving while a round runs join the following round (their data
// may have been written after the running round's fsync started). The
// goroutine exits when a round ends with nobody waiting, so an idle broker
// has no flusher running.
type flusher struct {
	mu      sync.Mutex
	running bool
	next    *flushRound // the round new callers join; nil when none pending
	closed  bool
}

type flushRound struct {
	parts map[*Partition]error
	done  chan struct{}
}

// maxParallelFsyncs bounds concurrent fsyncs within a round: enough to keep a
// device queue busy (filesystems merge concurrent journal commits) without a
// goroutine per partition.
const maxParallelFsyncs = 8

func (f *flusher) sync(p *Partition) error {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return ErrClosed
	}
	if f.next == nil {
		f.next = &flushRound{parts: map[*Partition]error{}, done: make(chan struct{})}
	}
	r := f.next
	r.parts[p] = nil
	if !f.running {
		f.running = true
		go f.loop()
	}
	f.mu.Unlock()
	<-r.done
	return r.parts[p] // written before done was closed
}

func (f *flusher) loop() {
	for {
		f.mu.Lock()
		r := f.next
		f.next = nil
		if r == nil {
			f.running = false
			f.mu.Unlock()
			return
		}
		f.mu.Unlock()
		r.run()
	}
}

func (r *flushRound) run() {
	if len(r.parts) == 1 {
		for p := range r.parts {
			r.parts[p] = p.flush()
		}
		close(r.done)
		return
	}
	var (
		mu   sync.Mutex
		errs = map[*Partition]error{}
	)
	inParallel(maps.Keys(r.parts), maxParallelFsyncs, func(p *Partition) {
		if err := p.flush(); err != nil {
			mu.Lock()
			errs[p] = err
			mu.Unlock()
		}
	})
	for p, err := range errs {
		r.parts[p] = err
	}
	close(r.done)
}

func (f *flusher) close() {
	f.mu.Lock()
	f.closed = true
	f.mu.Unlock()
}

// Sync returns once every record up to and including offset is durable
// (segment data and indexes fsynced). Calls across all partitions of the
// Manager are coalesced into shared fsync rounds.
func (p *Partition) Sync(offset int64) error {
	p.mu.RLock()
	openErr, done := p.openErr(), offset < p.recoveryPoint
	p.mu.RUnlock()
	if openErr != nil {
		return openErr
	}
	if done {
		return nil
	}
	return p.m.flusher.sync(p)
}

// NeedsFlush reports whether flush.messages records have been appended since
// the last fsync; the broker then calls Sync before acknowledging.
func (p *Partition) NeedsFlush() bool {
	limit := p.cfg.Load().FlushMessages
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.unflushedMsgs > 0 && p.unflushedMsgs >= limit
}

// flush makes everything appended so far durable.
func (p *Partition) flush() error {
	p.flushMu.Lock()
	defer p.flushMu.Unlock()
	return p.flushLocked(false)
}

// flushLocked writes pending index entries and fsyncs dirty segments, then
// advances the recovery point to the LEO captured at the start. flushMu held;
// mu is held only to capture and to publish, not across the fsyncs. With
// allIndexes the active segment's index files are fsynced too (clean close).
func (p *Partition) flushLocked(allIndexes bool) error {
	p.mu.RLock()
	if p.filesClosed {
		err := p.closedErr()
		p.mu.RUnlock()
		return err
	}
	target, msgs := p.leo, p.unflushedMsgs
	var states []flushState
	for i, s := range p.segs {
		if fs, ok := s.captureFlush(allIndexes || i < len(p.segs)-1); ok {
			states = append(states, fs)
		}
	}
	p.mu.RUnlock()
	for i := range states {
		if err := states[i].writeFlush(); err != nil {
			p.logger.Error("fsync failed", "partition", p.Dir(), "segment", states[i].seg.base, "error", err)
			return p.storageFailed(fmt.Errorf("%w: fsync: %v", ErrStorage, err))
		}
	}
	for _, fs := range states {
		s := fs.seg
		s.flushedSize, s.idxDone, s.tidxDone = fs.size, fs.newIdxDone, fs.newTidx
		if fs.truncIdx {
			s.indexFilesTruncated = false
		}
		if fs.syncIndex {
			s.indexUnsynced = false
		} else if len(fs.idx) > 0 || len(fs.tidx) > 0 || fs.truncIdx {
			s.indexUnsynced = true
		}
	}
	p.mu.Lock()
	p.recoveryPoint = max(p.recoveryPoint, target)
	p.unflushedMsgs -= msgs
	p.lastFlush = time.Now()
	p.mu.Unlock()
	return nil
}

// recoveryCheckpointInterval bounds how often FlushIfDue rewrites the offsets
// checkpoint: it only shortens recovery after a crash, so it need not follow
// every fsync.
const recoveryCheckpointInterval = time.Minute

// flushIfDue syncs the partition when flush.ms has passed since its last
// flush and refreshes its checkpoint now and then.
func (p *Partition) flushIfDue(now time.Time) error {
	cfg := p.cfg.Load()
	p.mu.RLock()
	dirty := p.leo > p.recoveryPoint
	due := dirty && now.Sub(p.lastFlush).Milliseconds() >= cfg.FlushMs
	leo, closed := p.leo, p.closed
	p.mu.RUnlock()
	if closed {
		return nil
	}
	if due {
		if err := p.Sync(leo - 1); err != nil {
			return err
		}
	}
	p.flushMu.Lock()
	defer p.flushMu.Unlock()
	if p.filesClosed || now.Sub(p.lastCkptAt) < recoveryCheckpointInterval {
		return nil
	}
	return p.writeCheckpointLocked(false)
}
