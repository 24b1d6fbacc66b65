package coordruntime

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"

	"github.com/cockroachdb/pebble/v2"

	"github.com/shoalmq/shoal/coordinator"
)

// Store is the materialized state of the partitions of one internal topic
// (__consumer_offsets, __share_group_state, __transaction_state) that this
// node holds: the latest record of every key appended to (or, on a
// follower, replicated into) a partition is also written here, keyed by
// partition and record key, so a node that becomes coordinator loads a
// shard by scanning its keys instead of replaying the whole partition.
//
// The log stays the source of truth. Each partition's entry for appliedKey
// records the last log offset written to the store; loading replays the log
// from there, so store writes need no fsync of their own.
type Store struct {
	db *pebble.DB
}

// OpenStore opens (creating) the store in dir.
func OpenStore(dir string, logger *slog.Logger) (*Store, error) {
	db, err := pebble.Open(dir, &pebble.Options{Logger: storeLogger{logger}})
	if err != nil {
		return nil, fmt.Errorf("coordinator store: %w", err)
	}
	return &Store{db: db}, nil
}

// Close closes the store.
func (s *Store) Close() error { return s.db.Close() }

// Key layout: partition (4 bytes) | kind (1 byte) | record key.
const (
	kindRecord  byte = 'r'
	kindApplied byte = 'a'
)

func storeKey(partition int32, kind byte, key []byte) []byte {
	b := binary.BigEndian.AppendUint32(make([]byte, 0, 5+len(key)), uint32(partition))
	b = append(b, kind)
	return append(b, key...)
}

// Apply writes records appended at log offsets up to lastOffset. Only the
// last record of each key is written: the store keeps a key's latest value,
// and a materialization pass covers many transitions of the same key (every
// transaction of a producer rewrites its transactional id three times), so
// the store writes (and later flushes and compacts) one entry where the log
// has many.
func (s *Store) Apply(partition int32, lastOffset int64, recs []coordinator.Record) error {
	b := s.db.NewBatch()
	defer b.Close()
	seen := make(map[string]struct{}, len(recs))
	for i := len(recs) - 1; i >= 0; i-- {
		r := recs[i]
		if _, ok := seen[string(r.Key)]; ok {
			continue
		}
		seen[string(r.Key)] = struct{}{}
		k := storeKey(partition, kindRecord, r.Key)
		var err error
		if r.Value == nil {
			err = b.Delete(k, nil)
		} else {
			err = b.Set(k, r.Value, nil)
		}
		if err != nil {
			return err
		}
	}
	if err := b.Set(storeKey(partition, kindApplied, nil), binary.BigEndian.AppendUint64(nil, uint64(lastOffset)), nil); err != nil {
		return err
	}
	return b.Commit(pebble.NoSync)
}

// Applied returns the last log offset a partition's materialized records
// cover (-1: none).
func (s *Store) Applied(partition int32) (int64, error) {
	v, closer, err := s.db.Get(storeKey(partition, kindApplied, nil))
	switch {
	case errors.Is(err, pebble.ErrNotFound):
		return -1, nil
	case err != nil:
		return -1, err
	}
	defer closer.Close()
	if len(v) != 8 {
		return -1, nil
	}
	return int64(binary.BigEndian.Uint64(v)), nil
}

// Load calls fn for every materialized record of a partition and returns
// the last log offset they cover (-1: none).
func (s *Store) Load(partition int32, fn func(coordinator.Record) error) (int64, error) {
	applied, err := s.Applied(partition)
	if err != nil {
		return -1, err
	}
	lower := storeKey(partition, kindRecord, nil)
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: storeKey(partition, kindRecord+1, nil)})
	if err != nil {
		return -1, err
	}
	defer it.Close()
	for it.First(); it.Valid(); it.Next() {
		r := coordinator.Record{Key: append([]byte(nil), it.Key()[len(lower):]...), Value: append([]byte(nil), it.Value()...)}
		if err := fn(r); err != nil {
			return -1, err
		}
	}
	return applied, it.Error()
}

// Drop deletes a partition's materialized state (the partition left this
// node, or its log was truncated below what the store holds).
func (s *Store) Drop(partition int32) error {
	return s.db.DeleteRange(storeKey(partition, 0, nil), storeKey(partition+1, 0, nil), pebble.NoSync)
}

// storeLogger routes pebble's informational chatter to debug.
type storeLogger struct{ l *slog.Logger }

func (p storeLogger) Infof(format string, args ...any)  { p.l.Debug(fmt.Sprintf(format, args...)) }
func (p storeLogger) Errorf(format string, args ...any) { p.l.Error(fmt.Sprintf(format, args...)) }
func (p storeLogger) Fatalf(format string, args ...any) {
	p.l.Error(fmt.Sprintf(format, args...))
	panic(fmt.Sprintf(format, args...))
}
