package share

// batchCacheBytes bounds the log batches one key-ordered share partition
// keeps in memory (batchCache).
const batchCacheBytes = 4 * readBytes

// batchCache keeps the log batches a key-ordered share partition has read
// and still needs, with their key hashes, so that acquisition passes do not
// read and decode the same batches again and again.
//
// Why: ordering by key, at most one record per key is in flight, so a
// ShareFetch takes a few records of each batch (one per key) while the rest
// wait behind their keys, and the next fetches come back for the same
// batches. With producer batches of a megabyte, every fetch read a megabyte
// of log to hand out a few dozen records.
//
// Invariants: batches are consecutive batches of the log as read (nothing
// of the log lies between two of them, so a gap between their offsets is a
// compaction gap, as in a read), ascending; their Skip and Keys are final
// (batches are cached only below the HW, or the LSO when reading committed
// records, where neither changes); bytes is the sum of their sizes, at most
// batchCacheBytes. Batches wholly below SPSO are dropped as SPSO passes
// them. Guarded by Part.mu; cleared when the group's config changes.
type batchCache struct {
	batches []logBatch
	bytes   int
}

// clear drops every batch.
func (c *batchCache) clear() {
	clear(c.batches)
	c.batches, c.bytes = c.batches[:0], 0
}

// read returns the batches of sp's log from the one holding offset from,
// below maxOffset, within maxBytes (at least one batch), with the key
// hashes of their records: from the cache where it holds them, reading the
// log for the rest and caching what it read. sp.mu held.
func (c *batchCache) read(sp *Part, from, maxOffset int64, maxBytes int32) ([]logBatch, error) {
	c.dropBelow(sp.q.StartOffset())
	i := c.find(from)
	if i < 0 {
		// Not cached: start again from this read, unless it continues
		// the cache.
		if len(c.batches) == 0 || from != c.batches[len(c.batches)-1].span.Last+1 {
			c.clear()
		}
		i = len(c.batches)
	}
	for {
		// What the cache holds from i on, within the bounds.
		n, size := 0, 0
		for _, b := range c.batches[i:] {
			if b.span.First >= maxOffset || (n > 0 && size+len(b.data) > int(maxBytes)) {
				return c.batches[i : i+n : i+n], nil
			}
			n, size = n+1, size+len(b.data)
		}
		next := from
		if n > 0 {
			next = c.batches[len(c.batches)-1].span.Last + 1
		}
		if next >= maxOffset || (n > 0 && size >= int(maxBytes)) {
			return c.batches[i : i+n : i+n], nil
		}
		read, err := readBatches(sp, next, maxOffset, max(maxBytes-int32(size), 1))
		if err != nil || len(read) == 0 {
			return c.batches[i : i+n : i+n], err
		}
		readSize := 0
		for j := range read {
			if !read[j].span.Skip {
				read[j].indexKeys()
			}
			readSize += len(read[j].data)
		}
		if c.bytes+readSize > batchCacheBytes {
			c.trimFront(sp.q.StartOffset())
		}
		if c.bytes+readSize > batchCacheBytes {
			// Too much to keep: serve this read without caching it.
			out := append(c.batches[i:i+n:i+n], read...)
			c.clear()
			return out, nil
		}
		c.batches = append(c.batches, read...)
		c.bytes += readSize
	}
}

// trimFront cuts the records below offset start out of the first batch,
// which SPSO has passed in part: with large producer batches most of the
// cache can be records no one needs any more. Its span is kept (Acquire
// ignores what lies below SPSO).
func (c *batchCache) trimFront(start int64) {
	if len(c.batches) == 0 || c.batches[0].span.First >= start || c.batches[0].span.Skip {
		return
	}
	b := &c.batches[0]
	cut, err := b.cut(func(o int64) bool { return o >= start })
	if err != nil || cut == nil || len(cut) == len(b.data) {
		return
	}
	c.bytes -= len(b.data) - len(cut)
	b.data, b.index = cut, nil
}

// find returns the index of the cached batch holding offset o (or, past a
// compaction gap, the first batch after o), or -1 when o is outside the
// cache.
func (c *batchCache) find(o int64) int {
	if len(c.batches) == 0 || o < c.batches[0].span.First || o > c.batches[len(c.batches)-1].span.Last {
		return -1
	}
	for i, b := range c.batches {
		if b.span.Last >= o {
			return i
		}
	}
	return -1
}

// dropBelow drops the batches wholly below offset start.
func (c *batchCache) dropBelow(start int64) {
	n := 0
	for n < len(c.batches) && c.batches[n].span.Last < start {
		c.bytes -= len(c.batches[n].data)
		n++
	}
	if n > 0 {
		k := copy(c.batches, c.batches[n:])
		clear(c.batches[k:])
		c.batches = c.batches[:k]
	}
}
