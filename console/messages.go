package console

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

const (
	// maxPage is the most records one browse returns.
	maxPage = 100
	// maxScan is the most records one browse reads to find a page of
	// matches when a filter is set; the page then says where to go on.
	maxScan = 2000
	// maxShown bounds the bytes of a key or value sent to the page.
	maxShown = 64 << 10
	// browseFetchBytes bounds what one fetch buffers in memory.
	browseFetchBytes = 4 << 20
	// browseIdle ends a browse when the partition yields nothing more;
	// the first fetch (which also connects and loads metadata) gets
	// browseFirst.
	browseIdle  = time.Second
	browseFirst = 5 * time.Second
)

type headerView struct {
	Key   string `json:"key"`
	Value []byte `json:"value"`
}

type messageView struct {
	Offset    int64        `json:"offset"`
	Timestamp int64        `json:"timestamp"` // unix milliseconds
	Key       []byte       `json:"key"`       // nil for a null key
	Value     []byte       `json:"value"`     // nil for a tombstone
	KeySize   int          `json:"keySize"`
	ValueSize int          `json:"valueSize"`
	Headers   []headerView `json:"headers"`
}

type messagesView struct {
	Topic     string        `json:"topic"`
	Partition int32         `json:"partition"`
	Start     int64         `json:"start"`
	End       int64         `json:"end"`
	Messages  []messageView `json:"messages"`
	// Scanned is the offset range read: [ScannedFrom, ScannedTo).
	ScannedFrom int64 `json:"scannedFrom"`
	ScannedTo   int64 `json:"scannedTo"`
	// Next is where the following page starts (oldest first: the first
	// offset not read; newest first: the offset to read below), -1 when
	// there is nothing more that way.
	Next int64 `json:"next"`
}

// browse is one parsed messages request.
type browse struct {
	topic     string
	partition int32
	offset    int64 // -1: none given
	timestamp int64 // -1: none given
	newest    bool
	limit     int
	key       string // substring the key must contain
	header    string // "name" or "name=value" a header must match
}

func parseBrowse(r *http.Request) (browse, error) {
	q := r.URL.Query()
	b := browse{topic: q.Get("topic"), key: q.Get("key"), header: q.Get("header"), newest: q.Get("order") == "newest"}
	if b.topic == "" {
		return b, badRequest("topic is required")
	}
	p, err := queryInt(r, "partition", 0)
	if err != nil || p < 0 || p > 1<<31-1 {
		return b, badRequest("partition: not a partition number")
	}
	b.partition = int32(p)
	if b.offset, err = queryInt(r, "offset", -1); err != nil {
		return b, err
	}
	if b.timestamp, err = queryInt(r, "timestamp", -1); err != nil {
		return b, err
	}
	limit, err := queryInt(r, "limit", 20)
	if err != nil {
		return b, err
	}
	b.limit = int(min(max(limit, 1), maxPage))
	return b, nil
}

// matches reports whether a record passes the key and header filters.
func (b browse) matches(rec *kgo.Record) bool {
	if b.key != "" && !bytes.Contains(rec.Key, []byte(b.key)) {
		return false
	}
	if b.header == "" {
		return true
	}
	name, value, withValue := strings.Cut(b.header, "=")
	for _, h := range rec.Headers {
		if h.Key == name && (!withValue || string(h.Value) == value) {
			return true
		}
	}
	return false
}

func (b browse) filtered() bool { return b.key != "" || b.header != "" }

// messages reads one page of a partition. Oldest first, it reads forward
// from the offset (or the first offset at or after the timestamp, or the
// log start); newest first, it reads the records just below the offset (or
// the timestamp's offset, or the log end) and returns them in reverse.
// At most one page of matching records is held; the scan is bounded by
// maxScan records.
func (c *Console) messages(ctx context.Context, k *kafkaConn, r *http.Request) (any, error) {
	b, err := parseBrowse(r)
	if err != nil {
		return nil, err
	}
	start, end, err := k.partitionBounds(ctx, b.topic, b.partition)
	if err != nil {
		return nil, err
	}
	anchor := b.offset
	if anchor < 0 && b.timestamp >= 0 {
		if anchor, err = k.offsetAfter(ctx, b.topic, b.partition, b.timestamp, end); err != nil {
			return nil, err
		}
	}
	scan := int64(b.limit)
	if b.filtered() {
		scan = maxScan
	}
	v := messagesView{Topic: b.topic, Partition: b.partition, Start: start, End: end, Messages: []messageView{}, Next: -1}
	var from, to int64
	if b.newest {
		to = end
		if anchor >= 0 {
			to = min(max(anchor, start), end)
		}
		from = max(start, to-scan)
	} else {
		from = start
		if anchor >= 0 {
			from = min(max(anchor, start), end)
		}
		to = min(end, from+scan)
	}
	v.ScannedFrom, v.ScannedTo = from, from
	if from < to {
		last, err := k.readRange(ctx, b, from, to, func(rec *kgo.Record) bool {
			if b.newest {
				// Keep the newest limit matches: the oldest drops out.
				v.Messages = append(v.Messages, messageOf(rec))
				if len(v.Messages) > b.limit {
					v.Messages = v.Messages[1:]
				}
				return true
			}
			v.Messages = append(v.Messages, messageOf(rec))
			return len(v.Messages) < b.limit
		})
		if err != nil {
			return nil, err
		}
		v.ScannedTo = last + 1
	}
	if b.newest {
		for i, j := 0, len(v.Messages)-1; i < j; i, j = i+1, j-1 {
			v.Messages[i], v.Messages[j] = v.Messages[j], v.Messages[i]
		}
		if from > start {
			v.Next = from
		}
		v.ScannedTo = to
	} else if v.ScannedTo < end {
		v.Next = v.ScannedTo
	}
	return v, nil
}

