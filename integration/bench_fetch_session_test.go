package integration

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestBenchFetchSessions measures what incremental fetch sessions
// (KIP-227) save the broker: a consumer of 1,000 partitions of which 10
// are busy, each fetch returning one new batch from every busy partition.
// Without a session every fetch names all 1,000 partitions and its
// response carries all of them; with one, a fetch names the 10 whose
// offsets moved and its response carries only those. The broker's CPU
// time (utime+stime of its process, from /proc) per fetch is printed for
// both, measured in alternating rounds of the same run, with the ratio:
//
//	SHOAL_BENCH=1 go test -run TestBenchFetchSessions -v ./integration/
//
// SHOAL_BENCH_FETCHES sets the fetches per mode (default 3,000).
func TestBenchFetchSessions(t *testing.T) {
	skipUnlessBench(t, "the fetch session benchmark")
	const partitions, busy = 1000, 10
	fetches := benchEnvInt(t, "SHOAL_BENCH_FETCHES", 3000)
	n := startNode(t, nodeOpts{})
	topic := topicName(t, "")
	cl := n.Client(t, kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(0))
	if _, err := kadm.NewClient(cl).CreateTopic(ctxT(t, opTimeout), partitions, 1, nil, topic); err != nil {
		t.Fatal(err)
	}
	// The busy partitions are spread over the topic; each gets one batch
	// of one record per fetch to come.
	busyParts := make([]int32, busy)
	for i := range busyParts {
		busyParts[i] = int32(i * partitions / busy)
	}
	for range fetches {
		recs := make([]*kgo.Record, 0, busy)
		for _, p := range busyParts {
			recs = append(recs, &kgo.Record{Topic: topic, Partition: p, Value: []byte("0123456789abcdef0123456789abcdef")})
		}
		if err := cl.ProduceSync(ctxT(t, opTimeout), recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	rc := dialRaw(t, n.Addr())
	isBusy := map[int32]bool{}
	for _, p := range busyParts {
		isBusy[p] = true
	}
	// One batch's size: each fetch then returns exactly the next batch of
	// every busy partition.
	probe := benchFetch(topic, -1, 0, busyParts[:1], nil, 1)
	batch := int32(len(rc.request(probe, 12).(*kmsg.FetchResponse).Topics[0].Partitions[0].RecordBatches))

	type mode struct {
		name    string
		next    int64 // the next offset of the busy partitions
		session int32
		epoch   int32
		cpu     time.Duration
		wall    time.Duration
	}
	full := &mode{name: "without sessions"}
	incr := &mode{name: "with sessions"}
	fetchOnce := func(m *mode) {
		var req *kmsg.FetchRequest
		want := busy
		switch {
		case m == full:
			req = benchFetch(topic, -1, 0, partitionNumbers(partitions), isBusy, batch)
			want = partitions
		case m.session == 0:
			req = benchFetch(topic, 0, 0, partitionNumbers(partitions), isBusy, batch)
			want = partitions
		default:
			req = benchFetch(topic, m.epoch, m.session, busyParts, isBusy, batch)
		}
		for i := range req.Topics[0].Partitions {
			if isBusy[req.Topics[0].Partitions[i].Partition] {
				req.Topics[0].Partitions[i].FetchOffset = m.next
			}
		}
		resp := rc.request(req, 12).(*kmsg.FetchResponse)
		got, withData := 0, 0
		for _, rt := range resp.Topics {
			for _, rp := range rt.Partitions {
				got++
				if len(rp.RecordBatches) > 0 {
					withData++
				}
			}
		}
		if resp.ErrorCode != 0 || got != want || withData != busy {
			t.Fatalf("%s: error %d, %d partitions (%d with data), want %d (%d)", m.name, resp.ErrorCode, got, withData, want, busy)
		}
		if m != full {
			if m.session == 0 {
				m.session = resp.SessionID
			}
			m.epoch++
		}
		m.next++
	}
	const round = 100
	for done := 0; done < fetches; done += round {
		for _, m := range []*mode{full, incr} {
			cpu0, wall0 := processCPU(t, n.cmd.Process.Pid), time.Now()
			for range min(round, fetches-done) {
				fetchOnce(m)
			}
			m.cpu += processCPU(t, n.cmd.Process.Pid) - cpu0
			m.wall += time.Since(wall0)
		}
	}
	per := func(d time.Duration) time.Duration { return d / time.Duration(fetches) }
	for _, m := range []*mode{full, incr} {
		t.Logf("%-17s broker CPU %v per fetch, round trip %v per fetch", m.name, per(m.cpu), per(m.wall))
	}
	t.Logf("broker CPU per fetch, without/with sessions: %.1fx", float64(full.cpu)/float64(max(incr.cpu, time.Millisecond)))
}

// benchFetch is a Fetch v12 of parts of topic at session id and epoch,
// one batch per partition.
func benchFetch(topic string, epoch, id int32, parts []int32, busy map[int32]bool, batch int32) *kmsg.FetchRequest {
	req := kmsg.NewPtrFetchRequest()
	req.ReplicaID, req.MaxBytes, req.SessionID, req.SessionEpoch = -1, 64<<20, id, epoch
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = topic
	for _, p := range parts {
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition, rp.PartitionMaxBytes = p, batch
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	return req
}

// processCPU is a process's user plus system CPU time so far.
func processCPU(t *testing.T, pid int) time.Duration {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	// The fields after the command name: state is the first, utime the
	// 12th and stime the 13th, in clock ticks (USER_HZ, 100 on Linux).
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * 10 * time.Millisecond
}
