package log

import (
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// ManagerConfig configures a Manager.
type ManagerConfig struct {
	Dirs   []string // log.dirs
	Logger *slog.Logger
	// OwnDirs are names of directories in a log dir that belong to the
	// broker (metadata log, coordinator stores), not partitions: they are
	// skipped without a warning.
	OwnDirs []string
	// OnDirOffline, when set, is called (on its own goroutine) once a log
	// dir went offline and its partitions' files are closed.
	OnDirOffline func(DirFailure)
	// MoveRate, when set, is replica.alter.log.dirs.io.max.bytes.per.second,
	// read at each copy step of a move between log dirs.
	MoveRate func() int64
}

// Manager owns every partition log on this broker, spread over the log dirs.
type Manager struct {
	logger       *slog.Logger
	dirs         []*logDir // fixed after Open
	flusher      flusher
	onDirOffline func(DirFailure)

	// Lock order: movesMu, then mu, then a partition's locks (see
	// Partition; DeletePartition closes a partition under mu), then a
	// logDir's mu, a leaf. A write failure under a partition's locks takes
	// its dir offline through logDir.mu alone (failDir), never mu.
	mu     sync.RWMutex
	parts  map[partKey]*Partition
	closed bool
	// creating holds the partitions whose files CreatePartition is
	// writing outside mu (their directory, segment and syncs take
	// milliseconds each, and every produce and fetch looks its partition
	// up under mu): a create or delete of the same partition, and Close,
	// wait for done to close, and the choice of a dir for another create
	// counts them in theirs. Guarded by mu.
	creating map[partKey]creation
	// onCreateFiles, when set (by tests), is called with the topic before
	// a new partition's files are written, without mu.
	onCreateFiles func(topic string)

	// movesMu guards moves, the moves to another log dir (alterdir.go).
	movesMu sync.Mutex
	moves   map[partKey]*move
	// onMoveStep, when set (by tests), is called at each step of a move.
	onMoveStep func(step string)
	// onMoveSyncDir, when set (by tests), stands in for the fsync of the
	// target dir after a move's commit rename and returns its error.
	onMoveSyncDir func() error
	// onDirFailing, when set (by tests), is called by failDir once it has
	// taken a dir offline, with the failing writer's locks still held.
	onDirFailing func()
	moveRate     func() int64
	moveThrottle moveThrottle
}

type partKey struct {
	topic string
	index int32
}

type logDir struct {
	path string
	lock *os.File
	// mu guards parts and the setting of offline (logdir.go). It is a
	// leaf: nothing is locked under it, so it may be taken under any
	// other lock.
	mu sync.Mutex
	// parts are the partitions whose files are in this dir: placed when
	// loaded, created or moved here, removed when deleted or moved away.
	parts map[*Partition]struct{}
	// offline is set once, by the first write failure in the dir; it is
	// read without mu.
	offline atomic.Pointer[dirOffline]
}

// ErrInvalidTopic reports a topic name that cannot name a directory.
var ErrInvalidTopic = errors.New("log: invalid topic name")

// Open prepares every log dir (creating it, taking its lock file) and loads
// every partition found in them. Partitions of a dir without a clean-shutdown
// marker are recovered (see recovery.go); moves to another log dir that a
// crash interrupted are finished or discarded first (alterdir.go). Loaded partitions use
// DefaultPartitionConfig until the broker calls SetConfig.
func Open(cfg ManagerConfig) (*Manager, error) {
	if len(cfg.Dirs) == 0 {
		return nil, errors.New("log: no log dirs")
	}
	m := &Manager{logger: cfg.Logger, parts: map[partKey]*Partition{}, creating: map[partKey]creation{}, moves: map[partKey]*move{}, onDirOffline: cfg.OnDirOffline, moveRate: cfg.MoveRate}
	if m.moveRate == nil {
		m.moveRate = func() int64 { return math.MaxInt64 }
	}
	if m.logger == nil {
		m.logger = slog.Default()
	}
	type job struct {
		path  string
		topic string
		index int32
		clean bool
	}
	found := map[partKey]*partitionDirs{}
	clean := map[string]bool{} // by log dir
	for _, d := range cfg.Dirs {
		abs, err := filepath.Abs(d)
		if err != nil {
			m.releaseLocks()
			return nil, err
		}
		if err := os.MkdirAll(abs, 0o755); err != nil {
			m.releaseLocks()
			return nil, err
		}
		lf, err := lockDir(abs, d)
		if err != nil {
			m.releaseLocks()
			return nil, err
		}
		m.dirs = append(m.dirs, &logDir{path: abs, lock: lf, parts: map[*Partition]struct{}{}})
		_, err = os.Stat(filepath.Join(abs, cleanShutdownFile))
		clean[abs] = err == nil
		ents, err := os.ReadDir(abs)
		if err != nil {
			m.releaseLocks()
			return nil, err
		}
		for _, de := range ents {
			if !de.IsDir() {
				continue
			}
			path := filepath.Join(abs, de.Name())
			if strings.HasSuffix(de.Name(), deleteDirSuffix) {
				// A deletion interrupted by a crash: finish it.
				if err := os.RemoveAll(path); err != nil {
					m.logger.Warn("removing deleted partition dir", "dir", path, "error", err)
				}
				continue
			}
			if strings.HasSuffix(de.Name(), futureDirSuffix) {
				// A move to this dir that never committed (alterdir.go).
				m.logger.Warn("discarding the unfinished copy of a partition being moved to another log directory; the partition stays in its old directory, request the move again", "dir", path)
				if err := os.RemoveAll(path); err != nil {
					m.logger.Warn("removing future partition dir", "dir", path, "error", err)
				}
				continue
			}
			if slices.Contains(cfg.OwnDirs, de.Name()) {
				continue
			}
			topic, index, ok := parsePartitionDir(de.Name())
			if !ok {
				m.logger.Warn("ignoring unrecognised directory in log dir", "dir", path)
				continue
			}
			k := partKey{topic, index}
			pd := found[k]
			if pd == nil {
				pd = &partitionDirs{}
				found[k] = pd
			}
			pd.paths = append(pd.paths, path)
			if _, err := os.Stat(filepath.Join(path, moveMarkerFile)); err == nil {
				pd.marked = path
			}
		}
	}
	chosen, err := m.resolveMoves(found)
	if err != nil {
		m.releaseLocks()
		return nil, err
	}
	jobs := make([]job, 0, len(chosen))
	for k, path := range chosen {
		jobs = append(jobs, job{path: path, topic: k.topic, index: k.index, clean: clean[filepath.Dir(path)]})
	}

	// Load partitions in parallel: recovery is mostly reading files.
	var (
		mu   sync.Mutex
		errs []error
	)
	inParallel(slices.Values(jobs), max(2, runtime.NumCPU()), func(j job) {
		p, err := loadPartition(m, j.path, j.topic, j.index, j.clean)
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			errs = append(errs, fmt.Errorf("loading %s: %w", j.path, err))
			return
		}
		m.parts[partKey{j.topic, j.index}] = p
		_ = m.dirOf(j.path).place(p) // no dir is offline before Open returns
	})
	if len(errs) > 0 {
		for _, p := range m.parts {
			_ = p.close(false, false)
		}
		m.releaseLocks()
		return nil, errors.Join(errs...)
	}
	// The markers are consumed: from now on a crash must trigger recovery.
	for _, d := range m.dirs {
		if err := os.Remove(filepath.Join(d.path, cleanShutdownFile)); err == nil {
			_ = syncDir(d.path)
		}
	}
	return m, nil
}

