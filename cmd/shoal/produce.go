package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/urfave/cli/v2"
)

func produceCommand() *cli.Command {
	return leaf(&cli.Command{
		Name:  "produce",
		Usage: "produce one record per input line to a topic",
		UsageText: `shoal produce TOPIC [--file PATH] [--key-separator SEP] [--header key=value ...]
              [--partition N] [--acks all|1|0] [--compression none|gzip|snappy|lz4|zstd]

Each line of standard input (or of --file) becomes one record; a trailing
"\r" is dropped. With --key-separator the line is split at the first SEP into
key and value (a line without SEP gets a null key). A summary goes to stderr;
the exit status is non-zero if any record failed.

examples:
  echo hello | shoal produce greetings
  shoal produce orders --file orders.txt --key-separator : --header source=import --compression zstd`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "file", Aliases: []string{"f"}, Usage: "read lines from PATH instead of standard input (shows progress on stderr)"},
			&cli.StringFlag{Name: "key-separator", Aliases: []string{"K"}, Usage: `split each line into key and value at the first SEP ("\t" for a tab)`},
			listFlag("header", []string{"H"}, "add a header key=value to every record (repeatable)"),
			&cli.StringFlag{Name: "partition", Aliases: []string{"p"}, Usage: "produce every record to partition N (default: the client's key-hash / sticky partitioner)"},
			&cli.StringFlag{Name: "acks", Value: "all", Usage: "acknowledgements to wait for: all, 1 or 0"},
			&cli.StringFlag{Name: "compression", Aliases: []string{"z"}, Value: "none", Usage: "batch compression: none, gzip, snappy, lz4 or zstd"},
		},
		Action: produce,
	})
}

// produceStats are updated from the producer's callbacks.
type produceStats struct {
	sent   atomic.Int64
	acked  atomic.Int64
	failed atomic.Int64
}

func produce(c *cli.Context) error {
	topic, err := oneArg(c, "topic name")
	if err != nil {
		return err
	}

	out, err := outputMode(c)
	if err != nil {
		return err
	}
	opts := []kgo.Opt{
		kgo.DefaultProduceTopic(topic), kgo.RecordDeliveryTimeout(30 * time.Second),
		// The broker's limit (max.message.bytes) decides what is too
		// large, and the error then names it; kgo's own 1 MB default
		// would refuse records the topic accepts.
		kgo.ProducerBatchMaxBytes(maxProduceBatchBytes),
	}
	switch strings.ToLower(c.String("acks")) {
	case "all", "-1":
		opts = append(opts, kgo.RequiredAcks(kgo.AllISRAcks()))
	case "1":
		opts = append(opts, kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite())
	case "0":
		opts = append(opts, kgo.RequiredAcks(kgo.NoAck()), kgo.DisableIdempotentWrite())
	default:
		return usageError("--acks: %q is not one of all, 1, 0", c.String("acks"))
	}
	switch strings.ToLower(c.String("compression")) {
	case "none", "":
		opts = append(opts, kgo.ProducerBatchCompression(kgo.NoCompression()))
	case "gzip":
		opts = append(opts, kgo.ProducerBatchCompression(kgo.GzipCompression()))
	case "snappy":
		opts = append(opts, kgo.ProducerBatchCompression(kgo.SnappyCompression()))
	case "lz4":
		opts = append(opts, kgo.ProducerBatchCompression(kgo.Lz4Compression()))
	case "zstd":
		opts = append(opts, kgo.ProducerBatchCompression(kgo.ZstdCompression()))
	default:
		return usageError("--compression: %q is not one of none, gzip, snappy, lz4, zstd", c.String("compression"))
	}
	partition := int32(-1)
	if c.IsSet("partition") {
		n, err := intFlagValue(c, "partition", 0, 1<<31-1)
		if err != nil {
			return err
		}
		partition = int32(n)
		opts = append(opts, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	}
	sep := strings.ReplaceAll(c.String("key-separator"), `\t`, "\t")
	if c.IsSet("key-separator") && sep == "" {
		return usageError("--key-separator: must not be empty")
	}
	hdrMap, hdrOrder, err := parseKeyValues("header", listFlagValues(c, "header"))
	if err != nil {
		return err
	}
	var headers []kgo.RecordHeader
	for _, k := range hdrOrder {
		headers = append(headers, kgo.RecordHeader{Key: k, Value: []byte(hdrMap[k])})
	}

	// Open the input before contacting the cluster: a missing file is the
	// more likely mistake.
	var (
		input io.Reader = os.Stdin
		total int64     = -1
		path            = c.String("file")
	)
	if path != "" && path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return failure("produce: %v", err)
		}
		defer f.Close()
		if st, err := f.Stat(); err == nil && st.Mode().IsRegular() {
			total = st.Size()
		}
		input = f
	}
	counter := &countingReader{r: input}

	cl, adm, err := connect(c, opts...)
	if err != nil {
		return err
	}
	defer cl.Close()
	{
		ctx, cancel := adminContext(c)
		parts, err := produceTopicPartitions(ctx, cl, topic)
		cancel()
		if err != nil {
			return err
		}
		if partition >= int32(parts) {
			return failure("produce: topic %q has no partition %d (it has %d)", topic, partition, parts)
		}
	}
	tooLarge := tooLargeExplainer(c, adm, topic)

	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
	defer stop()

	var (
		stats   produceStats
		errMu   sync.Mutex
		errOut  = c.App.ErrWriter
		started = time.Now()
	)
	var progress *progressReporter
	if path != "" && path != "-" {
		tty, interval := fileIsTerminal(os.Stderr), plainProgressInterval
		if tty {
			interval = ttyProgressInterval
		}
		progress = startProgress(errOut, tty, interval, counter, total, &stats)
	}
	report := func(line int64, err error) {
		errMu.Lock()
		defer errMu.Unlock()
		if progress != nil {
			progress.clearLine()
		}
		fmt.Fprintf(errOut, "line %d: record failed: %s\n", line, tooLarge(err))
	}

	lines := readLines(counter)
	var readErr error
	interrupted := false
