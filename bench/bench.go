// Package bench runs whole-system workloads (produce throughput, consume
// throughput and paced end-to-end latency) against any Kafka-compatible
// cluster, using the franz-go client exactly as an application would.
//
// Every workload is measured from the client's point of view: produce
// throughput is timed from the first produce call to the last acknowledgement,
// consume throughput from the moment the consumer starts to the last record
// read, and end-to-end latency from the time a record was scheduled to be
// sent to the time the consumer in this same process received it.
package bench

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/shoalmq/shoal/internal/commalist"
)

// Defaults applied by the workloads to zero-valued Options fields.
const (
	DefaultTopic       = "shoal-bench"
	DefaultPartitions  = 8
	DefaultRecords     = 1_000_000
	DefaultRecordSize  = 1024
	DefaultLinger      = 5 * time.Millisecond
	DefaultRate        = 5000
	DefaultDuration    = 10 * time.Second
	progressInterval   = 250 * time.Millisecond
	latencyDrainWait   = 30 * time.Second
	latencyHeaderBytes = 16 // 8 bytes scheduled send time + 8 bytes run id
)

// MB is the unit of the MB/s figures: 2^20 bytes, as in Kafka's own
// producer and consumer performance tools.
const MB = 1 << 20

// Options configures a workload. Zero values take the defaults above, except
// Linger for Latency, which defaults to 0 (send every record at once).
type Options struct {
	// Brokers are the bootstrap addresses (host:port).
	Brokers []string
	// ClientOpts are added to every client the workload creates: the TLS
	// dialer and SASL login of a secured listener (--command-config).
	ClientOpts []kgo.Opt
	// Topic is created if missing with Partitions partitions and RF 1.
	Topic      string
	Partitions int
	// Records is the number of records to produce or consume. For Latency it
	// is an optional cap on the number sent (the run ends at whichever of
	// Records or Duration is reached first).
	Records int
	// RecordSize is the size of each record value in bytes.
	RecordSize int
	// Linger is the producer linger. A negative value means no linger.
	Linger time.Duration
	// Compression is the producer's batch codec: none (the default), gzip,
	// snappy, lz4 or zstd. The broker inflates every batch to validate it,
	// so this measures that cost end to end.
	Compression string
	// Rate is the paced send rate of Latency, in records per second.
	Rate int
	// Duration is how long Latency sends for.
	Duration time.Duration
	// Workers is the number of share-group consumers of Share and
	// ShareLatency (default DefaultWorkers).
	Workers int
	// Keys, when positive, gives produced records one of this many keys
	// (k0, k1, ...) in turn; zero produces null keys.
	Keys int
	// Ordering is the share group's share.delivery.ordering for Share
	// (empty: the broker default, none).
	Ordering string
	// Work is how long a share worker of Share spends on each record
	// before acknowledging it (zero: none), standing in for the
	// processing a real worker does.
	Work time.Duration
	// Progress, if set, is called periodically with the state of the run and
	// once more with Done set when the workload finishes.
	Progress func(Progress)
}

// Result is the outcome of one workload.
type Result struct {
	Workload      string        `json:"workload"`
	Records       int64         `json:"records"`
	Bytes         int64         `json:"bytes"`
	Elapsed       time.Duration `json:"elapsed_ns"`
	RecordsPerSec float64       `json:"records_per_sec"`
	MBPerSec      float64       `json:"mb_per_sec"`
	// Latency is the produce latency (Produce: produce call to ack), the
	// end-to-end latency (Latency: scheduled send to receipt) or a group's
	// (ProduceTxn: first produce call to commit). It is zero for Consume.
	Latency Percentiles `json:"latency"`
	// Duplicates counts records a share workload was handed more than once
	// (the records themselves are counted once in Records).
	Duplicates int64 `json:"duplicates,omitempty"`
}

func (r *Result) finish() {
	if secs := r.Elapsed.Seconds(); secs > 0 {
		r.RecordsPerSec = float64(r.Records) / secs
		r.MBPerSec = float64(r.Bytes) / MB / secs
	}
}

// String is a one-line human summary of r.
func (r Result) String() string {
	s := fmt.Sprintf("%s: %d records, %.1f MB in %s: %.0f records/s, %.1f MB/s",
		r.Workload, r.Records, float64(r.Bytes)/MB, r.Elapsed.Round(time.Millisecond),
		r.RecordsPerSec, r.MBPerSec)
	if r.Latency.Count > 0 {
		s += "; latency " + r.Latency.String()
	}
	return s
}

// Progress is a snapshot of a running workload.
type Progress struct {
	Workload string
	Records  int64
	Bytes    int64
	// Target is the number of records the workload expects to reach, or 0
	// if it is bounded by time.
	Target  int64
	Elapsed time.Duration
	// Total is the planned duration of a time-bounded workload.
	Total time.Duration
	Done  bool
}

func (o Options) withDefaults() Options {
	if o.Topic == "" {
		o.Topic = DefaultTopic
	}
	if o.Partitions <= 0 {
		o.Partitions = DefaultPartitions
	}
	if o.Records <= 0 {
		o.Records = DefaultRecords
	}
	if o.RecordSize <= 0 {
		o.RecordSize = DefaultRecordSize
	}
	if o.Linger == 0 {
		o.Linger = DefaultLinger
	}
	if o.Linger < 0 {
		o.Linger = 0
	}
	if o.Rate <= 0 {
		o.Rate = DefaultRate
	}
	return o
}

