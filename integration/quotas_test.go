package integration

import (
	"context"
	"crypto/rand"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// throttleHook counts the throttled responses a client saw.
type throttleHook struct{ n atomic.Int64 }

func (h *throttleHook) OnBrokerThrottle(_ kgo.BrokerMetadata, d time.Duration, _ bool) {
	if d > 0 {
		h.n.Add(1)
	}
}

// ackMeter counts acknowledged value bytes of records acknowledged within
// [from, to).
type ackMeter struct {
	mu       sync.Mutex
	from, to time.Time
	bytes    int64
}

func (m *ackMeter) ack(n int) {
	now := time.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	if !now.Before(m.from) && now.Before(m.to) {
		m.bytes += int64(n)
	}
}

func (m *ackMeter) rate() float64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return float64(m.bytes) / m.to.Sub(m.from).Seconds()
}

// produceFlat produces value-sized records to topic as fast as the client
// lets it until ctx ends, counting acknowledged bytes in m.
func produceFlat(ctx context.Context, cl *kgo.Client, topic string, value []byte, m *ackMeter) {
	for ctx.Err() == nil {
		cl.Produce(ctx, &kgo.Record{Topic: topic, Value: value}, func(r *kgo.Record, err error) {
			if err == nil {
				m.ack(len(r.Value))
			}
		})
	}
}

// A producer with a 1 MB/s producer_byte_rate quota is held to it, while
// an unthrottled producer on the same broker keeps producing far faster.
// The windows are shortened (3 samples of 1 s, so a fresh client may burst
// 2 s worth) to keep the test short; the rate is measured over 5 s after a
// 3 s warm-up, from the client's own acknowledgements. Batches are kept
// small (64 KiB) so one acknowledgement is a small step of the measure.
func TestClientQuotaThrottlesProducer(t *testing.T) {
	n := startNode(t, nodeOpts{set: []string{"quota.window.num=3", "quota.window.size.seconds=1"}})
	adm := n.Admin(t)
	topic := topicName(t, "")
	createTopic(t, adm, topic, 1, nil)

	const quotaRate = 1 << 20
	slowID := "slow-producer"
	res, err := adm.AlterClientQuotas(ctxT(t, opTimeout), []kadm.AlterClientQuotaEntry{{
		Entity: kadm.ClientQuotaEntity{{Type: "client-id", Name: &slowID}},
		Ops:    []kadm.AlterClientQuotaOp{{Key: "producer_byte_rate", Value: quotaRate}},
	}})
	if err != nil || res[0].Err != nil {
		t.Fatalf("alter client quotas: %v %+v", err, res)
	}
	// Every broker applies the quota from its metadata image: wait until
	// this one describes it.
	waitFor(t, 10*time.Second, "quota in DescribeClientQuotas", func() (bool, string) {
		d, err := adm.DescribeClientQuotas(ctxT(t, opTimeout), true, []kadm.DescribeClientQuotaComponent{{Type: "client-id", MatchName: &slowID}})
		return err == nil && len(d) == 1 && len(d[0].Values) == 1 && d[0].Values[0].Value == quotaRate, ""
	})

	slowHook, fastHook := &throttleHook{}, &throttleHook{}
	// Uncompressed, incompressible values: the quota counts request bytes
	// and the meter counts value bytes, so they must be about the same.
	opts := []kgo.Opt{kgo.DefaultProduceTopic(topic), kgo.ProducerLinger(5 * time.Millisecond), kgo.MaxBufferedRecords(16), kgo.ProducerBatchMaxBytes(64 << 10),
		kgo.ProducerBatchCompression(kgo.NoCompression())}
	slow := n.Client(t, append(opts, kgo.ClientID(slowID), kgo.WithHooks(slowHook))...)
	fast := n.Client(t, append(opts, kgo.ClientID("fast-producer"), kgo.WithHooks(fastHook))...)

	start := time.Now()
	slowM := &ackMeter{from: start.Add(3 * time.Second), to: start.Add(8 * time.Second)}
	fastM := &ackMeter{from: slowM.from, to: slowM.to}
	ctx, cancel := context.WithDeadline(context.Background(), slowM.to)
	defer cancel()
	value := make([]byte, 10_000)
	rand.Read(value)
	var wg sync.WaitGroup
	for _, p := range []struct {
		cl *kgo.Client
		m  *ackMeter
	}{{slow, slowM}, {fast, fastM}} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			produceFlat(ctx, p.cl, topic, value, p.m)
		}()
	}
	wg.Wait()

	slowRate, fastRate := slowM.rate(), fastM.rate()
	t.Logf("throttled producer %.2f MB/s (%d throttled responses); unthrottled %.2f MB/s (%d)",
		slowRate/(1<<20), slowHook.n.Load(), fastRate/(1<<20), fastHook.n.Load())
	if slowRate < 0.8*quotaRate || slowRate > 1.2*quotaRate {
		t.Errorf("throttled producer at %.0f B/s, want within 20%% of %d", slowRate, quotaRate)
	}
	if slowHook.n.Load() == 0 {
		t.Error("the throttled producer never saw throttle_time_ms")
	}
	if fastHook.n.Load() != 0 {
		t.Errorf("the unthrottled producer was throttled %d times", fastHook.n.Load())
	}
	if fastRate < 3*quotaRate {
		t.Errorf("unthrottled producer at %.0f B/s: held back near the other client's quota", fastRate)
	}
}