// messageOf copies what the page shows of a record, bounded by maxShown.
func messageOf(rec *kgo.Record) messageView {
	m := messageView{Offset: rec.Offset, Timestamp: rec.Timestamp.UnixMilli(), KeySize: len(rec.Key), ValueSize: len(rec.Value),
		Key: bytes.Clone(rec.Key[:min(len(rec.Key), maxShown)]), Value: bytes.Clone(rec.Value[:min(len(rec.Value), maxShown)]),
		Headers: []headerView{}}
	if rec.Key == nil {
		m.Key = nil
	}
	if rec.Value == nil {
		m.Value = nil
	}
	for _, h := range rec.Headers {
		m.Headers = append(m.Headers, headerView{Key: h.Key, Value: bytes.Clone(h.Value[:min(len(h.Value), maxShown)])})
	}
	return m
}

// readRange consumes [from, to) of a partition with a client of its own
// (as the same principal),
// calling keep for every matching record until it returns false. It
// returns the last offset read (from-1 when none). Offsets missing from
// the log (compaction, transaction markers) are skipped; the read ends at
// to, or when the partition yields nothing for browseIdle (browseFirst
// for the first fetch).
func (k *kafkaConn) readRange(ctx context.Context, b browse, from, to int64, keep func(*kgo.Record) bool) (int64, error) {
	cl, err := kgo.NewClient(append(slices.Clip(k.opts), kgo.ClientID("shoal-console-browse"),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{b.topic: {b.partition: kgo.NewOffset().At(from)}}),
		kgo.FetchMaxBytes(browseFetchBytes), kgo.FetchMaxPartitionBytes(browseFetchBytes),
		kgo.FetchMaxWait(200*time.Millisecond))...)
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	last := from - 1
	for wait := browseFirst; ; wait = browseIdle {
		pctx, cancel := context.WithTimeout(ctx, wait)
		fs := cl.PollRecords(pctx, maxPage)
		cancel()
		if ctx.Err() != nil {
			return last, ctx.Err()
		}
		got := false
		var fetchErr error
		fs.EachError(func(_ string, _ int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
				fetchErr = err
			}
		})
		if fetchErr != nil {
			return last, fetchErr
		}
		for _, rec := range fs.Records() {
			if rec.Offset >= to {
				return last, nil
			}
			got = true
			last = rec.Offset
			if b.matches(rec) && !keep(rec) {
				return last, nil
			}
			if last >= to-1 {
				return last, nil
			}
		}
		if !got {
			return last, nil
		}
	}
}

// startsEnds lists the log start and end offsets of topic's partitions.
func (k *kafkaConn) startsEnds(ctx context.Context, topic string) (starts, ends kadm.ListedOffsets, err error) {
	if starts, err = k.adm.ListStartOffsets(ctx, topic); err != nil {
		return nil, nil, err
	}
	if ends, err = k.adm.ListEndOffsets(ctx, topic); err != nil {
		return nil, nil, err
	}
	return starts, ends, nil
}

// partitionBounds returns a partition's log start and end offsets.
func (k *kafkaConn) partitionBounds(ctx context.Context, topic string, partition int32) (start, end int64, err error) {
	starts, ends, err := k.startsEnds(ctx, topic)
	if err != nil {
		return 0, 0, err
	}
	s, ok1 := starts.Lookup(topic, partition)
	e, ok2 := ends.Lookup(topic, partition)
	if !ok1 || !ok2 {
		return 0, 0, &apiError{http.StatusNotFound, topic + "/" + strconv.Itoa(int(partition)) + ": no such partition"}
	}
	if s.Err != nil {
		return 0, 0, s.Err
	}
	if e.Err != nil {
		return 0, 0, e.Err
	}
	return s.Offset, e.Offset, nil
}

// offsetAfter is the first offset whose timestamp is at or after ts (the
// end when there is none).
func (k *kafkaConn) offsetAfter(ctx context.Context, topic string, partition int32, ts, end int64) (int64, error) {
	los, err := k.adm.ListOffsetsAfterMilli(ctx, ts, topic)
	if err != nil {
		return 0, err
	}
	o, ok := los.Lookup(topic, partition)
	if !ok {
		return 0, &apiError{http.StatusNotFound, "no such partition"}
	}
	if o.Err != nil {
		return 0, o.Err
	}
	if o.Offset < 0 {
		return end, nil
	}
	return o.Offset, nil
}
