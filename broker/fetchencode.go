package broker

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"net"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// fetchEncoder writes fetch responses without copying their record data.
//
// kmsg encodes a response into one buffer, which would copy every record
// byte read from a segment once more. Instead each partition's record data
// is swapped for a unique 16-byte marker, the (small) response is encoded,
// and the output is cut at the markers: the pieces and the real record
// slices go to the socket together with one writev. The marker's length
// prefix (an int32 before v12, a compact uvarint from v12 on) is rewritten
// for the real length. Markers start with 8 random bytes chosen at start-up,
// so they cannot collide with topic names or other response fields.
type fetchEncoder struct {
	prefix [8]byte
}

func newFetchEncoder() *fetchEncoder {
	var e fetchEncoder
	rand.Read(e.prefix[:])
	return &e
}

func (e *fetchEncoder) marker(i int) []byte {
	m := make([]byte, 16)
	copy(m, e.prefix[:])
	binary.BigEndian.PutUint64(m[8:], uint64(i))
	return m
}

func (e *fetchEncoder) encode(correlationID int32, resp *kmsg.FetchResponse) net.Buffers {
	var data [][]byte
	for i := range resp.Topics {
		for j := range resp.Topics[i].Partitions {
			p := &resp.Topics[i].Partitions[j]
			if len(p.RecordBatches) > 0 {
				data = append(data, p.RecordBatches)
				p.RecordBatches = e.marker(len(data) - 1)
			}
		}
	}
	head := encodeResponse(correlationID, resp)
	if len(data) == 0 {
		return net.Buffers{head}
	}
	flexible := resp.IsFlexible()
	out := make(net.Buffers, 0, 3*len(data)+1)
	rest := head
	total := len(head) - 4
	for i, d := range data {
		at := bytes.Index(rest, e.marker(i))
		if flexible {
			// Compact bytes: uvarint(len+1); 17 fits in one byte.
			out = append(out, rest[:at-1], binary.AppendUvarint(nil, uint64(len(d))+1))
			total += len(out[len(out)-1]) - 1
		} else {
			out = append(out, rest[:at-4], binary.BigEndian.AppendUint32(nil, uint32(len(d))))
		}
		out = append(out, d)
		total += len(d) - 16
		rest = rest[at+16:]
	}
	out = append(out, rest)
	binary.BigEndian.PutUint32(head, uint32(total))
	return out
}