// ErrDirInUse reports a log dir locked by another process.
var ErrDirInUse = errors.New("log dir in use")

// lockDir takes an exclusive lock on the dir's lock file so two brokers (or
// two Managers) never share a log dir, and writes this process's pid into
// it so the one that finds the dir locked can name the holder. name is the
// dir as the user configured it, for the message.
func lockDir(dir, name string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, lockFile), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		holder := "another shoal process"
		// A pid is a few digits: read no more than that.
		var buf [20]byte
		if n, _ := f.ReadAt(buf[:], 0); n > 0 {
			if pid, perr := strconv.Atoi(strings.TrimSpace(string(buf[:n]))); perr == nil {
				holder = fmt.Sprintf("another shoal process (pid %d)", pid)
			}
		}
		f.Close()
		return nil, fmt.Errorf("%w: %s is in use by %s; is one already running?", ErrDirInUse, name, holder)
	}
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return f, nil
}

func (m *Manager) releaseLocks() {
	for _, d := range m.dirs {
		if d.lock != nil {
			_ = syscall.Flock(int(d.lock.Fd()), syscall.LOCK_UN)
			_ = d.lock.Close()
			d.lock = nil
		}
	}
}

// parsePartitionDir splits "<topic>-<partition>". Topics may contain '-', so
// the partition is what follows the last one.
func parsePartitionDir(name string) (string, int32, bool) {
	i := strings.LastIndexByte(name, '-')
	if i <= 0 {
		return "", 0, false
	}
	n, err := strconv.ParseInt(name[i+1:], 10, 32)
	if err != nil || n < 0 {
		return "", 0, false
	}
	return name[:i], int32(n), true
}

