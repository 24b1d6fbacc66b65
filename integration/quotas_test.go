package integration

import (
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
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
// The windows are shortened (2 samples of 1 s) to keep the test short; the
// rate is measured over 8 s after a 3 s warm-up, from the client's own
// acknowledgements. A client the machine's load stalls for a moment may
// catch up by about one window's worth of bytes afterwards, so the measure
// spans eight windows to keep that within the 20% bound. Batches are kept
// small (64 KiB) so one acknowledgement is a small step of the measure.
func TestClientQuotaThrottlesProducer(t *testing.T) {
	n, adm, topic, _ := startNodeWithTopic(t, nodeOpts{set: []string{"quota.window.num=2", "quota.window.size.seconds=1"}}, 1)

	const quotaRate = 1 << 20
	slowID := "slow-producer"
	setClientQuota(t, adm, "client-id", slowID, "producer_byte_rate", quotaRate)

	slowHook, fastHook := &throttleHook{}, &throttleHook{}
	// Uncompressed, incompressible values: the quota counts request bytes
	// and the meter counts value bytes, so they must be about the same.
	opts := []kgo.Opt{kgo.DefaultProduceTopic(topic), kgo.ProducerLinger(5 * time.Millisecond), kgo.MaxBufferedRecords(16), kgo.ProducerBatchMaxBytes(64 << 10),
		kgo.ProducerBatchCompression(kgo.NoCompression())}
	slow := n.Client(t, append(opts, kgo.ClientID(slowID), kgo.WithHooks(slowHook))...)
	fast := n.Client(t, append(opts, kgo.ClientID("fast-producer"), kgo.WithHooks(fastHook))...)

	start := time.Now()
	slowM := &ackMeter{from: start.Add(3 * time.Second), to: start.Add(11 * time.Second)}
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
	n, adm, topic, id := startNodeWithTopic(t, nodeOpts{}, 1)
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

// setClientQuota sets key=value on the entity typ/name and waits until
// the node describes it.
func setClientQuota(t *testing.T, adm *kadm.Client, typ, name, key string, value float64) {
	t.Helper()
	res, err := adm.AlterClientQuotas(ctxT(t, opTimeout), []kadm.AlterClientQuotaEntry{{
		Entity: kadm.ClientQuotaEntity{{Type: typ, Name: &name}},
		Ops:    []kadm.AlterClientQuotaOp{{Key: key, Value: value}},
	}})
	if err != nil || res[0].Err != nil {
		t.Fatalf("alter client quotas: %v %+v", err, res)
	}
	waitFor(t, 10*time.Second, key+" in DescribeClientQuotas", func() (bool, string) {
		d, err := adm.DescribeClientQuotas(ctxT(t, opTimeout), true, []kadm.DescribeClientQuotaComponent{{Type: typ, MatchName: &name}})
		return err == nil && len(d) == 1 && len(d[0].Values) == 1 && d[0].Values[0].Value == value, ""
	})
}

// A client with a small request_percentage sending cheap requests back to
// back is throttled and its requests' handling time held near the quota
// (the broker's own measure, shoal_client_quota_rate), while an unquoted
// client on the same broker is never throttled and gets far more done.
func TestClientQuotaRequestPercentage(t *testing.T) {
	n := startNode(t, nodeOpts{set: []string{"quota.window.num=3", "quota.window.size.seconds=1"}})
	adm := n.Admin(t)
	// A Metadata request takes microseconds: 0.2% of a thread (2 ms a
	// second) is a few hundred of them a second, well below what one
	// client sending them back to back asks for.
	const quotaPct = 0.2
	setClientQuota(t, adm, "client-id", "busy-client", "request_percentage", quotaPct)

	busyHook, freeHook := &throttleHook{}, &throttleHook{}
	busy := n.Client(t, kgo.ClientID("busy-client"), kgo.WithHooks(busyHook))
	free := n.Client(t, kgo.ClientID("free-client"), kgo.WithHooks(freeHook))
	var busyN, freeN atomic.Int64
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for _, c := range []struct {
		cl *kgo.Client
		n  *atomic.Int64
	}{{busy, &busyN}, {free, &freeN}} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				if _, err := c.cl.Request(ctx, kmsg.NewPtrMetadataRequest()); err == nil {
					c.n.Add(1)
				}
			}
		}()
	}
	// After the warm-up (two whole windows may burst), the measured rate
	// stays near the quota while the client keeps asking.
	time.Sleep(4 * time.Second)
	var sum, worst float64
	var samples int
	series := `shoal_client_quota_rate{entity="clients/busy-client",key="request_percentage"}`
	for ctx.Err() == nil {
		v := metricValue(t, n, series)
		sum, worst, samples = sum+v, max(worst, v), samples+1
		time.Sleep(250 * time.Millisecond)
	}
	wg.Wait()
	mean := sum / float64(max(samples, 1))
	t.Logf("busy client: %d requests, %d throttled, measured %.2f%% of a thread on average (at most %.2f%%); free client: %d requests, %d throttled",
		busyN.Load(), busyHook.n.Load(), mean, worst, freeN.Load(), freeHook.n.Load())
	if busyHook.n.Load() == 0 {
		t.Error("the quoted client never saw throttle_time_ms")
	}
	// Generous bounds: on a loaded machine one slow request moves the
	// measure by a good part of so small a quota.
	if mean < 0.25*quotaPct || mean > 2*quotaPct {
		t.Errorf("measured request time %.2f%% of a thread on average, want near the %.1f%% quota", mean, quotaPct)
	}
	if freeHook.n.Load() != 0 {
		t.Errorf("the unquoted client was throttled %d times", freeHook.n.Load())
	}
	if freeN.Load() < 3*busyN.Load() {
		t.Errorf("unquoted client %d requests, quoted %d: the quota held back nobody", freeN.Load(), busyN.Load())
	}
}

