package broker

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"net"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoalmq/shoal/log"
)

// fetchEncoder writes Fetch and ShareFetch responses without copying their
// record data.
//
// kmsg encodes a response into one buffer, which would copy every record
// byte read from a segment once more. Instead each partition's record data
// is swapped for a unique 16-byte marker, the (small) response is encoded,
// and the output is cut at the markers: the pieces and the real record
// slices go to the socket together with one writev. The marker's length
// prefix (an int32 before v12, a compact uvarint from v12 on) is rewritten
// for the real length. Markers start with 8 random bytes chosen at start-up,
// so they cannot collide with topic names or other response fields.
//
// A record set read as a range of its segment file (fileRecords) is cut
// out the same way; its piece is left nil, for the writer to send the
// range from the file in its place (conn.sendFrame).
type fetchEncoder struct {
	prefix [8]byte
}

// fileRecords is a record set of a fetch response to be sent from its
// segment file: the range, and the partition it belongs to as indexes in
// the response's Topics and their Partitions.
type fileRecords struct {
	topic, partition int
	slice            log.FileSlice
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

// encode frames resp. files, in response order, stand in for the record
// sets of their partitions; they come back in the order of the nil pieces
// they fill.
func (e *fetchEncoder) encode(correlationID int32, resp *kmsg.FetchResponse, files []fileRecords) (net.Buffers, []log.FileSlice) {
	var data [][]byte // nil for the next of slices
	var slices []log.FileSlice
	for i := range resp.Topics {
		for j := range resp.Topics[i].Partitions {
			p := &resp.Topics[i].Partitions[j]
			switch {
			case len(files) > 0 && files[0].topic == i && files[0].partition == j:
				data = append(data, nil)
				slices = append(slices, files[0].slice)
				files = files[1:]
			case len(p.RecordBatches) > 0:
				data = append(data, p.RecordBatches)
			default:
				continue
			}
			p.RecordBatches = e.marker(len(data) - 1)
		}
	}
	return e.splice(correlationID, resp, data, slices), slices
}

// encodeShare frames a ShareFetch response the same way; its record sets
// are the share runtime's batches, never sent from files.
func (e *fetchEncoder) encodeShare(correlationID int32, resp *kmsg.ShareFetchResponse) net.Buffers {
	var data [][]byte
	for i := range resp.Topics {
		for j := range resp.Topics[i].Partitions {
			p := &resp.Topics[i].Partitions[j]
			if len(p.Records) == 0 {
				continue
			}
			data = append(data, p.Records)
			p.Records = e.marker(len(data) - 1)
		}
	}
	return e.splice(correlationID, resp, data, nil)
}

// splice encodes resp, whose record sets are markers 0 to len(data)-1, and
// cuts the output at the markers, putting data (or, for each nil, the size
// of the next of slices) in their place.
func (e *fetchEncoder) splice(correlationID int32, resp kmsg.Response, data [][]byte, slices []log.FileSlice) net.Buffers {
	head := encodeResponse(correlationID, resp)
	if len(data) == 0 {
		return net.Buffers{head}
	}
	flexible := resp.IsFlexible()
	out := make(net.Buffers, 0, 3*len(data)+1)
	rest := head
	total := len(head) - 4
	sliced := 0
	for i, d := range data {
		size := len(d)
		if d == nil {
			size = int(slices[sliced].Size)
			sliced++
		}
		at := bytes.Index(rest, e.marker(i))
		if flexible {
			// Compact bytes: uvarint(len+1); 17 fits in one byte.
			out = append(out, rest[:at-1], binary.AppendUvarint(nil, uint64(size)+1))
			total += len(out[len(out)-1]) - 1
		} else {
			out = append(out, rest[:at-4], binary.BigEndian.AppendUint32(nil, uint32(size)))
		}
		out = append(out, d)
		total += size - 16
		rest = rest[at+16:]
	}
	out = append(out, rest)
	binary.BigEndian.PutUint32(head, uint32(total))
	return out
}