func partitionDirName(topic string, index int32) string {
	return fmt.Sprintf("%s-%d", topic, index)
}

// validTopic accepts Kafka's legal topic names, which are also safe path
// components.
func validTopic(t string) bool {
	if t == "" || t == "." || t == ".." || len(t) > 249 {
		return false
	}
	for _, c := range t {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// Partition returns the partition's log, or nil if this broker has none.
func (m *Manager) Partition(topic string, partition int32) *Partition {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.parts[partKey{topic, partition}]
}

// Partitions returns every partition, ordered by topic and index.
func (m *Manager) Partitions() []*Partition {
	m.mu.RLock()
	ps := make([]*Partition, 0, len(m.parts))
	for _, p := range m.parts {
		ps = append(ps, p)
	}
	m.mu.RUnlock()
	sortPartitions(ps)
	return ps
}

// sortPartitions orders ps by topic and index.
func sortPartitions(ps []*Partition) {
	slices.SortFunc(ps, func(a, b *Partition) int {
		if c := strings.Compare(a.topic, b.topic); c != 0 {
			return c
		}
		return int(a.index) - int(b.index)
	})
}

// CreatePartition returns the partition's log, creating it if needed. It is
// idempotent for the same topic id; a different topic id means the topic was
// deleted and recreated, so the old log is deleted first. New partitions go
// to the online log dir holding the fewest partitions; a failure to create
// one takes that dir offline.
func (m *Manager) CreatePartition(topic string, partition int32, topicID [16]byte, cfg PartitionConfig) (*Partition, error) {
	if !validTopic(topic) || partition < 0 {
		return nil, fmt.Errorf("%w: %q/%d", ErrInvalidTopic, topic, partition)
	}
	k := partKey{topic, partition}
	m.mu.Lock()
	if !m.waitCreatingLocked(k) {
		m.mu.Unlock()
		return nil, ErrClosed
	}
	p, dir, err := m.prepareCreateLocked(k, topicID, cfg)
	if p != nil || err != nil {
		m.mu.Unlock()
		return p, err
	}
	done := make(chan struct{})
	m.creating[k] = creation{done: done, dir: dir.path}
	m.mu.Unlock()

	if m.onCreateFiles != nil {
		m.onCreateFiles(topic)
	}
	path := filepath.Join(dir.path, partitionDirName(topic, partition))
	p, err = createPartition(m, path, topic, partition, topicID, cfg)
	if err != nil {
		m.mu.Lock()
		delete(m.creating, k)
		close(done)
		m.mu.Unlock()
		if errors.Is(err, ErrStorage) {
			m.failDir(dir, err)
		}
		return nil, err
	}

	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.creating, k)
	close(done)
	if err := dir.place(p); err != nil {
		// The dir went offline since it was chosen (failDir takes no
		// Manager lock). The next create picks another dir.
		_ = p.close(false, true)
		_ = os.RemoveAll(path)
		return nil, err
	}
	m.parts[k] = p
	return p, nil
}

// creation is a partition whose files CreatePartition is writing: done
// closes when it is placed (or failed); dir is the log dir it goes to.
type creation struct {
	done chan struct{}
	dir  string
}

// waitCreatingLocked waits, releasing m.mu meanwhile, until no create of k
// is under way; m.mu held (write). It reports false once the Manager is
// closed.
func (m *Manager) waitCreatingLocked(k partKey) bool {
	for {
		if m.closed {
			return false
		}
		c, ok := m.creating[k]
		if !ok {
			return true
		}
		m.mu.Unlock()
		<-c.done
		m.mu.Lock()
	}
}

// prepareCreateLocked is the part of CreatePartition under m.mu (write):
// the existing partition of k if it has topicID (its config updated);
// otherwise, after deleting a partition of k with another topic id, the
// log dir to create k in, the one holding the fewest partitions (counting
// those being created in it).
func (m *Manager) prepareCreateLocked(k partKey, topicID [16]byte, cfg PartitionConfig) (*Partition, *logDir, error) {
	if p := m.parts[k]; p != nil {
		if p.topicID == topicID {
			p.SetConfig(cfg)
			return p, nil, nil
		}
		m.logger.Info("topic id changed, deleting old partition log", "dir", p.Dir())
		if err := m.deleteLocked(p); err != nil {
			return nil, nil, err
		}
	}
	counts := map[string]int{}
	for _, p := range m.parts {
		counts[filepath.Dir(p.Dir())]++
	}
	for _, c := range m.creating {
		counts[c.dir]++
	}
	var dir *logDir
	for _, d := range m.dirs {
		if d.offlineErr() == nil && (dir == nil || counts[d.path] < counts[dir.path]) {
			dir = d
		}
	}
	if dir == nil {
		return nil, nil, fmt.Errorf("%w: every log directory is offline", ErrStorage)
	}
	return nil, dir, nil
}

// createPartition makes a fresh partition directory with one empty segment.
func createPartition(m *Manager, path, topic string, index int32, topicID [16]byte, cfg PartitionConfig) (*Partition, error) {
	if err := os.RemoveAll(path); err != nil { // leftovers of a failed create
		return nil, err
	}
	if err := os.MkdirAll(path, 0o755); err != nil {
		return nil, err
	}
	fail := func(err error) (*Partition, error) {
		_ = os.RemoveAll(path)
		return nil, fmt.Errorf("%w: creating %s: %v", ErrStorage, path, err)
	}
	if err := writeFileAtomic(filepath.Join(path, partitionMetadataFile), encodePartitionMetadata(topicID)); err != nil {
		return fail(err)
	}
	seg, err := createSegment(path, 0)
	if err != nil {
		return fail(err)
	}
	if err := syncDir(path); err != nil {
		_ = seg.closeFiles()
		return fail(err)
	}
	if err := syncDir(filepath.Dir(path)); err != nil {
		_ = seg.closeFiles()
		return fail(err)
	}
	p := newPartition(m, path, topic, index, topicID)
	p.SetConfig(cfg)
	p.segs = []*segment{seg}
	return p, nil
}

func newPartition(m *Manager, dir, topic string, index int32, topicID [16]byte) *Partition {
	p := &Partition{
		topic: topic, index: index, topicID: topicID, m: m,
		logger:        m.logger.With("topic", topic, "partition", index),
		producers:     newProducerState(),
		firstUnstable: noUnstable,
		waitCh:        make(chan struct{}),
		lastFlush:     time.Now(),
	}
	p.dir.Store(&dir)
	p.SetConfig(DefaultPartitionConfig())
	return p
}

// DeletePartition closes the partition's log, wakes its waiters and removes
// its files. Deleting an absent partition is not an error.
func (m *Manager) DeletePartition(topic string, partition int32) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.waitCreatingLocked(partKey{topic, partition})
	p := m.parts[partKey{topic, partition}]
	if p == nil {
		return nil
	}
	return m.deleteLocked(p)
}