// connectAndAsk opens a connection from the address from to addr, sends
// ApiVersions and reports whether it was answered (false: the broker
// closed the connection without an answer).
func connectAndAsk(from, addr string) (bool, error) {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 10 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		return false, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	req := kmsg.NewPtrApiVersionsRequest()
	if _, err := c.Write(kmsg.NewRequestFormatter(kmsg.FormatterClientID("conn-rate")).AppendRequest(nil, req, 1)); err != nil {
		return false, nil // closed before the write: refused
	}
	var size [4]byte
	_, err = io.ReadFull(c, size[:])
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, io.EOF), errors.Is(err, syscall.ECONNRESET):
		return false, nil
	}
	return false, err
}

// connMeter opens connections from one address with four dialers, each at
// most one per pace (so a bystander cannot use up the ephemeral ports),
// until ctx ends, and counts those answered from `from` (the time the
// meter starts counting) on, and those the broker closed.
type connMeter struct {
	answered, closed atomic.Int64
	from             time.Time
}

func (m *connMeter) run(t *testing.T, ctx context.Context, wg *sync.WaitGroup, ip, addr string, pace time.Duration) {
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(pace)
			defer tick.Stop()
			for ctx.Err() == nil {
				select {
				case <-tick.C:
				case <-ctx.Done():
					return
				}
				ok, err := connectAndAsk(ip, addr)
				if err != nil {
					t.Errorf("connection from %s: %v", ip, err)
					return
				}
				switch {
				case !ok:
					m.closed.Add(1)
				case time.Now().After(m.from) && ctx.Err() == nil:
					m.answered.Add(1)
				}
			}
		}()
	}
}

