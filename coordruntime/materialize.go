package coordruntime

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/shoalmq/shoal/coordinator"
	"github.com/shoalmq/shoal/log"
	"github.com/shoalmq/shoal/raftmeta"
)

// internalPartition is one partition of an internal, compacted topic whose
// records a coordinator keeps materialized in a pebble store
// (__consumer_offsets, __share_group_state, __transaction_state) while
// this node leads it: the log is the source of truth, the store the fast
// path to load from.
//
// A shard loaded from it owns the partition for one leader epoch of this
// node's leadership, leaderEpoch, and loads and writes only while the
// newest image still names this node leader at that epoch (current). A
// shard whose partition moved on is unloaded asynchronously, so without
// the fence a call it was still running, or a marker sender that had not
// yet seen the unload, could append after the next shard loaded the log:
// a record that shard never saw, which as its key's last would win at
// every later load over what the live shard acknowledged.
type internalPartition struct {
	env         *Env
	topic       string
	part        int32
	p           *log.Partition
	st          *internalStore
	leaderEpoch int32
	// released is set (under the storePart's mu) once the coordinator
	// unloads: a replay of a failed shard still under way then must not
	// claim the partition again, as no release would follow that claim.
	released bool
}

// current returns the partition's state in the newest image when this
// node leads it at ip.leaderEpoch, from the topic ip was loaded from;
// otherwise NOT_COORDINATOR: the partition has (or is about to have)
// another shard, which this one must not write or load ahead of.
func (ip *internalPartition) current() (raftmeta.PartitionState, error) {
	t := ip.env.Image().Topics[ip.topic]
	if !t.HasPartition(ip.part) || t.ID != ip.p.TopicID() {
		return raftmeta.PartitionState{}, kerr.NotCoordinator
	}
	ps := t.Partitions[ip.part]
	if ps.Leader != ip.env.NodeID || ps.LeaderEpoch != ip.leaderEpoch {
		return raftmeta.PartitionState{}, kerr.NotCoordinator
	}
	return ps, nil
}

// internalStore is the pebble store of one internal topic and the one gate
// every write to it passes, partition by partition:
//
//   - while this node leads a partition, the coordinator that loaded it owns
//     the partition's entries: load claims them and replays the log tail
//     above the store;
//   - materialize copies the committed records of the partition's log into
//     the store, in bulk and off the append and fetch paths: of the
//     coordinator's own appends while this node leads it, of what the
//     replica fetcher stored while this node follows it. A load (after a
//     leader change, or a reload of a failed shard) thereby replays only the
//     short tail the store had not reached yet.
//
// The store is only ever read by a load, which replays the log above it, so
// its lagging the log by a pass costs a load a few records and nothing else;
// what it saves is a store commit on every coordinator write, which would
// sit between each transition and its answer.
type internalStore struct {
	topic string
	store *Store
	log   *slog.Logger
	// loaded, if set, is told how many records each load replayed.
	loaded func(topic string, records int)

	kick chan struct{}
	stop chan struct{}
	done chan struct{}

	mu    sync.Mutex
	parts map[int32]*storePart
}

// storePart is one partition's entries in an internalStore.
type storePart struct {
	// mu is held across every write of the partition's entries and every
	// change of its role.
	mu sync.Mutex
	// applied caches the store's applied offset (the last log offset its
	// records cover, -1: none); known once read is set.
	applied int64
	read    bool
	// follow is the local replica while another node leads the partition.
	follow *log.Partition
	// owner is the loaded coordinator's partition while this node leads it;
	// materialize then reads the owner's log, never follow.
	owner *internalPartition
}

// materializeEvery spaces a store's materialization passes: reports from
// the fetcher that arrive meanwhile are served by one pass, so a follower
// writes its store in a few larger batches rather than once per fetch.
const materializeEvery = 20 * time.Millisecond

// materializeChunk bounds how many log bytes one materialization step of a
// partition reads (and writes as one store batch) while holding the
// partition, so a coordinator taking over never waits for a long catch-up.
const materializeChunk = 4 << 20

