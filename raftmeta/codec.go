package raftmeta

import (
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"slices"
)

// The metadata log and snapshots use one small binary vocabulary: unsigned
// varints for lengths and counts, zig-zag varints for signed integers, and
// length-prefixed strings. Maps are written in sorted key order so that
// encoding is deterministic: the same image always yields the same snapshot
// bytes, which keeps snapshots comparable across nodes.

// errCorrupt is returned when stored or replicated bytes do not decode. It is
// never expected in practice: everything decoded was written by this package.
var errCorrupt = errors.New("raftmeta: corrupt metadata encoding")

type encoder struct{ b []byte }

func (e *encoder) u8(v byte)        { e.b = append(e.b, v) }
func (e *encoder) uvarint(v uint64) { e.b = binary.AppendUvarint(e.b, v) }
func (e *encoder) varint(v int64)   { e.b = binary.AppendVarint(e.b, v) }
func (e *encoder) i32(v int32)      { e.varint(int64(v)) }
func (e *encoder) u64(v uint64)     { e.b = binary.BigEndian.AppendUint64(e.b, v) }
func (e *encoder) uuid(v [16]byte)  { e.b = append(e.b, v[:]...) }

func (e *encoder) bool(v bool) {
	if v {
		e.u8(1)
	} else {
		e.u8(0)
	}
}

func (e *encoder) str(s string) {
	e.uvarint(uint64(len(s)))
	e.b = append(e.b, s...)
}

func (e *encoder) i32s(v []int32) { encodeList(e, v, (*encoder).i32) }

func (e *encoder) strs(v []string) { encodeList(e, v, (*encoder).str) }

// encodeList writes a count and every element of v with one; decodeList
// reads it back.
func encodeList[T any](e *encoder, v []T, one func(*encoder, T)) {
	e.uvarint(uint64(len(v)))
	for _, x := range v {
		one(e, x)
	}
}

func (e *encoder) strMap(m map[string]string) {
	encodeList(e, slices.Sorted(maps.Keys(m)), func(e *encoder, k string) {
		e.str(k)
		e.str(m[k])
	})
}

// decoder reads what encoder wrote. The first failure is sticky: later reads
// return zero values, so callers check err once at the end.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail() {
	if d.err == nil {
		d.err = errCorrupt
	}
	d.b = nil
}

func (d *decoder) u8() byte {
	if len(d.b) < 1 {
		d.fail()
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

func (d *decoder) bool() bool { return d.u8() != 0 }

func (d *decoder) uvarint() uint64 { return decodeVarint(d, binary.Uvarint) }

func (d *decoder) varint() int64 { return decodeVarint(d, binary.Varint) }

// decodeVarint reads one varint with read (binary.Uvarint or
// binary.Varint), failing on a truncated or overlong one.
func decodeVarint[T uint64 | int64](d *decoder, read func([]byte) (T, int)) T {
	v, n := read(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

// narrow returns v as T, failing the decoder when v does not fit in T.
func narrow[T int8 | int32, V int32 | int64](d *decoder, v V) T {
	if V(T(v)) != v {
		d.fail()
		return 0
	}
	return T(v)
}

func (d *decoder) i32() int32 { return narrow[int32](d, d.varint()) }

func (d *decoder) u64() uint64 {
	if len(d.b) < 8 {
		d.fail()
		return 0
	}
	v := binary.BigEndian.Uint64(d.b)
	d.b = d.b[8:]
	return v
}

func (d *decoder) uuid() (v [16]byte) {
	if len(d.b) < 16 {
		d.fail()
		return v
	}
	copy(v[:], d.b)
	d.b = d.b[16:]
	return v
}

// count reads a length and bounds it by the bytes left, assuming every
// element takes at least one byte, so corrupt input cannot force a huge
// allocation.
func (d *decoder) count() int {
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.fail()
		return 0
	}
	return int(n)
}

func (d *decoder) raw(n int) []byte {
	if n > len(d.b) {
		d.fail()
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}

func (d *decoder) str() string { return string(d.raw(d.count())) }

func (d *decoder) i32s() []int32 { return decodeList(d, (*decoder).i32) }

func (d *decoder) strs() []string { return decodeList(d, (*decoder).str) }

// decodeList reads a count and that many elements with one. It returns nil
// for an empty list so that decoded values compare equal regardless of
// whether the writer held nil or an empty slice. count bounds the
// allocation by the bytes left, as every element takes at least one.
func decodeList[T any](d *decoder, one func(*decoder) T) []T {
	n := d.count()
	if n == 0 {
		return nil
	}
	v := make([]T, n)
	for i := range v {
		v[i] = one(d)
	}
	return v
}

// strMap always returns a non-nil map (see Topic.Configs).
func (d *decoder) strMap() map[string]string {
	n := d.count()
	m := make(map[string]string, n)
	for range n {
		k := d.str()
		m[k] = d.str()
	}
	return m
}

func (d *decoder) done() error {
	if d.err != nil {
		return d.err
	}
	return nil
}

func corruptf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{errCorrupt}, args...)...)
}