// A connection_creation_rate quota on an address holds the connections it
// gets served near the quota, closing the rest after a throttle, while
// another address is not affected; max.connection.creation.rate, set at
// runtime, holds the whole broker's accepts near it, delaying connections
// rather than refusing them.
func TestConnectionCreationRate(t *testing.T) {
	n := startNode(t, nodeOpts{set: []string{"quota.window.num=3", "quota.window.size.seconds=1"}})
	adm := n.Admin(t)
	const quotaRate = 5
	setClientQuota(t, adm, "ip", "127.0.0.2", "connection_creation_rate", quotaRate)

	// Measured over 5 s after a 3 s warm-up (two whole windows may burst).
	measure := func(pace time.Duration, ips ...string) []*connMeter {
		start := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), 8*time.Second)
		defer cancel()
		var wg sync.WaitGroup
		var ms []*connMeter
		for _, ip := range ips {
			m := &connMeter{from: start.Add(3 * time.Second)}
			m.run(t, ctx, &wg, ip, n.Addr(), pace)
			ms = append(ms, m)
		}
		wg.Wait()
		return ms
	}
	rate := func(m *connMeter) float64 { return float64(m.answered.Load()) / 5 }
	ms := measure(20*time.Millisecond, "127.0.0.2", "127.0.0.3")
	quoted, other := ms[0], ms[1]
	t.Logf("ip quota: quoted address %.1f conn/s answered, %d closed; other address %.1f conn/s, %d closed",
		rate(quoted), quoted.closed.Load(), rate(other), other.closed.Load())
	if r := rate(quoted); r < 0.5*quotaRate || r > 1.6*quotaRate {
		t.Errorf("quoted address served %.1f connections/s, want near %d", r, quotaRate)
	}
	if quoted.closed.Load() == 0 {
		t.Error("no connection of the quoted address was closed")
	}
	if other.closed.Load() != 0 || rate(other) < 3*quotaRate {
		t.Errorf("other address: %.1f connections/s, %d closed; want unthrottled", rate(other), other.closed.Load())
	}
	if got := metricValue(t, n, `shoal_connections_refused_total{reason="connection_creation_rate"}`); got != float64(quoted.closed.Load()) {
		t.Errorf("refused counter %v, want %d", got, quoted.closed.Load())
	}

	// The broker-wide rate, as a cluster-wide dynamic config.
	v := strconv.Itoa(quotaRate)
	rs, err := adm.AlterBrokerConfigs(ctxT(t, opTimeout), []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "max.connection.creation.rate", Value: &v}})
	if err != nil || rs[0].Err != nil {
		t.Fatalf("set max.connection.creation.rate: %v %+v", err, rs)
	}
	waitFor(t, 10*time.Second, "max.connection.creation.rate applied", func() (bool, string) {
		c, _ := brokerConfig(t, adm, "max.connection.creation.rate")
		return c.MaybeValue() == v, c.MaybeValue()
	})
	wide := measure(time.Millisecond, "127.0.0.3")[0]
	t.Logf("broker-wide rate: %.1f conn/s answered, %d closed", rate(wide), wide.closed.Load())
	if r := rate(wide); r < 0.5*quotaRate || r > 1.6*quotaRate {
		t.Errorf("broker accepted %.1f connections/s, want near %d", r, quotaRate)
	}
	if wide.closed.Load() != 0 {
		t.Errorf("%d connections closed under the broker-wide rate, which delays rather than refuses", wide.closed.Load())
	}
	if metricValue(t, n, "shoal_connection_accept_throttle_seconds_total") == 0 {
		t.Error("no accept throttle time counted")
	}
}

// ShareFetch responses count against consumer_byte_rate as Fetch
// responses do: the share fetch that hands out more than the quota allows
// is answered with throttle_time_ms and the connection muted for that
// long.
func TestClientQuotaThrottlesShareFetch(t *testing.T) {
	n, topic, group, admin := startShareTopic(t, 1, "share.auto.offset.reset=earliest")
	adm := kadmOf(admin)
	td, err := adm.ListTopics(ctxT(t, opTimeout), topic)
	if err != nil {
		t.Fatal(err)
	}
	id := td[topic].ID
	value := make([]byte, 300_000)
	if code, _ := dialRaw(t, n.Addr()).produceRaw(topic, [16]byte(id), 0, recordBatch(time.Now().UnixMilli(), value)); code != 0 {
		t.Fatalf("produce: error %d", code)
	}
	// The raw connections' client id.
	setClientQuota(t, adm, "client-id", "shoal-integration", "consumer_byte_rate", 10_000)

	m := joinRawShareMember(t, n, group, "quoted-1", topic, [16]byte(id))
	var resp *kmsg.ShareFetchResponse
	waitFor(t, opTimeout, "the batch acquired", func() (bool, string) {
		resp = m.fetchResponse(10)
		return len(resp.Topics) == 1 && len(resp.Topics[0].Partitions) == 1 && len(resp.Topics[0].Partitions[0].AcquiredRecords) > 0, "nothing acquired"
	})
	answered := time.Now()
	// 300 kB over the default 10 s minimum window is 30 kB/s, three times
	// the quota: the throttle is capped at one window, 1 s.
	if resp.ThrottleMillis != 1000 || len(resp.Topics[0].Partitions[0].Records) < len(value) {
		t.Fatalf("share fetch: throttle %d ms, %d record bytes; want 1000 ms and the whole batch", resp.ThrottleMillis, len(resp.Topics[0].Partitions[0].Records))
	}
	m.rc.request(kmsg.NewPtrApiVersionsRequest(), -1)
	if muted := time.Since(answered); muted < 900*time.Millisecond {
		t.Fatalf("the next request was answered %v after the throttled share fetch; the connection was not muted", muted)
	}
}
