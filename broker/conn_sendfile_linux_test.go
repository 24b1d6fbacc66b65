package broker

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"net"
	"os"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoalmq/shoal/log"
)

// appendBatches appends n batches of records of size bytes to p.
func appendBatches(t *testing.T, p *log.Partition, n, records, size int) {
	t.Helper()
	for range n {
		var recs []byte
		for i := range records {
			r := kmsg.Record{OffsetDelta: int32(i), Value: bytes.Repeat([]byte{byte(i)}, size)}
			r.Length = int32(len(r.AppendTo(nil)) - 1)
			recs = r.AppendTo(recs)
		}
		rb := kmsg.RecordBatch{PartitionLeaderEpoch: -1, Magic: 2, LastOffsetDelta: int32(records - 1),
			FirstTimestamp: 1000, MaxTimestamp: 1000, ProducerID: -1, ProducerEpoch: -1, FirstSequence: -1,
			NumRecords: int32(records), Records: recs}
		rb.Length = int32(log.BatchHeaderSize - 12 + len(recs))
		b := rb.AppendTo(nil)
		binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[21:], crc32.MakeTable(crc32.Castagnoli)))
		h, err := log.ParseBatchHeader(b)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.Append(b, h, 0, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	p.SetHighWatermark(p.LogEndOffset())
}

// tcpPair is both ends of a loopback TCP connection, the server end as
// a conn that sends from files.
func tcpPair(t *testing.T) (*conn, *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	return &conn{nc: server, plainTCP: true, sendFiles: true}, client.(*net.TCPConn)
}