func openInternalStore(topic, dir string, logger *slog.Logger, loaded func(string, int)) (*internalStore, error) {
	store, err := OpenStore(dir, logger)
	if err != nil {
		return nil, err
	}
	is := &internalStore{topic: topic, store: store, log: logger, loaded: loaded,
		kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{}),
		parts: map[int32]*storePart{}}
	go is.run()
	return is, nil
}

// close stops materializing and closes the store.
func (is *internalStore) close() error {
	close(is.stop)
	<-is.done
	return is.store.Close()
}

func (is *internalStore) part(idx int32) *storePart {
	is.mu.Lock()
	defer is.mu.Unlock()
	sp := is.parts[idx]
	if sp == nil {
		sp = &storePart{applied: -1}
		is.parts[idx] = sp
	}
	return sp
}

// appliedLocked returns the partition's applied offset. sp.mu held.
func (is *internalStore) appliedLocked(idx int32, sp *storePart) (int64, error) {
	if !sp.read {
		a, err := is.store.Applied(idx)
		if err != nil {
			return -1, err
		}
		sp.applied, sp.read = a, true
	}
	return sp.applied, nil
}

// dropLocked deletes a partition's entries: they cover log offsets the
// log no longer holds. The next load or materialization rebuilds them from
// the log. sp.mu held.
func (is *internalStore) dropLocked(idx int32, sp *storePart, why string, applied, leo int64) error {
	is.log.Warn("dropping materialized coordinator state; rebuilding it from the log", "topic", is.topic, "partition", idx,
		"reason", why, "applied", applied, "log_end", leo)
	sp.read = false
	if err := is.store.Drop(idx); err != nil {
		return err
	}
	sp.applied, sp.read = -1, true
	return nil
}

// wake asks for a materialization pass.
func (is *internalStore) wake() {
	select {
	case is.kick <- struct{}{}:
	default:
	}
}

// follow sets the partitions this node follows: exactly those are
// materialized from now on.
func (is *internalStore) follow(parts map[int32]*log.Partition) {
	is.mu.Lock()
	for idx := range parts {
		if is.parts[idx] == nil {
			is.parts[idx] = &storePart{applied: -1}
		}
	}
	all := make(map[int32]*storePart, len(is.parts))
	for idx, sp := range is.parts {
		all[idx] = sp
	}
	is.mu.Unlock()
	for idx, sp := range all {
		sp.mu.Lock()
		sp.follow = parts[idx]
		sp.mu.Unlock()
	}
	if len(parts) > 0 {
		is.wake()
	}
}

// release ends ip's ownership of its partition's entries (the coordinator
// is unloading): no pass reads its log from then on, and the follower path
// takes over once the partition is followed.
func (is *internalStore) release(ip *internalPartition) {
	sp := is.part(ip.part)
	sp.mu.Lock()
	ip.released = true
	if sp.owner == ip {
		sp.owner = nil
	}
	sp.mu.Unlock()
	is.wake()
}

// truncated is called after a follower's replica p was truncated (to the
// leader's epoch boundary, or restarted empty at the leader's log start).
// Materialization stays below the HW, so this cannot cut below the applied
// offset while elections are clean; if it did anyway (an unclean
// election), the store holds records the log lost and is rebuilt.
func (is *internalStore) truncated(p *log.Partition) {
	idx := p.Index()
	sp := is.part(idx)
	sp.mu.Lock()
	defer sp.mu.Unlock()
	applied, err := is.appliedLocked(idx, sp)
	if err != nil {
		is.log.Error("reading coordinator store", "topic", is.topic, "partition", idx, "err", err)
		return
	}
	if leo := p.LogEndOffset(); applied >= leo {
		if err := is.dropLocked(idx, sp, "log truncated below the materialized records", applied, leo); err != nil {
			is.log.Error("dropping coordinator store", "topic", is.topic, "partition", idx, "err", err)
		}
	}
}

