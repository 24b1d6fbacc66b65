package log

import (
	"bytes"
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"
	"time"
)

// benchBatch is ~16 KiB: 16 records of 1 KiB values.
func benchBatch(b *testing.B) []byte {
	recs := make([]testRec, 16)
	for i := range recs {
		recs[i] = testRec{key: []byte(fmt.Sprintf("key-%d", i)), value: bytes.Repeat([]byte{byte('a' + i)}, 1024), tsDelta: int64(i)}
	}
	return buildBatch(b, batchSpec{recs: recs, baseTs: testNow.UnixMilli()})
}

func benchConfig() PartitionConfig {
	cfg := DefaultPartitionConfig()
	cfg.SegmentBytes = 64 << 20
	return cfg
}

// BenchmarkAppend measures Append throughput. "nosync" leaves durability to
// the page cache (Kafka's default). "sync-pP-wW" runs W writers over P
// partitions, each waiting for Sync after every append: writers on the same
// partition share fsyncs, and fsyncs of different partitions run in one
// concurrent round.
func BenchmarkAppend(b *testing.B) {
	batch := benchBatch(b)
	h, err := ValidateProduceBatch(batch, 1<<20)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("nosync", func(b *testing.B) {
		m := openManager(b, b.TempDir())
		defer m.Close()
		p, _ := m.CreatePartition("bench", 0, testTopicID, benchConfig())
		buf := bytes.Clone(batch)
		b.SetBytes(int64(len(batch)))
		b.ResetTimer()
		for range b.N {
			// Append does not keep b after returning, so reuse one buffer.
			if _, err := p.Append(buf, h, 0, testNow); err != nil {
				b.Fatal(err)
			}
		}
	})
	for _, c := range []struct{ parts, writers int }{{1, 1}, {4, 4}, {16, 16}, {1, 8}} {
		b.Run(fmt.Sprintf("sync-p%d-w%d", c.parts, c.writers), func(b *testing.B) {
			m := openManager(b, b.TempDir())
			defer m.Close()
			ps := make([]*Partition, c.parts)
			for i := range ps {
				ps[i], _ = m.CreatePartition("bench", int32(i), testTopicID, benchConfig())
			}
			b.SetBytes(int64(len(batch)))
			b.ResetTimer()
			var wg sync.WaitGroup
			per := (b.N + c.writers - 1) / c.writers
			for w := range c.writers {
				p := ps[w%c.parts]
				wg.Add(1)
				go func() {
					defer wg.Done()
					buf := bytes.Clone(batch) // Append keeps no reference to it
					for range per {
						res, err := p.Append(buf, h, 0, testNow)
						if err == nil {
							err = p.Sync(res.LastOffset)
						}
						if err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
		})
	}
}

// BenchmarkRead measures 1 MiB fetches over a 64 MiB log (page cache hot).
func BenchmarkRead(b *testing.B) {
	batch := benchBatch(b)
	h, _ := ValidateProduceBatch(batch, 1<<20)
	m := openManager(b, b.TempDir())
	defer m.Close()
	p, _ := m.CreatePartition("bench", 0, testTopicID, benchConfig())
	for range (64 << 20) / len(batch) {
		if _, err := p.Append(bytes.Clone(batch), h, 0, testNow); err != nil {
			b.Fatal(err)
		}
	}
	leo := p.LogEndOffset()
	p.SetHighWatermark(leo)
	b.ResetTimer()
	var total int64
	off := int64(0)
	for range b.N {
		res, err := p.Read(off, 1<<20, leo, true)
		if err != nil {
			b.Fatal(err)
		}
		total += int64(len(res.Data))
		off += 16 * 61 // advance about one fetch's worth of records
		if off >= leo {
			off = 0
		}
	}
	b.SetBytes(total / int64(max(b.N, 1)))
	_ = math.MaxInt64
}

// BenchmarkValidateProduceBatch measures what validating a produced batch
// costs per codec, as the log sees a produce. "baseline" checks the header
// and CRC and appends (what produce did before records were inflated and
// walked); "full" runs ValidateProduceBatch and appends. Metrics:
// x-baseline is full's time over baseline's in the same run, validate-ns the
// validation alone.
func BenchmarkValidateProduceBatch(b *testing.B) {
	recs := make([]testRec, 16)
	for i := range recs {
		// Compressible but not trivial: a key and ~1 KiB of text.
		recs[i] = testRec{key: []byte(fmt.Sprintf("key-%d", i)), value: []byte(strings.Repeat(fmt.Sprintf("record %d payload; ", i), 60)), tsDelta: int64(i)}
	}
	for _, c := range produceCodecs {
		batch := buildBatch(b, batchSpec{recs: recs, baseTs: testNow.UnixMilli(), codec: c.codec, xerial: c.xerial})
		b.Run(c.name, func(b *testing.B) {
			m := openManager(b, b.TempDir())
			defer m.Close()
			p, _ := m.CreatePartition("bench", 0, testTopicID, benchConfig())
			buf := bytes.Clone(batch)
			run := func(validate func() (BatchHeader, error)) (total, validating time.Duration) {
				start := time.Now()
				for range b.N {
					t0 := time.Now()
					h, err := validate()
					validating += time.Since(t0)
					if err != nil {
						b.Fatal(err)
					}
					if _, err := p.Append(buf, h, 0, testNow); err != nil {
						b.Fatal(err)
					}
				}
				return time.Since(start), validating
			}
			base, _ := run(func() (BatchHeader, error) {
				h, err := ParseBatchHeader(buf)
				if err == nil && batchCRC(buf) != h.CRC {
					err = ErrCorruptMessage
				}
				return h, err
			})
			b.SetBytes(int64(len(batch)))
			b.ReportAllocs()
			b.ResetTimer()
			full, validating := run(func() (BatchHeader, error) { return ValidateProduceBatch(buf, 1<<20) })
			b.StopTimer()
			b.ReportMetric(float64(full)/float64(max(base, 1)), "x-baseline")
			b.ReportMetric(float64(validating.Nanoseconds())/float64(b.N), "validate-ns")
			b.ReportMetric(float64(len(encodeRecords(recs))), "inflated-bytes")
		})
	}
}
