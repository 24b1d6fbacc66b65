package integration

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// rawConn is a bare Kafka connection: frames are written and read by hand so
// tests control every byte.
type rawConn struct {
	t    *testing.T
	c    net.Conn
	r    *bufio.Reader
	corr int32
	// versions maps API key to the broker's [min, max], filled by
	// negotiate.
	versions map[int16][2]int16
}

func dialRaw(t *testing.T, addr string) *rawConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawConn{t: t, c: c, r: bufio.NewReader(c)}
}

// write writes b as is (the caller includes any size prefix).
func (rc *rawConn) write(b []byte) error {
	rc.c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	_, err := rc.c.Write(b)
	return err
}

// readFrame reads one size-prefixed response frame.
func (rc *rawConn) readFrame(timeout time.Duration) ([]byte, error) {
	rc.c.SetReadDeadline(time.Now().Add(timeout))
	var size [4]byte
	if _, err := io.ReadFull(rc.r, size[:]); err != nil {
		return nil, err
	}
	n := int32(binary.BigEndian.Uint32(size[:]))
	if n < 4 || n > 64<<20 {
		return nil, fmt.Errorf("response frame size %d", n)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(rc.r, body); err != nil {
		return nil, err
	}
	return body, nil
}

// expectClosed asserts the broker closes the connection within timeout.
// Bytes the broker sends before closing are ignored.
func (rc *rawConn) expectClosed(what string, timeout time.Duration) {
	rc.t.Helper()
	rc.c.SetReadDeadline(time.Now().Add(timeout))
	_, err := io.Copy(io.Discard, rc.r)
	switch {
	case err == nil, errors.Is(err, io.EOF), errors.Is(err, syscall.ECONNRESET), errors.Is(err, net.ErrClosed):
		return
	case errors.Is(err, os.ErrDeadlineExceeded):
		rc.t.Errorf("%s: connection still open %v later", what, timeout)
	default:
		// Any other read error also means the connection is unusable.
		rc.t.Logf("%s: connection ended with %v", what, err)
	}
}

// send writes req with version v (or the negotiated version when v < 0) and
// returns its correlation id.
func (rc *rawConn) send(req kmsg.Request, v int16) int32 {
	rc.t.Helper()
	if v < 0 {
		v = rc.version(req)
	}
	req.SetVersion(v)
	rc.corr++
	frame := kmsg.NewRequestFormatter(kmsg.FormatterClientID("shoal-integration")).AppendRequest(nil, req, rc.corr)
	if err := rc.write(frame); err != nil {
		rc.t.Fatalf("write %s v%d: %v", kmsg.NameForKey(req.Key()), v, err)
	}
	return rc.corr
}

// request sends req (version v, or negotiated when v < 0) and decodes the
// response.
func (rc *rawConn) request(req kmsg.Request, v int16) kmsg.Response {
	rc.t.Helper()
	return rc.receive(req, rc.send(req, v))
}

// pipeline writes every request on the connection before reading any
// response, as clients that do not await each request do, then reads the
// responses, which must come back in request order.
func (rc *rawConn) pipeline(reqs ...kmsg.Request) []kmsg.Response {
	rc.t.Helper()
	corrs := make([]int32, len(reqs))
	for i, req := range reqs {
		corrs[i] = rc.send(req, -1)
	}
	out := make([]kmsg.Response, len(reqs))
	for i, req := range reqs {
		out[i] = rc.receive(req, corrs[i])
	}
	return out
}

// receive reads and decodes the response to req, sent with correlation id
// corr.
func (rc *rawConn) receive(req kmsg.Request, corr int32) kmsg.Response {
	rc.t.Helper()
	body, err := rc.readFrame(opTimeout)
	if err != nil {
		rc.t.Fatalf("reading %s v%d response: %v", kmsg.NameForKey(req.Key()), req.GetVersion(), err)
	}
	resp := req.ResponseKind()
	resp.SetVersion(req.GetVersion())
	rest, err := skipResponseHeader(body, corr, resp)
	if err != nil {
		rc.t.Fatalf("%s v%d response: %v", kmsg.NameForKey(req.Key()), req.GetVersion(), err)
	}
	if err := resp.ReadFrom(rest); err != nil {
		rc.t.Fatalf("decoding %s v%d response: %v", kmsg.NameForKey(req.Key()), req.GetVersion(), err)
	}
	return resp
}

// skipResponseHeader checks the correlation id and skips the header's tagged
// fields (flexible responses other than ApiVersions have them).
func skipResponseHeader(body []byte, corr int32, resp kmsg.Response) ([]byte, error) {
	if len(body) < 4 {
		return nil, fmt.Errorf("short response: %d bytes", len(body))
	}
	if got := int32(binary.BigEndian.Uint32(body)); got != corr {
		return nil, fmt.Errorf("correlation id %d, want %d", got, corr)
	}
	body = body[4:]
	if resp.IsFlexible() && resp.Key() != 18 {
		n, l := binary.Uvarint(body)
		if l <= 0 {
			return nil, errors.New("bad header tag count")
		}
		body = body[l:]
		for i := uint64(0); i < n; i++ {
			_, l := binary.Uvarint(body)
			if l <= 0 {
				return nil, errors.New("bad header tag")
			}
			body = body[l:]
			size, l := binary.Uvarint(body)
			if l <= 0 || uint64(len(body)-l) < size {
				return nil, errors.New("bad header tag size")
			}
			body = body[l+int(size):]
		}
	}
	return body, nil
}

// negotiate asks the broker for its API versions (ApiVersions v3).
func (rc *rawConn) negotiate() {
	rc.t.Helper()
	req := kmsg.NewPtrApiVersionsRequest()
	req.ClientSoftwareName = "shoal-integration"
	req.ClientSoftwareVersion = "1.0.0"
	resp := rc.request(req, 3).(*kmsg.ApiVersionsResponse)
	if resp.ErrorCode != 0 {
		rc.t.Fatalf("ApiVersions v3: error %d", resp.ErrorCode)
	}
	rc.versions = map[int16][2]int16{}
	for _, k := range resp.ApiKeys {
		rc.versions[k.ApiKey] = [2]int16{k.MinVersion, k.MaxVersion}
	}
}

// version picks the highest version of req both kmsg and the broker know.
func (rc *rawConn) version(req kmsg.Request) int16 {
	rc.t.Helper()
	if rc.versions == nil {
		rc.negotiate()
	}
	r, ok := rc.versions[req.Key()]
	if !ok {
		rc.t.Fatalf("broker does not advertise %s", kmsg.NameForKey(req.Key()))
	}
	v := min(r[1], req.MaxVersion())
	if v < r[0] {
		rc.t.Fatalf("no common version of %s: broker %d..%d, client ..%d", kmsg.NameForKey(req.Key()), r[0], r[1], req.MaxVersion())
	}
	return v
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// recordBatch encodes an uncompressed, non-idempotent v2 record batch with
// one record per value, all with timestamp ts and no key or headers.
func recordBatch(ts int64, values ...[]byte) []byte {
	return producerBatch(-1, -1, -1, ts, values...)
}

// producerBatch is recordBatch with the idempotent producer fields set.
func producerBatch(producerID int64, epoch int16, firstSeq int32, ts int64, values ...[]byte) []byte {
	return encodeBatch(producerID, epoch, firstSeq, ts, make([]int64, len(values)), values)
}

// timedBatch is recordBatch of one record per delta, record i stamped
// ts+deltas[i] with value "v<i>".
func timedBatch(ts int64, deltas ...int64) []byte {
	values := make([][]byte, len(deltas))
	for i := range values {
		values[i] = fmt.Appendf(nil, "v%d", i)
	}
	return encodeBatch(-1, -1, -1, ts, deltas, values)
}

// encodeBatch encodes a v2 batch of one record per value, record i stamped
// ts+deltas[i], with no key or headers.
func encodeBatch(producerID int64, epoch int16, firstSeq int32, ts int64, deltas []int64, values [][]byte) []byte {
	var recs []byte
	maxTs := ts
	for i, v := range values {
		body := []byte{0} // attributes
		body = binary.AppendVarint(body, deltas[i])
		body = binary.AppendVarint(body, int64(i))
		body = binary.AppendVarint(body, -1) // null key
		body = binary.AppendVarint(body, int64(len(v)))
		body = append(body, v...)
		body = binary.AppendVarint(body, 0) // no headers
		recs = binary.AppendVarint(recs, int64(len(body)))
		recs = append(recs, body...)
		maxTs = max(maxTs, ts+deltas[i])
	}
	b := kmsg.RecordBatch{
		PartitionLeaderEpoch: -1,
		Magic:                2,
		LastOffsetDelta:      int32(len(values) - 1),
		FirstTimestamp:       ts,
		MaxTimestamp:         maxTs,
		ProducerID:           producerID,
		ProducerEpoch:        epoch,
		FirstSequence:        firstSeq,
		NumRecords:           int32(len(values)),
		Records:              recs,
	}
	raw := b.AppendTo(nil)
	binary.BigEndian.PutUint32(raw[8:], uint32(len(raw)-12))
	binary.BigEndian.PutUint32(raw[17:], crc32.Checksum(raw[21:], castagnoli))
	return raw
}

// produceRequest is a Produce request of one batch to topic/partition,
// with a 10s timeout.
func produceRequest(acks int16, topic string, topicID [16]byte, partition int32, batch []byte) *kmsg.ProduceRequest {
	req := kmsg.NewPtrProduceRequest()
	req.Acks = acks
	req.TimeoutMillis = 10000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rt.TopicID = topicID
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Partition = partition
	rp.Records = batch
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return req
}

// produceRaw sends one batch to topic/partition with acks=-1 and returns the
// partition's error code and base offset.
func (rc *rawConn) produceRaw(topic string, topicID [16]byte, partition int32, batch []byte) (int16, int64) {
	rc.t.Helper()
	resp := rc.request(produceRequest(-1, topic, topicID, partition, batch), -1).(*kmsg.ProduceResponse)
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		rc.t.Fatalf("produce response has %d topics, want 1 with 1 partition", len(resp.Topics))
	}
	p := resp.Topics[0].Partitions[0]
	return p.ErrorCode, p.BaseOffset
}