loop:
	for {
		select {
		case <-ctx.Done():
			interrupted = true
			break loop
		case chunk, ok := <-lines:
			if !ok {
				break loop
			}
			if chunk.err != nil {
				readErr = chunk.err
				break loop
			}
			for i, line := range chunk.lines {
				n := chunk.first + int64(i)
				r := &kgo.Record{Headers: headers}
				if partition >= 0 {
					r.Partition = partition
				}
				if sep != "" {
					if k, v, ok := bytes.Cut(line, []byte(sep)); ok {
						r.Key, r.Value = k, v
					} else {
						r.Value = line
					}
				} else {
					r.Value = line
				}
				stats.sent.Add(1)
				// The record keeps its own context: an interrupt stops
				// reading, but records already handed over are still
				// delivered by the flush below.
				cl.Produce(context.Background(), r, func(_ *kgo.Record, err error) {
					if err != nil {
						stats.failed.Add(1)
						report(n, err)
						return
					}
					stats.acked.Add(1)
				})
			}
		}
	}

	flushCtx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	flushErr := cl.Flush(flushCtx)
	if progress != nil {
		progress.stop()
	}

	elapsed := time.Since(started)
	sent, acked, failed := stats.sent.Load(), stats.acked.Load(), stats.failed.Load()
	rate := float64(acked) / max(elapsed.Seconds(), 1e-3)
	if out == outputJSON {
		if err := writeJSON(c.App.Writer, struct {
			Topic     string  `json:"topic"`
			Produced  int64   `json:"produced"`
			Failed    int64   `json:"failed"`
			ElapsedMs int64   `json:"elapsed_ms"`
			PerSecond float64 `json:"records_per_second"`
		}{topic, acked, failed, elapsed.Milliseconds(), rate}); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(errOut, "produced %d records to %q in %s (%.0f records/s), %d failed\n",
			acked, topic, elapsed.Round(time.Millisecond), rate, failed)
	}

	switch {
	case readErr != nil:
		return failure("produce: reading input: %v", readErr)
	case flushErr != nil:
		return failure("produce: %d of %d records still unacknowledged after waiting: %s", sent-acked-failed, sent, describeErr(flushErr))
	case failed > 0:
		return failure("produce: %d of %d records failed", failed, sent)
	case interrupted:
		fmt.Fprintln(errOut, "interrupted; stopped reading input")
	}
	return nil
}

// lineChunk is a run of consecutive input lines; first is the 1-based line
// number of lines[0].
type lineChunk struct {
	first int64
	lines [][]byte
	err   error
}

