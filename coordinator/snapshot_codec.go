package coordinator

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
)

// Building blocks of the group snapshot encodings: a string or byte slice is
// a uvarint length and the bytes; an optional string is a presence byte (0/1)
// followed by the string; a string list is a count and the strings; an
// assignment is a topic count and per topic 16 id bytes, a partition count
// and the partitions (varints).

func snapAppendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func snapAppendBytes(b, v []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
}

func snapAppendOptString(b []byte, s *string) []byte {
	if s == nil {
		return append(b, 0)
	}
	return snapAppendString(append(b, 1), *s)
}

func snapAppendStrings(b []byte, ss []string) []byte {
	b = binary.AppendUvarint(b, uint64(len(ss)))
	for _, s := range ss {
		b = snapAppendString(b, s)
	}
	return b
}

func snapAppendAssignment(b []byte, a map[[16]byte][]int32) []byte {
	ts := sortedTopicIDs(a)
	b = binary.AppendUvarint(b, uint64(len(ts)))
	for _, t := range ts {
		b = append(b, t[:]...)
		b = binary.AppendUvarint(b, uint64(len(a[t])))
		for _, p := range a[t] {
			b = binary.AppendVarint(b, int64(p))
		}
	}
	return b
}

// snapVersion checks the magic byte and the version that open an encoded
// group record or snapshot (what names it in errors) and returns the
// version, one of versions.
func snapVersion(b []byte, magic byte, what string, versions ...byte) (byte, error) {
	if len(b) < 2 || b[0] != magic {
		return 0, errors.New(what + ": bad magic")
	}
	if !slices.Contains(versions, b[1]) {
		return 0, fmt.Errorf("%s: unsupported version %d", what, b[1])
	}
	return b[1], nil
}

// snapDecoder reads the snapshot encodings. Every length is checked against
// the bytes left (each list element takes at least one byte), so a corrupt
// input cannot make it allocate more than the input's size; the first error
// sticks.
type snapDecoder struct {
	b   []byte
	err error
	// maxCount, if positive, caps every list length.
	maxCount uint64
}

// end reports the first error of the decoding of what, or the bytes left
// after it: an encoding read to the end leaves none.
func (d *snapDecoder) end(what string) error {
	if d.err != nil {
		return fmt.Errorf("%s: %w", what, d.err)
	}
	if len(d.b) != 0 {
		return fmt.Errorf("%s: %d trailing bytes", what, len(d.b))
	}
	return nil
}

func (d *snapDecoder) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("truncated or invalid %s", what)
	}
}

// take consumes the next n bytes, or fails as what when fewer are left.
func (d *snapDecoder) take(n uint64, what string) []byte {
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.b)) {
		d.fail(what)
		return nil
	}
	v := d.b[:n]
	d.b = d.b[n:]
	return v
}

// snapVarint reads a varint with read (binary.Uvarint or binary.Varint);
// one that is truncated or not within fits fails as what.
func snapVarint[T int64 | uint64](d *snapDecoder, what string, read func([]byte) (T, int), fits func(T) bool) T {
	if d.err != nil {
		return 0
	}
	v, n := read(d.b)
	if n <= 0 || !fits(v) {
		d.fail(what)
		return 0
	}
	d.b = d.b[n:]
	return v
}

func anyValue[T any](T) bool { return true }

func (d *snapDecoder) uvarint() uint64 {
	return snapVarint(d, "varint", binary.Uvarint, anyValue)
}

func (d *snapDecoder) varint() int64 {
	return snapVarint(d, "varint", binary.Varint, anyValue)
}

func (d *snapDecoder) int32() int32 {
	return int32(snapVarint(d, "int32", binary.Varint, func(v int64) bool { return v >= math.MinInt32 && v <= math.MaxInt32 }))
}

func (d *snapDecoder) uint64() uint64 {
	if v := d.take(8, "uint64"); v != nil {
		return binary.BigEndian.Uint64(v)
	}
	return 0
}

func (d *snapDecoder) byte() byte {
	if v := d.take(1, "byte"); v != nil {
		return v[0]
	}
	return 0
}

func (d *snapDecoder) flag() bool {
	v := d.take(1, "presence flag")
	if v == nil {
		return false
	}
	if v[0] > 1 {
		d.fail("presence flag")
		return false
	}
	return v[0] == 1
}

// count reads a list length.
func (d *snapDecoder) count() int {
	n := d.uvarint()
	if d.err == nil && (n > uint64(len(d.b)) || (d.maxCount > 0 && n > d.maxCount)) {
		d.fail("list length")
		return 0
	}
	return int(n)
}

func (d *snapDecoder) bytes() []byte {
	return append([]byte(nil), d.take(d.uvarint(), "string")...)
}

func (d *snapDecoder) string() string {
	return string(d.take(d.uvarint(), "string"))
}

func (d *snapDecoder) optString() *string {
	if !d.flag() {
		return nil
	}
	s := d.string()
	return &s
}

func (d *snapDecoder) strings() []string {
	n := d.count()
	out := make([]string, 0, n)
	for i := 0; i < n && d.err == nil; i++ {
		out = append(out, d.string())
	}
	return out
}

// assignment reads an assignment; partitions come back sorted and
// duplicate-free, and topics without partitions are left out.
func (d *snapDecoder) assignment() map[[16]byte][]int32 {
	n := d.count()
	out := make(map[[16]byte][]int32, n)
	for i := 0; i < n && d.err == nil; i++ {
		id := d.take(16, "topic id")
		if id == nil {
			break
		}
		t := [16]byte(id)
		np := d.count()
		ps := make([]int32, 0, np)
		for j := 0; j < np && d.err == nil; j++ {
			p := d.int32()
			if p < 0 {
				d.fail("partition")
			}
			ps = append(ps, p)
		}
		if np > 0 {
			out[t] = sortedUniquePartitions(ps)
		}
	}
	return out
}