// AlterClientQuotas refuses what Kafka refuses, entry by entry, with
// INVALID_REQUEST; DescribeClientQuotas filters as Kafka does.
func TestClientQuotasValidateAndDescribe(t *testing.T) {
	n := startNode(t, nodeOpts{})
	adm := n.Admin(t)
	ctx := ctxT(t, opTimeout)
	alice, ip := "alice", "10.0.0.7"
	res, err := adm.AlterClientQuotas(ctx, []kadm.AlterClientQuotaEntry{
		{Entity: kadm.ClientQuotaEntity{{Type: "user", Name: &alice}, {Type: "client-id"}}, Ops: []kadm.AlterClientQuotaOp{{Key: "consumer_byte_rate", Value: 2048}}},
		{Entity: kadm.ClientQuotaEntity{{Type: "user"}}, Ops: []kadm.AlterClientQuotaOp{{Key: "request_percentage", Value: 50}}},
		{Entity: kadm.ClientQuotaEntity{{Type: "ip", Name: &ip}}, Ops: []kadm.AlterClientQuotaOp{{Key: "connection_creation_rate", Value: 10}}},
		{Entity: kadm.ClientQuotaEntity{{Type: "user", Name: &alice}}, Ops: []kadm.AlterClientQuotaOp{{Key: "no_such_key", Value: 1}}},
		{Entity: kadm.ClientQuotaEntity{{Type: "group", Name: &alice}}, Ops: []kadm.AlterClientQuotaOp{{Key: "producer_byte_rate", Value: 1}}},
		{Entity: kadm.ClientQuotaEntity{{Type: "ip", Name: &ip}, {Type: "user", Name: &alice}}, Ops: []kadm.AlterClientQuotaOp{{Key: "connection_creation_rate", Value: 1}}},
		{Entity: kadm.ClientQuotaEntity{{Type: "ip", Name: &ip}}, Ops: []kadm.AlterClientQuotaOp{{Key: "producer_byte_rate", Value: 1}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res {
		if wantErr := i >= 3; wantErr != (r.Err != nil) || (wantErr && !errors.Is(r.Err, kerr.InvalidRequest)) {
			t.Errorf("entry %d %v: err = %v", i, r.Entity, r.Err)
		}
	}
	waitFor(t, 10*time.Second, "three quotas described", func() (bool, string) {
		d, err := adm.DescribeClientQuotas(ctx, false, nil)
		return err == nil && len(d) == 3, ""
	})
	for _, tc := range []struct {
		strict bool
		comps  []kadm.DescribeClientQuotaComponent
		want   int
	}{
		{false, []kadm.DescribeClientQuotaComponent{{Type: "user", MatchType: 2}}, 2},
		{true, []kadm.DescribeClientQuotaComponent{{Type: "user", MatchType: 2}}, 1},
		{false, []kadm.DescribeClientQuotaComponent{{Type: "user", MatchName: &alice}}, 1},
		{false, []kadm.DescribeClientQuotaComponent{{Type: "user", MatchType: 1}}, 1},
		{false, []kadm.DescribeClientQuotaComponent{{Type: "ip", MatchType: 2}}, 1},
	} {
		d, err := adm.DescribeClientQuotas(ctx, tc.strict, tc.comps)
		if err != nil || len(d) != tc.want {
			t.Errorf("describe strict=%v %+v: %d entries (%v), want %d", tc.strict, tc.comps, len(d), err, tc.want)
		}
	}
	if _, err := adm.DescribeClientQuotas(ctx, false, []kadm.DescribeClientQuotaComponent{{Type: "ip", MatchType: 2}, {Type: "user", MatchType: 2}}); !errors.Is(err, kerr.InvalidRequest) {
		t.Errorf("ip with user filter: %v, want INVALID_REQUEST", err)
	}

	// Quotas live in the metadata quorum: a restart keeps them.
	n.Stop()
	n.Restart()
	d, err := n.Admin(t).DescribeClientQuotas(ctxT(t, opTimeout), false, nil)
	if err != nil || len(d) != 3 {
		t.Fatalf("after restart: %v %v", d, err)
	}
}

// A throttled Produce or Fetch is answered at once with throttle_time_ms,
// and the connection then takes no request for that long, whether or not
// the client honours the throttle (KIP-219). The raw connection ignores it.
func TestClientQuotaMutesConnection(t *testing.T) {
	n, adm, topic, id := startNodeWithTopic(t, 1)
	clientID := "shoal-integration" // the raw connection's
	res, err := adm.AlterClientQuotas(ctxT(t, opTimeout), []kadm.AlterClientQuotaEntry{{
		Entity: kadm.ClientQuotaEntity{{Type: "client-id", Name: &clientID}},
		Ops:    []kadm.AlterClientQuotaOp{{Key: "producer_byte_rate", Value: 10_000}, {Key: "consumer_byte_rate", Value: 10_000}},
	}})
	if err != nil || res[0].Err != nil {
		t.Fatalf("alter client quotas: %v %+v", err, res)
	}
	waitFor(t, 10*time.Second, "quota described", func() (bool, string) {
		d, err := adm.DescribeClientQuotas(ctxT(t, opTimeout), false, nil)
		return err == nil && len(d) == 1, ""
	})

	rc := dialRaw(t, n.Addr())
	rc.negotiate()
	// 300 kB over the default 10 s minimum window is 30 kB/s, three times
	// the quota: the throttle is capped at one window, 1 s.
	value := make([]byte, 300_000)
	prod := rc.request(produceRequest(-1, topic, [16]byte(id), 0, recordBatch(time.Now().UnixMilli(), value)), -1).(*kmsg.ProduceResponse)
	answered := time.Now()
	if prod.ThrottleMillis != 1000 || prod.Topics[0].Partitions[0].ErrorCode != 0 {
		t.Fatalf("produce: throttle %d ms, error %d; want 1000 ms and no error", prod.ThrottleMillis, prod.Topics[0].Partitions[0].ErrorCode)
	}
	rc.request(kmsg.NewPtrApiVersionsRequest(), -1)
	if muted := time.Since(answered); muted < 900*time.Millisecond {
		t.Fatalf("the next request was answered %v after the throttled one; the connection was not muted", muted)
	}

	fetch := kmsg.NewPtrFetchRequest()
	fetch.ReplicaID, fetch.MaxBytes, fetch.MaxWaitMillis = -1, 1<<20, 0
	ft := kmsg.NewFetchRequestTopic()
	ft.Topic, ft.TopicID = topic, [16]byte(id)
	fp := kmsg.NewFetchRequestTopicPartition()
	fp.PartitionMaxBytes = 1 << 20
	ft.Partitions = append(ft.Partitions, fp)
	fetch.Topics = append(fetch.Topics, ft)
	got := rc.request(fetch, -1).(*kmsg.FetchResponse)
	if got.ThrottleMillis != 1000 || len(got.Topics[0].Partitions[0].RecordBatches) < len(value) {
		t.Fatalf("fetch: throttle %d ms, %d record bytes; want 1000 ms and the whole batch", got.ThrottleMillis, len(got.Topics[0].Partitions[0].RecordBatches))
	}
}
