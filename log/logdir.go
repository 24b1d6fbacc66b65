package log

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
)

// Offline log directories.
//
// As in Kafka, an I/O error while writing to a log dir (a failed write,
// fsync, roll, index or checkpoint write; ENOSPC included) takes the whole
// directory offline on this broker, not just the partition that hit it: a
// disk that failed one write cannot be trusted with the next, and a full
// disk fails every partition on it soon anyway. Every partition in the dir
// then answers ErrStorage (KAFKA_STORAGE_ERROR) to appends, reads and
// syncs; Dirs reports the dir with the cause; new partitions go to the
// other dirs; and the Manager tells its owner (ManagerConfig.OnDirOffline)
// so that the controller can move leadership to replicas elsewhere. The
// offline partitions stay in the Manager, so the broker does not recreate
// them in another dir. The state lasts until the process restarts: Close
// leaves the dir without its clean-shutdown marker, so the next Open
// recovers every partition in it from its files, and a failed write was
// cut back (or is cut by recovery's CRC check) to the last whole batch.

// DirFailure describes a log dir that went offline.
type DirFailure struct {
	Path  string
	Cause error
	// Partitions are the partitions the dir held; they are offline.
	Partitions []*Partition
}

// dirOffline is the failure that took a logDir offline.
type dirOffline struct {
	err error // wraps ErrStorage, names the dir and the cause
}

// offlineErr is the error a dir's partitions answer once it is offline, or
// nil while it is online.
func (d *logDir) offlineErr() error {
	if o := d.offline.Load(); o != nil {
		return o.err
	}
	return nil
}

// dirOf returns the log dir holding a partition directory. m.dirs does not
// change after Open, so no lock is needed.
func (m *Manager) dirOf(partitionDir string) *logDir {
	return m.dirByPath(filepath.Dir(partitionDir))
}

// storageFailed takes p's log dir offline when err is a storage error from
// a write path, and returns err. Callers may hold any of p's locks except
// mu: the partitions are marked offline at once under their mu, and their
// files are closed later by a goroutine that takes the other locks.
func (p *Partition) storageFailed(err error) error {
	if err != nil && errors.Is(err, ErrStorage) {
		if d := p.m.dirOf(p.Dir()); d != nil {
			p.m.failDir(d, err)
		}
	}
	return err
}

// place records that p's files are now in d, so that a failure of d takes
// p offline. It fails with d's offline error once d is offline: failDir
// has listed d's partitions by then and would miss p.
func (d *logDir) place(p *Partition) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.offlineErr(); err != nil {
		return err
	}
	d.parts[p] = struct{}{}
	return nil
}

// leave records that p's files are no longer in d.
func (d *logDir) leave(p *Partition) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.parts, p)
}

// fail takes d offline with off and returns the partitions in it, or false
// when d was offline already. Setting offline and listing under d.mu, as
// place checks and adds under it, means every partition placed in d is
// either listed here or refused by place.
func (d *logDir) fail(off *dirOffline) ([]*Partition, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.offline.CompareAndSwap(nil, off) {
		return nil, false
	}
	ps := make([]*Partition, 0, len(d.parts))
	for p := range d.parts {
		ps = append(ps, p)
	}
	sortPartitions(ps)
	return ps, true
}

// failDir takes d offline because of cause; only the first failure counts.
// It takes no Manager lock, only d.mu and each partition's mu, because it
// runs under the failing writer's partition locks (appendMu, flushMu, or
// all of them in a move's swap) while DeletePartition may hold m.mu waiting
// for those. It must not be called with any partition's mu held.
func (m *Manager) failDir(d *logDir, cause error) {
	why := strings.TrimPrefix(cause.Error(), ErrStorage.Error()+": ")
	off := &dirOffline{err: fmt.Errorf("%w: log directory %s is offline: %s", ErrStorage, d.path, why)}
	listed, first := d.fail(off)
	if !first {
		return
	}
	if m.onDirFailing != nil {
		m.onDirFailing()
	}
	var ps []*Partition
	var names []string
	for _, p := range listed {
		if p.markOffline(off.err) {
			ps = append(ps, p)
			names = append(names, partitionDirName(p.topic, p.index))
		}
	}
	m.logger.Error(fmt.Sprintf("log directory %s is offline: %s; its partitions answer KAFKA_STORAGE_ERROR until a restart: %s",
		d.path, why, strings.Join(names, ", ")),
		"dir", d.path, "partitions", len(ps))
	go func() {
		for _, p := range ps {
			p.closeOffline()
		}
		if m.onDirOffline != nil {
			m.onDirOffline(DirFailure{Path: d.path, Cause: cause, Partitions: ps})
		}
	}()
}

// markOffline makes every later append, read and sync of p fail with err.
// It takes mu only, so it is safe under appendMu or flushMu; closeOffline
// then closes the partition and wakes its waiters. A deleted partition is
// left alone and false returned: its replica is no longer this broker's,
// so it is not reported offline (DeletePartition closes a partition before
// it leaves its dir's list).
func (p *Partition) markOffline(err error) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.deleted {
		return false
	}
	if p.offline == nil {
		p.offline = err
	}
	return true
}

// closeOffline closes a partition markOffline took offline, once no append,
// rewrite or fsync is using its files, and wakes its waiters.
func (p *Partition) closeOffline() {
	p.appendMu.Lock()
	defer p.appendMu.Unlock()
	p.flushMu.Lock()
	defer p.flushMu.Unlock()
	if p.filesClosed {
		return
	}
	p.closeFailedLocked()
}

// Offline reports whether p's log dir went offline.
func (p *Partition) Offline() bool {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.offline != nil
}