// readLines reads lines in a goroutine (reading standard input cannot be
// interrupted), handing them over in chunks: a chunk is sent when it is
// full or when no more input is buffered, so interactive input is
// produced line by line while files go in bulk.
func readLines(r io.Reader) <-chan lineChunk {
	const chunkLines = 512
	out := make(chan lineChunk, 4)
	go func() {
		defer close(out)
		br := bufio.NewReaderSize(r, 1<<20)
		next := int64(1)
		chunk := lineChunk{first: next}
		flush := func() {
			if len(chunk.lines) > 0 {
				out <- chunk
			}
			chunk = lineChunk{first: next}
		}
		for {
			line, err := br.ReadBytes('\n')
			if len(line) > 0 {
				line = bytes.TrimSuffix(line, []byte("\n"))
				line = bytes.TrimSuffix(line, []byte("\r"))
				chunk.lines = append(chunk.lines, line)
				next++
				if len(chunk.lines) >= chunkLines || br.Buffered() == 0 {
					flush()
				}
			}
			if err != nil {
				flush()
				if !errors.Is(err, io.EOF) {
					out <- lineChunk{err: err}
				}
				return
			}
		}
	}()
	return out
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// fileIsTerminal reports whether f is a character device (a terminal).
func fileIsTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// progressReporter shows produce progress on stderr: one line rewritten
// in place on a terminal, a plain line every few seconds otherwise.
type progressReporter struct {
	mu       sync.Mutex
	w        io.Writer
	tty      bool
	drawn    bool
	done     chan struct{}
	finished chan struct{}
}

// Progress intervals: a terminal line is redrawn often; plain lines (a
// log file, a CI console) come less often.
const (
	ttyProgressInterval   = 250 * time.Millisecond
	plainProgressInterval = 2 * time.Second
)

func startProgress(w io.Writer, tty bool, interval time.Duration, in *countingReader, total int64, st *produceStats) *progressReporter {
	p := &progressReporter{w: w, tty: tty, done: make(chan struct{}), finished: make(chan struct{})}
	go func() {
		defer close(p.finished)
		t := time.NewTicker(interval)
		defer t.Stop()
		lastAcked, lastAt := int64(0), time.Now()
		for {
			select {
			case <-p.done:
				return
			case now := <-t.C:
				acked := st.acked.Load()
				rate := float64(acked-lastAcked) / now.Sub(lastAt).Seconds()
				lastAcked, lastAt = acked, now
				read := "read " + humanBytes(in.n.Load())
				if total >= 0 {
					pct := 100.0
					if total > 0 {
						pct = 100 * float64(in.n.Load()) / float64(total)
					}
					read += fmt.Sprintf(" / %s (%.0f%%)", humanBytes(total), pct)
				}
				msg := fmt.Sprintf("%s, %d records acked, %d failed, %.0f records/s", read, acked, st.failed.Load(), rate)
				p.mu.Lock()
				if p.tty {
					fmt.Fprintf(p.w, "\r%s\x1b[K", msg)
					p.drawn = true
				} else {
					fmt.Fprintln(p.w, msg)
				}
				p.mu.Unlock()
			}
		}
	}()
	return p
}

// clearLine erases the in-place progress line so another message can be
// printed; the next tick redraws it.
func (p *progressReporter) clearLine() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.tty && p.drawn {
		fmt.Fprint(p.w, "\r\x1b[K")
		p.drawn = false
	}
}

func (p *progressReporter) stop() {
	close(p.done)
	<-p.finished
	p.clearLine()
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// maxProduceBatchBytes is the producer's batch limit: far above any
// topic's usual max.message.bytes, below the broker's default
// socket.request.max.bytes (100 MiB).
const maxProduceBatchBytes = 64 << 20

// produceTopicPartitions returns the topic's partition count, asking for
// it as Kafka's console producer does: a Metadata request that lets the
// broker create the topic when auto.create.topics.enable is on. A new
// topic may take a moment to get a leader, so it retries until ctx ends.
func produceTopicPartitions(ctx context.Context, cl *kgo.Client, topic string) (int, error) {
	for {
		req := kmsg.NewPtrMetadataRequest()
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr(topic)
		req.Topics = append(req.Topics, rt)
		req.AllowAutoTopicCreation = true
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			return 0, failure("produce: topic %q: %s", topic, describeErr(err))
		}
		if len(resp.Topics) != 1 {
			return 0, failure("produce: topic %q: the broker answered for %d topics", topic, len(resp.Topics))
		}
		t := resp.Topics[0]
		err = kerr.ErrorForCode(t.ErrorCode)
		switch {
		case err == nil && len(t.Partitions) > 0:
			return len(t.Partitions), nil
		case errors.Is(err, kerr.UnknownTopicOrPartition):
			return 0, failure("topic %q does not exist, and the broker does not create topics on use (auto.create.topics.enable=false); create it with 'shoal topic create %s'", topic, topic)
		case err != nil && !kerr.IsRetriable(err):
			return 0, failure("produce: topic %q: %s", topic, describeErr(err))
		}
		select {
		case <-ctx.Done():
			return 0, failure("produce: topic %q: no leader yet: %s", topic, describeErr(ctx.Err()))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// tooLargeExplainer returns describeErr, except that MESSAGE_TOO_LARGE
// names the limit the record broke and the config that sets it: the
// topic's max.message.bytes (the broker's message.max.bytes by default).
// The limit is looked up once, at the first such error.
func tooLargeExplainer(c *cli.Context, adm *kadm.Client, topic string) func(error) string {
	var (
		once  sync.Once
		limit string
	)
	return func(err error) string {
		if !errors.Is(err, kerr.MessageTooLarge) {
			return describeErr(err)
		}
		once.Do(func() {
			ctx, cancel := adminContext(c)
			defer cancel()
			limit = "?"
			rcs, derr := adm.DescribeTopicConfigs(ctx, topic)
			if derr != nil {
				return
			}
			if rc, derr := rcs.On(topic, nil); derr == nil {
				for _, cfg := range rc.Configs {
					if cfg.Key == "max.message.bytes" && cfg.Value != nil {
						limit = *cfg.Value
					}
				}
			}
		})
		return fmt.Sprintf("MESSAGE_TOO_LARGE: the record's batch exceeds the topic's max.message.bytes (%s bytes); raise it with 'shoal topic alter %s --set max.message.bytes=N' (the broker-wide default is message.max.bytes)", limit, topic)
	}
}