// openPartitions makes a log of n partitions, each holding batches.
func openPartitions(t *testing.T, n int) []*log.Partition {
	m, err := log.Open(log.ManagerConfig{Dirs: []string{t.TempDir()}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	var ps []*log.Partition
	for i := range n {
		p, err := m.CreatePartition("t", int32(i), [16]byte{1}, log.DefaultPartitionConfig())
		if err != nil {
			t.Fatal(err)
		}
		appendBatches(t, p, 5+i, 1+i, 50+40*i)
		ps = append(ps, p)
	}
	return ps
}

// A response whose record sets are sent from their segment files, mixed
// with record sets in memory, puts on the wire exactly the bytes of the
// same response encoded by kmsg with every record set read into memory:
// each length prefix and the frame's size count the file ranges.
func TestFetchSentFromFilesMatchesKmsg(t *testing.T) {
	ps := openPartitions(t, 4)
	e := newFetchEncoder()
	for _, v := range []int16{4, 11, 12, 16, 18} {
		read := func(ti, p int) []byte {
			res, err := ps[ti*2+p/2].Read(int64(p), 1<<20, ps[ti*2+p/2].HighWatermark(), true)
			if err != nil {
				t.Fatal(err)
			}
			return res.Data
		}
		want := encodeResponse(7, buildFetchResponse(v, read))
		// Partitions 0 of both topics and 2 of "b" from files, 2 of
		// "a" from memory.
		var files []fileRecords
		resp := buildFetchResponse(v, func(ti, p int) []byte {
			if ti == 0 && p == 2 {
				return read(ti, p)
			}
			_, fs, err := ps[ti*2+p/2].ReadSlice(int64(p), 1<<20, true, false)
			if err != nil || fs.Size == 0 {
				t.Fatalf("slice of %d bytes: %v", fs.Size, err)
			}
			files = append(files, fileRecords{topic: ti, partition: p, slice: fs})
			return []byte{}
		})
		pieces, slices := e.encode(7, resp, files)
		if len(slices) != 3 {
			t.Fatalf("v%d: %d file ranges", v, len(slices))
		}
		c, client := tcpPair(t)
		errc := make(chan error, 1)
		go func() {
			errc <- c.sendFrame(pieces, slices)
			for i := range slices {
				slices[i].Release()
			}
			c.nc.Close()
		}()
		got, err := io.ReadAll(client)
		if err != nil || <-errc != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("v%d: sent %d bytes, kmsg encodes %d", v, len(got), len(want))
		}
	}
}

// A file range larger than the socket's buffers, to a peer that reads
// slowly, is sent whole: sendfile writes part, waits for the socket to
// drain, and goes on.
func TestSendFileToSlowPeer(t *testing.T) {
	m, err := log.Open(log.ManagerConfig{Dirs: []string{t.TempDir()}})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	p, err := m.CreatePartition("t", 0, [16]byte{1}, log.DefaultPartitionConfig())
	if err != nil {
		t.Fatal(err)
	}
	appendBatches(t, p, 40, 100, 1000)
	want, err := p.Read(0, 8<<20, p.HighWatermark(), true)
	if err != nil {
		t.Fatal(err)
	}
	_, fs, err := p.ReadSlice(0, 8<<20, true, false)
	if err != nil {
		t.Fatal(err)
	}
	defer fs.Release()
	c, client := tcpPair(t)
	c.nc.(*net.TCPConn).SetWriteBuffer(8 << 10)
	client.SetReadBuffer(8 << 10)
	errc := make(chan error, 1)
	go func() {
		errc <- c.sendFrame(net.Buffers{nil}, []log.FileSlice{fs})
		c.nc.Close()
	}()
	var got []byte
	buf := make([]byte, 1000)
	for {
		n, err := client.Read(buf)
		got = append(got, buf[:n]...)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := <-errc; err != nil || !bytes.Equal(got, want.Data) {
		t.Fatalf("sent %d of %d bytes: %v", len(got), len(want.Data), err)
	}
}

// A segment file truncated in place under a held range (a follower
// truncating to its new leader) fails the send rather than sending less
// than the frame announced.
func TestSendFileTruncatedFails(t *testing.T) {
	ps := openPartitions(t, 1)
	p := ps[0]
	_, fs, err := p.ReadSlice(0, 1<<20, true, true)
	if err != nil {
		t.Fatal(err)
	}
	defer fs.Release()
	if _, err := p.TruncateTo(2); err != nil {
		t.Fatal(err)
	}
	c, client := tcpPair(t)
	go io.Copy(io.Discard, client)
	if err := c.sendFrame(net.Buffers{[]byte("head"), nil}, []log.FileSlice{fs}); !errors.Is(err, errShortFile) {
		t.Fatalf("send from a truncated file: %v", err)
	}
}

// heldFiles counts the process's descriptors open on files whose path
// contains name.
func heldFiles(t *testing.T, name string) int {
	t.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, fd := range fds {
		if target, err := os.Readlink("/proc/self/fd/" + fd.Name()); err == nil && strings.Contains(target, name) {
			n++
		}
	}
	return n
}

// Fetch responses still to be sent when their client goes away let go of
// their segment files: once the topic is deleted no descriptor is left on
// its files.
func TestFetchFilesReleasedWhenPeerLeaves(t *testing.T) {
	// An *os.File dropped unclosed is closed when collected: without
	// collections, only a release closes the files.
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	s := startTestServer(t)
	ctx := testContext(t, 30*time.Second)
	const topic = "sendfile-released"
	adm := kadm.NewClient(testClient(t, s))
	createTopic(t, ctx, adm, 1, topic, nil)
	prod := testClient(t, s, kgo.DefaultProduceTopic(topic))
	for i := range 2000 {
		prod.Produce(ctx, &kgo.Record{Value: bytes.Repeat([]byte{byte(i)}, 1000)}, nil)
	}
	if err := prod.Flush(ctx); err != nil {
		t.Fatal(err)
	}

	c, err := net.Dial("tcp", s.Addrs()[0])
	if err != nil {
		t.Fatal(err)
	}
	c.(*net.TCPConn).SetReadBuffer(4 << 10)
	body := frameOf(sessionFetch(0, -1, topic, [16]byte{}, 0), 12)
	frame := append(binary.BigEndian.AppendUint32(nil, uint32(len(body))), body...)
	for range maxInFlight {
		if _, err := c.Write(frame); err != nil {
			t.Fatal(err)
		}
	}
	// Read part of the first response, so the broker is sending, then
	// leave with the rest unread.
	if _, err := io.ReadFull(c, make([]byte, 1000)); err != nil {
		t.Fatal(err)
	}
	c.Close()
	if _, err := adm.DeleteTopics(ctx, topic); err != nil {
		t.Fatal(err)
	}
	for heldFiles(t, topic) > 0 {
		if ctx.Err() != nil {
			t.Fatalf("%d descriptors left on the deleted topic's files", heldFiles(t, topic))
		}
		time.Sleep(10 * time.Millisecond)
	}
}