func (o Options) validate() error {
	if len(o.Brokers) == 0 {
		return errors.New("no bootstrap brokers given")
	}
	return nil
}

// Client settings shared by every workload, so that a comparison between two
// clusters runs the very same client. Batches go up to 1 MB (Kafka's default
// message.max.bytes). The producer buffers up to 50,000 records or 64 MiB:
// enough to keep a full batch ready for every partition while earlier ones
// are in flight, without queueing so deep that the produce latency measures
// the client's own buffer. Fetches ask for up to 1 MiB a partition and 50 MiB
// a request, the Kafka defaults. They are variables only so that tests can
// explore other settings.
var (
	batchMaxBytes     int32 = 1_000_000
	maxBufferedBytes        = 64 << 20
	maxBufferedRecord       = 50_000
	fetchMaxBytes     int32 = 50 << 20
	fetchPartBytes    int32 = 1 << 20
)

// codecs are the --compression choices.
var codecs = map[string]kgo.CompressionCodec{
	"":       kgo.NoCompression(),
	"none":   kgo.NoCompression(),
	"gzip":   kgo.GzipCompression(),
	"snappy": kgo.SnappyCompression(),
	"lz4":    kgo.Lz4Compression(),
	"zstd":   kgo.ZstdCompression(),
}

// ValidCompression reports whether name is a codec Options.Compression
// accepts.
func ValidCompression(name string) bool { _, ok := codecs[name]; return ok }

// connectOpts are what every client of a workload needs to reach the
// cluster: the seed brokers and o.ClientOpts.
func (o Options) connectOpts() []kgo.Opt {
	return append([]kgo.Opt{kgo.SeedBrokers(o.Brokers...)}, o.ClientOpts...)
}

// newAdminClient is a plain client of the cluster for the set-up and
// bookkeeping around a workload (topics, offsets, group configs).
func (o Options) newAdminClient() (*kgo.Client, error) {
	return kgo.NewClient(o.connectOpts()...)
}

func producerOpts(o Options, linger time.Duration) []kgo.Opt {
	return append(o.connectOpts(),
		kgo.DefaultProduceTopic(o.Topic),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerBatchCompression(codecs[o.Compression]),
		kgo.ProducerLinger(linger),
		kgo.ProducerBatchMaxBytes(batchMaxBytes),
		kgo.MaxBufferedBytes(maxBufferedBytes),
		kgo.MaxBufferedRecords(maxBufferedRecord),
	)
}

func consumerOpts(o Options) []kgo.Opt {
	return append(o.connectOpts(),
		kgo.FetchMaxBytes(fetchMaxBytes),
		kgo.FetchMaxPartitionBytes(fetchPartBytes),
	)
}

// validTopic validates o and ensures its topic exists with o.Partitions
// partitions; it returns the topic's partition count.
func (o Options) validTopic(ctx context.Context) (int, error) {
	if err := o.validate(); err != nil {
		return 0, err
	}
	return ensureTopic(ctx, o, o.Topic, o.Partitions)
}

// ensureTopic creates the topic with the given number of partitions and
// replication factor 1 unless it already exists. It returns the topic's
// partition count.
func ensureTopic(ctx context.Context, o Options, topic string, partitions int) (int, error) {
	cl, err := o.newAdminClient()
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	resp, err := adm.CreateTopic(ctx, int32(partitions), 1, nil, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return 0, fmt.Errorf("creating topic %q: %w", topic, err)
	}
	// Wait until the topic is visible in metadata with leaders for every
	// partition; a broker may answer CreateTopics before that.
	for {
		md, err := adm.Metadata(ctx, topic)
		if err != nil {
			return 0, fmt.Errorf("metadata for topic %q: %w", topic, err)
		}
		td, ok := md.Topics[topic]
		if ok && td.Err == nil && len(td.Partitions) > 0 {
			ready := true
			for _, p := range td.Partitions {
				if p.Err != nil || p.Leader < 0 {
					ready = false
				}
			}
			if ready {
				return len(td.Partitions), nil
			}
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("waiting for topic %q: %w", topic, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// payload returns n random bytes. Random content keeps the figures honest if
// a compression codec is ever switched on.
func payload(n int) []byte {
	b := make([]byte, n)
	for i := 0; i+8 <= len(b); i += 8 {
		v := rand.Uint64()
		for j := range 8 {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	for i := len(b) &^ 7; i < len(b); i++ {
		b[i] = byte(rand.Uint32())
	}
	return b
}

// startProgress reports snapshot() to fn (if not nil) every
// progressInterval until the returned stop is called. stop waits for the
// reporting goroutine to end and may be called more than once.
func startProgress(fn func(Progress), snapshot func() Progress) (stop func()) {
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		if fn == nil {
			return
		}
		t := time.NewTicker(progressInterval)
		defer t.Stop()
		for {
			select {
			case <-quit:
				return
			case <-t.C:
				fn(snapshot())
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() { close(quit) })
		<-done
	}
}

// counter tracks records and bytes of a running workload for progress lines.
type counter struct {
	records atomic.Int64
	bytes   atomic.Int64
}

func (c *counter) add(records, bytes int64) {
	c.records.Add(records)
	c.bytes.Add(bytes)
}

// ParseBrokers splits a comma-separated list of host:port addresses.
func ParseBrokers(s string) []string {
	return commalist.Split(s)
}