// run materializes owned and followed partitions when a coordinator
// appended or the fetcher reports progress (at most every materializeEvery,
// and once a second in case a report was missed).
func (is *internalStore) run() {
	defer close(is.done)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	pause := time.NewTimer(0)
	defer pause.Stop()
	for {
		select {
		case <-is.stop:
			return
		case <-pause.C:
		}
		select {
		case <-is.stop:
			return
		case <-is.kick:
		case <-tick.C:
		}
		pause.Reset(materializeEvery)
		is.mu.Lock()
		parts := make(map[int32]*storePart, len(is.parts))
		for idx, sp := range is.parts {
			parts[idx] = sp
		}
		is.mu.Unlock()
		more := false
		for idx, sp := range parts {
			m, err := is.materialize(idx, sp)
			if err != nil {
				is.log.Warn("materializing coordinator records", "topic", is.topic, "partition", idx, "err", err)
			}
			more = more || m
		}
		if more {
			is.wake()
		}
	}
}

// materialize copies a partition's committed records above the store's
// applied offset into the store, at most materializeChunk bytes of log, and
// reports whether more remain. The log is the owner's while a coordinator
// here leads the partition, else the followed replica's.
func (is *internalStore) materialize(idx int32, sp *storePart) (bool, error) {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	p := sp.follow
	if sp.owner != nil {
		p = sp.owner.p
	}
	if p == nil {
		return false, nil
	}
	applied, err := is.appliedLocked(idx, sp)
	if err != nil {
		return false, err
	}
	leo := p.LogEndOffset()
	if applied >= leo {
		// The log lost records the store has (a torn tail after a crash).
		if err := is.dropLocked(idx, sp, "log ends below the materialized records", applied, leo); err != nil {
			return false, err
		}
		applied = -1
	}
	// Only committed records, below the HW, are materialized. Records above
	// the HW may still be truncated away when leadership moves; records
	// below the HW the leader reported are on every ISR member, and a clean
	// election (the only kind enabled by default) picks its leader from the
	// ISR, so they are never truncated from a follower's log. The store
	// therefore never has to roll back; truncated rebuilds it if an unclean
	// election cut below it anyway.
	hw := min(p.HighWatermark(), leo)
	from := max(applied+1, p.LogStartOffset())
	if from >= hw {
		return false, nil
	}
	var recs []coordinator.Record
	last, more, err := readLog(p, from, hw, materializeChunk, func(r log.Record) {
		recs = append(recs, coordinator.Record{Key: r.Key, Value: r.Value})
	})
	if err != nil {
		return false, err
	}
	if last <= applied {
		return false, nil
	}
	if err := is.store.Apply(idx, last, recs); err != nil {
		sp.read = false
		return false, err
	}
	sp.applied = last
	return more, nil
}

// readLog calls fn for each record of p's batches in [from, to), in
// order, reading about maxBytes of log at most (0: no limit). A batch that
// reaches to is not read. It returns the last offset of the last batch
// read (from-1 if none) and whether it stopped at maxBytes.
func readLog(p *log.Partition, from, to int64, maxBytes int, fn func(log.Record)) (last int64, more bool, err error) {
	last = from - 1
	read := 0
	for from < to {
		if maxBytes > 0 && read >= maxBytes {
			return last, true, nil
		}
		res, err := p.Read(from, 1<<20, to, true)
		if err != nil {
			return last, false, fmt.Errorf("reading at %d: %w", from, err)
		}
		if len(res.Data) == 0 {
			break
		}
		read += len(res.Data)
		for b := res.Data; len(b) > 0; {
			h, recs, err := log.DecodeRecords(b)
			if err != nil {
				return last, false, fmt.Errorf("decoding at %d: %w", h.BaseOffset, err)
			}
			if h.LastOffset() >= to {
				return last, false, nil
			}
			if !h.Control() {
				for _, r := range recs {
					if r.Offset >= from {
						fn(r)
					}
				}
			}
			last = h.LastOffset()
			b = b[h.Size():]
		}
		from = last + 1
	}
	return last, false, nil
}

