package broker

import (
	"context"
	"encoding/binary"
	"fmt"
	"reflect"
	"sync"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Memory held by requests. Two things bound it:
//
//   - requestMemory, queued.max.request.bytes: the bytes all requests hold
//     at once, from their frame's first byte until their response is
//     written. A request that does not fit waits, and its connection reads
//     nothing meanwhile.
//   - decodeCharge: what decoding a frame may allocate, known before kmsg
//     decodes it. kmsg checks an array count only against the bytes left
//     (one byte per element), while an element may take a hundred bytes of
//     memory: a 32 MiB Metadata frame of bogus counts made the broker
//     allocate 1.6 GB. A Produce frame, the one legitimately large request,
//     is walked first so its counts are known to be real; any other request
//     is charged its frame size times its API's worst-case expansion, and
//     refused when that exceeds socket.request.max.bytes.

// smallRequest is the charge below which a request never waits for memory:
// a bystander's produce or fetch is never held behind a large request. Such
// requests are still counted.
const smallRequest = 64 << 10

// requestMemory is the broker-wide budget of queued.max.request.bytes.
type requestMemory struct {
	// limit <= 0 is unbounded (only counted).
	limit int64
	gauge interface{ Set(float64) }

	mu sync.Mutex
	// used counts every charge; large only those above smallRequest.
	used, large int64
	// freed is closed (and replaced) whenever memory is released, waking
	// waiters to try again.
	freed chan struct{}
}

func newRequestMemory(limit int64, gauge interface{ Set(float64) }) *requestMemory {
	return &requestMemory{limit: limit, gauge: gauge, freed: make(chan struct{})}
}

// reservation is what one request holds of the budget: every byte, and of
// those the ones charged as large. A request is charged in steps (its frame
// before it is read, then what decoding it may add), so admission and
// release work on the whole reservation, never on one step alone.
type reservation struct {
	n, large int64
}

// acquire adds n bytes to r, waiting until they fit under the limit. A
// request whose charge exceeds what is left is let in when no other
// request holds a large charge (as Kafka's memory pool lets one allocation
// overshoot), so it cannot wait forever, even for memory it holds itself.
// It fails only when ctx ends; r is unchanged then.
func (p *requestMemory) acquire(ctx context.Context, r *reservation, n int64) error {
	for {
		p.mu.Lock()
		if n <= smallRequest || p.limit <= 0 || p.used+n <= p.limit || p.large == r.large {
			p.used += n
			r.n += n
			if n > smallRequest {
				p.large += n
				r.large += n
			}
			p.gauge.Set(float64(p.used))
			p.mu.Unlock()
			return nil
		}
		freed := p.freed
		p.mu.Unlock()
		select {
		case <-freed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// release returns all that r holds and empties it.
func (p *requestMemory) release(r *reservation) {
	if r.n == 0 {
		return
	}
	p.mu.Lock()
	p.used -= r.n
	p.large -= r.large
	*r = reservation{}
	p.gauge.Set(float64(p.used))
	close(p.freed)
	p.freed = make(chan struct{})
	p.mu.Unlock()
}

// decodeCharge is what decoding a frame (its header already parsed) may
// allocate beyond the frame itself, or an error when the body cannot be a
// valid request or would expand past maxExpansion.
func decodeCharge(key, version int16, body []byte, maxExpansion int64) (int64, error) {
	if key == produceKey {
		return produceCharge(version, body)
	}
	return expansionCharge(key, len(body), maxExpansion)
}

// expansionCharge charges an n-byte body of an API other than Produce its
// worst-case decode expansion, refusing it past maxExpansion.
func expansionCharge(key int16, n int, maxExpansion int64) (int64, error) {
	charge := int64(n) * expansionOf(key)
	if charge > maxExpansion {
		return 0, fmt.Errorf("%w: a %d-byte %s request could need %d bytes to decode, over socket.request.max.bytes (%d)",
			errMalformed, n, kmsg.NameForKey(key), charge, maxExpansion)
	}
	return charge, nil
}

// Go sizes of a produce request's array elements.
var (
	produceTopicSize     = int64(reflect.TypeFor[kmsg.ProduceRequestTopic]().Size())
	producePartitionSize = int64(reflect.TypeFor[kmsg.ProduceRequestTopicPartition]().Size())
)

// produceCharge walks a Produce body (v3+) without allocating: every array
// count must be backed by that many elements in the bytes. It returns what
// decoding it allocates beyond the frame: its elements and the strings kmsg
// copies (records stay in the frame).
func produceCharge(version int16, body []byte) (int64, error) {
	w := wireWalker{b: body, flexible: version >= 9}
	charge := int64(w.nullableString()) // transactional id
	w.skip(2 + 4)                       // acks, timeout
	topics := w.arrayLen()
	for range topics {
		if version >= 13 {
			w.skip(16) // topic id
		} else {
			charge += int64(w.nullableString())
		}
		parts := w.arrayLen()
		for range parts {
			w.skip(4) // partition
			w.nullableBytes()
			w.tags()
		}
		w.tags()
		charge += produceTopicSize + int64(max(parts, 0))*producePartitionSize
	}
	w.tags()
	if w.err != nil {
		return 0, fmt.Errorf("%w: Produce v%d: %v", errMalformed, version, w.err)
	}
	return charge, nil
}

// wireWalker steps over Kafka-encoded fields, recording the first error.
type wireWalker struct {
	b        []byte
	flexible bool
	err      error
}

func (w *wireWalker) fail(what string) {
	if w.err == nil {
		w.err = fmt.Errorf("%s runs past the end of the request", what)
	}
	w.b = nil
}

func (w *wireWalker) skip(n int) {
	if n < 0 || n > len(w.b) {
		w.fail("a field")
		return
	}
	w.b = w.b[n:]
}

// length reads a length prefix: int16 (strings) or int32 (bytes, arrays),
// or in a flexible version a uvarint of length+1. -1 is null.
func (w *wireWalker) length(wide bool) int {
	if w.err != nil {
		return -1
	}
	if w.flexible {
		v, n := binary.Uvarint(w.b)
		if n <= 0 || v > uint64(len(w.b)) {
			w.fail("a length")
			return -1
		}
		w.b = w.b[n:]
		return int(v) - 1
	}
	size := 2
	if wide {
		size = 4
	}
	if len(w.b) < size {
		w.fail("a length")
		return -1
	}
	v := int(int16(binary.BigEndian.Uint16(w.b)))
	if wide {
		v = int(int32(binary.BigEndian.Uint32(w.b)))
	}
	w.b = w.b[size:]
	return v
}

// nullableString steps over a string and returns its length.
func (w *wireWalker) nullableString() int {
	n := w.length(false)
	if n <= 0 {
		return 0
	}
	w.skip(n)
	return n
}

func (w *wireWalker) nullableBytes() {
	if n := w.length(true); n > 0 {
		w.skip(n)
	}
}

// arrayLen reads an array count and checks it against the bytes left; the
// caller walks the elements, so a count larger than its elements fails as
// soon as the bytes run out, before anything is allocated.
func (w *wireWalker) arrayLen() int {
	n := w.length(true)
	if n > len(w.b) {
		w.fail("an array")
		return 0
	}
	return max(n, 0)
}

func (w *wireWalker) tags() {
	if !w.flexible || w.err != nil {
		return
	}
	rest, err := skipTags(w.b)
	if err != nil {
		w.fail("tagged fields")
		return
	}
	w.b = rest
}

// expansions caches expansionOf by API key.
var expansions sync.Map

// expansionOf bounds, for requests of API key, the bytes decoding may
// allocate per byte of body. kmsg lets an array count reach the bytes left,
// and allocates the whole array before reading its elements; so each level
// of nesting may allocate, per byte left, one element of its type. The bound
// is the sum over the nesting depth of the largest element (plus a string
// header for each pointer field), plus the copy of strings and the map
// entries of unknown tagged fields (each at least two bytes on the wire).
func expansionOf(key int16) int64 {
	if f, ok := expansions.Load(key); ok {
		return f.(int64)
	}
	req := kmsg.RequestForKey(key)
	if req == nil {
		return 1
	}
	largest, depth := sliceShape(reflect.TypeOf(req).Elem(), 0)
	const tagEntry = 64 / 2 // a map entry per two bytes
	f := 1 + int64(depth+1)*largest + tagEntry
	expansions.Store(key, f)
	return f
}

// sliceShape returns the largest per-element cost of any slice reachable
// from t and the deepest slice nesting.
func sliceShape(t reflect.Type, depth int) (largest int64, maxDepth int) {
	maxDepth = depth
	switch t.Kind() {
	case reflect.Slice:
		e := t.Elem()
		if e.Kind() == reflect.Uint8 {
			return 0, depth // bytes: at most their own length
		}
		largest = elemCost(e)
		l, d := sliceShape(e, depth+1)
		return max(largest, l), max(d, depth+1)
	case reflect.Struct:
		for i := range t.NumField() {
			l, d := sliceShape(t.Field(i).Type, depth)
			largest, maxDepth = max(largest, l), max(maxDepth, d)
		}
	case reflect.Pointer:
		return sliceShape(t.Elem(), depth)
	}
	return largest, maxDepth
}

// elemCost is the memory one array element of type t takes when decoded:
// its size plus a heap string header for each pointer field.
func elemCost(t reflect.Type) int64 {
	c := int64(t.Size())
	if t.Kind() == reflect.Pointer {
		c += 16
	}
	if t.Kind() == reflect.Struct {
		for i := range t.NumField() {
			if t.Field(i).Type.Kind() == reflect.Pointer {
				c += 16
			}
		}
	}
	return c
}
