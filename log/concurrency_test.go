package log

import (
	"errors"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shoalmq/shoal/internal/testwait"
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
	var w workers
	w.Go(func() error { // writer
		defer close(stop)
		defer done.Store(true)
		for i := range batches {
			res, err := appendCopy(p, simpleBatch(t, 3, int64(i), "c"), int32(i/100))
			if err != nil {
				return err
			}
			p.SetHighWatermark(res.LastOffset + 1)
			if i%50 == 0 {
				if err := p.Sync(res.LastOffset); err != nil {
					return err
				}
			}
		}
		return nil
	})
	for r := range 2 {
		w.Go(func() error { // readers
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
					return err
				}
				h, err := ParseBatchHeader(res.Data)
				if err != nil || h.BaseOffset > off || h.LastOffset() < off || !VerifyBatchCRC(res.Data) {
					return errors.New("read returned the wrong batch")
				}
				p.OffsetForTimestamp(rng.Int64N(batches))
				p.MaxTimestamp()
			}
			return nil
		})
	}
	w.Go(func() error { // retention and DeleteRecords
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
		return nil
	})
	if err := w.Wait(); err != nil {
		t.Fatal(err)
	}
	if p.LogEndOffset() != 3*batches || p.LogStartOffset() == 0 {
		t.Fatalf("LEO %d start %d", p.LogEndOffset(), p.LogStartOffset())
	}
}

// A new partition's files are written and synced outside the manager's
// lock: while one is being created, every produce and fetch still looks its
// partition up, and other partitions are created; a second create of the
// same partition waits for the first and returns its partition, and a
// delete of it waits and then deletes it.
func TestCreatePartitionDoesNotBlockLookups(t *testing.T) {
	m := openManager(t, t.TempDir())
	defer m.Close()
	other := mustCreate(t, m, "other", 0, [16]byte{1}, DefaultPartitionConfig())
	// Creates of the topics named slow-* stop before writing their files
	// until released.
	writing, release := make(chan string, 1), make(chan struct{})
	m.onCreateFiles = func(topic string) {
		if strings.HasPrefix(topic, "slow-") {
			writing <- topic
			<-release
		}
	}
	create := func(topic string, id byte) <-chan *Partition {
		created := make(chan *Partition, 1)
		go func() {
			p, err := m.CreatePartition(topic, 0, [16]byte{id}, DefaultPartitionConfig())
			if err != nil {
				t.Error(err)
			}
			created <- p
		}()
		return created
	}
	within := func(what string, f func()) {
		t.Helper()
		done := make(chan struct{})
		go func() { f(); close(done) }()
		testwait.Recv(t, what+" to finish while another partition's files were written", done)
	}

	first := create("slow-a", 2)
	<-writing
	within("a lookup", func() {
		if m.Partition("other", 0) != other {
			t.Error("lookup of an existing partition failed")
		}
	})
	within("another create", func() {
		if _, err := m.CreatePartition("quick", 0, [16]byte{3}, DefaultPartitionConfig()); err != nil {
			t.Error(err)
		}
	})
	if m.Partition("slow-a", 0) != nil {
		t.Fatal("a partition is listed before its files are written")
	}
	second := create("slow-a", 2)
	release <- struct{}{}
	if p1, p2 := <-first, <-second; p1 == nil || p1 != p2 {
		t.Fatalf("two creates of one partition returned %p and %p, want the same partition", p1, p2)
	}

	created := create("slow-b", 4)
	<-writing
	deleted := make(chan error, 1)
	go func() { deleted <- m.DeletePartition("slow-b", 0) }()
	release <- struct{}{}
	if p := <-created; p == nil {
		t.Fatal("the create did not finish")
	}
	if err := <-deleted; err != nil {
		t.Fatal(err)
	}
	if m.Partition("slow-b", 0) != nil {
		t.Fatal("the delete that waited for the create did not delete the partition")
	}
}

// Creates running at once spread over the log dirs: a partition whose files
// are still being written counts in its dir when another create picks one.
func TestConcurrentCreatesSpreadOverDirs(t *testing.T) {
	dirs := []string{t.TempDir(), t.TempDir()}
	m := openManager(t, dirs...)
	defer m.Close()
	writing, release := make(chan struct{}), make(chan struct{})
	m.onCreateFiles = func(topic string) {
		if topic == "slow" {
			close(writing)
			<-release
		}
	}
	created := make(chan *Partition, 1)
	go func() {
		p, err := m.CreatePartition("slow", 0, [16]byte{1}, DefaultPartitionConfig())
		if err != nil {
			t.Error(err)
		}
		created <- p
	}()
	<-writing
	quick, err := m.CreatePartition("quick", 0, [16]byte{2}, DefaultPartitionConfig())
	close(release)
	if err != nil {
		t.Fatal(err)
	}
	slow := <-created
	if slow == nil {
		t.Fatal("the slow create failed")
	}
	if a, b := filepath.Dir(slow.Dir()), filepath.Dir(quick.Dir()); a == b {
		t.Fatalf("both partitions created in %s, want one in each of %v", a, dirs)
	}
}