// load claims the partition's store entries for the coordinator loading
// it and replays its state into apply: first what the store has
// materialized, then the log records above the store's applied offset up
// to the HW (which it then materializes too). A follower keeps its store
// close behind its HW, so after a leader change that tail is short.
//
// A partition that moved on (current) is not loaded: a shard being
// unloaded that replays after a failed append must not take the entries
// back from the next shard. Checked under storePart.mu, which the next
// shard's load takes too, after the image that moved the partition on.
func (ip *internalPartition) load(reset func(), apply func(coordinator.Record) error) (err error) {
	is, p := ip.st, ip.p
	sp := is.part(ip.part)
	sp.mu.Lock()
	defer sp.mu.Unlock()
	if ip.released {
		return kerr.NotCoordinator
	}
	if _, err := ip.current(); err != nil {
		return err
	}
	sp.owner, sp.follow = ip, nil
	defer func() {
		if err != nil {
			sp.owner = nil
		}
	}()
	began := ip.env.Now()
	stored := 0
	applied, err := is.store.Load(ip.part, func(r coordinator.Record) error {
		if err := apply(r); err != nil {
			is.log.Warn("skipping undecodable stored record", "topic", ip.topic, "partition", ip.part, "err", err)
			return nil
		}
		stored++
		return nil
	})
	if err != nil {
		sp.read = false
		return err
	}
	hw := p.HighWatermark()
	if applied >= hw {
		// The store is ahead of the log (the log lost its tail): start
		// over from the log alone.
		if err := is.dropLocked(ip.part, sp, "log ends below the materialized records", applied, hw); err != nil {
			return err
		}
		reset()
		applied, stored = -1, 0
	}
	sp.applied, sp.read = applied, true
	from := max(applied+1, p.LogStartOffset())
	var tail []coordinator.Record
	replayed := 0
	last, _, err := readLog(p, from, hw, 0, func(r log.Record) {
		replayed++
		cr := coordinator.Record{Key: r.Key, Value: r.Value}
		if err := apply(cr); err != nil {
			is.log.Warn("skipping undecodable record", "topic", ip.topic, "partition", ip.part, "offset", r.Offset, "err", err)
			return
		}
		tail = append(tail, cr)
	})
	if err != nil {
		return fmt.Errorf("replaying %s-%d: %w", ip.topic, ip.part, err)
	}
	if is.loaded != nil {
		is.loaded(ip.topic, replayed)
	}
	is.log.Debug("coordinator partition loaded", "topic", ip.topic, "partition", ip.part,
		"stored_records", stored, "replayed_records", replayed, "replayed_from", from, "high_watermark", hw,
		"took", ip.env.Now().Sub(began).Round(time.Microsecond))
	if last > applied {
		if err := is.store.Apply(ip.part, last, tail); err != nil {
			sp.read = false
			return err
		}
		sp.applied = last
	}
	return nil
}

// internalWriteTimeout bounds how long a coordinator write waits for the
// ISR, like offsets.commit.timeout.ms.
const internalWriteTimeout = 5 * time.Second

// append writes records as one batch and waits until it is committed (and
// fsynced where the durability settings ask); the next materialization pass
// copies them into the store.
func (ip *internalPartition) append(recs []coordinator.Record) error {
	if len(recs) == 0 {
		return nil
	}
	// The Appender checks ps.LeaderEpoch against the newest metadata
	// again as it appends: a leader change after this check refuses the
	// batch there.
	ps, err := ip.current()
	if err != nil {
		return err
	}
	now := ip.env.Now()
	brs := make([]log.Record, len(recs))
	for i, r := range recs {
		brs[i] = log.Record{Key: r.Key, Value: r.Value}
	}
	// Written with acks=all: the state is kept only once the ISR has it.
	ctx, cancel := context.WithTimeout(ip.env.ctx, internalWriteTimeout)
	defer cancel()
	if _, err := ip.env.Appender.AppendCommitted(ctx, ip.p, ps, log.EncodeBatch(brs, now), now); err != nil {
		return err
	}
	ip.st.wake()
	return nil
}