// deleteLocked renames the directory to a "-delete" name first, so a crash
// mid-removal never leaves a half-deleted directory that loads as a log.
// m.mu is held across the close, so a partition of the same name is not
// created until the old directory is gone; the close may wait for a
// writer whose failure is taking the dir offline, which takes no Manager
// lock (failDir). Once closed, p's dir no longer changes (a move's swap
// gives up on a closed partition), so it leaves that dir's list.
func (m *Manager) deleteLocked(p *Partition) error {
	delete(m.parts, partKey{p.topic, p.index})
	_ = p.close(false, true)
	m.dirOf(p.Dir()).leave(p)
	return m.removeDir(p.Dir())
}

// EnforceRetention applies segment.ms rolling, retention.ms and
// retention.bytes to every partition. The broker calls it periodically
// (log.retention.check.interval.ms).
func (m *Manager) EnforceRetention(now time.Time) {
	for _, p := range m.Partitions() {
		if err := p.enforceRetention(now); err != nil {
			p.logger.Error("retention", "error", err)
		}
	}
}

// FlushIfDue fsyncs partitions whose flush.ms has elapsed and refreshes
// recovery checkpoints. The broker calls it periodically.
func (m *Manager) FlushIfDue(now time.Time) {
	for _, p := range m.Partitions() {
		if err := p.flushIfDue(now); err != nil {
			p.logger.Error("periodic flush", "error", err)
		}
	}
}

// DirInfo describes one log dir for DescribeLogDirs.
type DirInfo struct {
	Path        string
	TotalBytes  int64
	UsableBytes int64
	Partitions  []PartitionInfo
	// Err is set when the dir is offline (it wraps ErrStorage, and then
	// the other fields are zero) or its file system could not be queried.
	Err error
}

// PartitionInfo is one partition's entry in DirInfo.
type PartitionInfo struct {
	Topic     string
	Partition int32
	Size      int64
}

// Dirs reports each log dir's capacity and partitions.
func (m *Manager) Dirs() []DirInfo {
	ps := m.Partitions()
	out := make([]DirInfo, 0, len(m.dirs))
	for _, d := range m.dirs {
		di := DirInfo{Path: d.path}
		if di.Err = d.offlineErr(); di.Err != nil {
			out = append(out, di)
			continue
		}
		var st syscall.Statfs_t
		if err := syscall.Statfs(d.path, &st); err != nil {
			di.Err = err
		} else {
			di.TotalBytes = int64(st.Blocks) * int64(st.Bsize)
			di.UsableBytes = int64(st.Bavail) * int64(st.Bsize)
		}
		for _, p := range ps {
			if filepath.Dir(p.Dir()) == d.path {
				di.Partitions = append(di.Partitions, PartitionInfo{Topic: p.topic, Partition: p.index, Size: p.Size()})
			}
		}
		out = append(out, di)
	}
	return out
}

// Close flushes and fsyncs every partition, writes their checkpoints and the
// clean-shutdown markers, and releases the dir locks. A dir whose partitions
// did not all close cleanly gets no marker, so the next Open recovers it.
func (m *Manager) Close() error {
	ps, wasClosed := m.markClosed()
	if wasClosed {
		return nil
	}
	m.stopMoves()

	failed := map[string]bool{}
	var errs []error
	var mu sync.Mutex
	inParallel(slices.Values(ps), maxParallelFsyncs, func(p *Partition) {
		if err := p.close(true, false); err != nil {
			mu.Lock()
			failed[filepath.Dir(p.Dir())] = true
			errs = append(errs, fmt.Errorf("closing %s: %w", p.Dir(), err))
			mu.Unlock()
		}
	})
	m.flusher.close()
	for _, d := range m.dirs {
		if failed[d.path] || d.offlineErr() != nil {
			continue
		}
		if err := writeFileAtomic(filepath.Join(d.path, cleanShutdownFile), nil); err != nil {
			errs = append(errs, err)
		}
	}
	m.releaseLocks()
	return errors.Join(errs...)
}

// inParallel calls do for every item, at most limit calls at a time, and
// returns once all have returned.
func inParallel[T any](items iter.Seq[T], limit int, do func(T)) {
	var wg sync.WaitGroup
	sem := make(chan struct{}, limit)
	for it := range items {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			do(it)
		}()
	}
	wg.Wait()
}

// markClosed marks m closed and returns the partitions it held, taken under
// its lock so that the closing runs without it; wasClosed reports that m was
// closed already.
func (m *Manager) markClosed() (ps []*Partition, wasClosed bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	wasClosed = m.closed
	m.closed = true
	// Creates under way finish first: their files are in the dirs Close
	// marks clean.
	for len(m.creating) > 0 {
		for _, c := range m.creating {
			m.mu.Unlock()
			<-c.done
			m.mu.Lock()
			break
		}
	}
	ps = make([]*Partition, 0, len(m.parts))
	for _, p := range m.parts {
		ps = append(ps, p)
	}
	return ps, wasClosed
}

// crash closes every file without flushing, checkpointing or writing
// clean-shutdown markers: the state a killed process leaves. For tests.
func (m *Manager) crash() {
	ps, _ := m.markClosed()
	m.stopMoves()
	for _, p := range ps {
		_ = p.close(false, false)
	}
	m.flusher.close()
	m.releaseLocks()
}
