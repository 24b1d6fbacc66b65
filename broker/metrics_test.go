package broker

import (
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// /metrics reports the bytes a topic took in and a group's lag.
func TestMetricsReportTrafficAndGroupLag(t *testing.T) {
	s := startTestServer(t, "group.initial.rebalance.delay.ms=0", "offsets.topic.num.partitions=1")
	ctx := testContext(t, 30*time.Second)
	adm := kadm.NewClient(testClient(t, s))
	createTopic(t, ctx, adm, 1, "metered", nil)
	prod := testClient(t, s, kgo.DefaultProduceTopic("metered"))
	for i := 0; i < 50; i++ {
		if err := prod.ProduceSync(ctx, &kgo.Record{Value: []byte(fmt.Sprint(i))}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	cons := testClient(t, s, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{"metered": {0: kgo.NewOffset().AtStart()}}))
	for got := 0; got < 50; {
		fs := cons.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d of 50", got)
		}
		got += fs.NumRecords()
	}
	// The group commits offset 20 of 50: its lag is 30.
	offs := kadm.Offsets{}
	offs.Add(kadm.Offset{Topic: "metered", Partition: 0, At: 20, LeaderEpoch: -1})
	if _, err := adm.CommitOffsets(ctx, "lagging", offs); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get("http://" + s.AdminAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	value := func(re string) float64 {
		m := regexp.MustCompile(re + ` ([0-9.e+]+)`).FindSubmatch(body)
		if m == nil {
			t.Fatalf("no %s in /metrics", re)
		}
		v, _ := strconv.ParseFloat(string(m[1]), 64)
		return v
	}
	if v := value(`shoal_topic_bytes_in_total\{topic="metered"\}`); v <= 0 {
		t.Errorf("bytes in = %v", v)
	}
	if v := value(`shoal_topic_records_in_total\{topic="metered"\}`); v != 50 {
		t.Errorf("records in = %v, want 50", v)
	}
	if v := value(`shoal_topic_records_out_total\{topic="metered"\}`); v < 50 {
		t.Errorf("records out = %v, want at least 50", v)
	}
	if v := value(`shoal_group_lag\{group="lagging",partition="0",topic="metered"\}`); v != 30 {
		t.Errorf("group lag = %v, want 30", v)
	}
	if v := value(`shoal_raft_leader`); v != 1 {
		t.Errorf("raft leader = %v, want 1", v)
	}
}

func TestErrorCodesFindsNestedCodes(t *testing.T) {
	resp := kmsg.NewPtrProduceResponse()
	resp.Topics = []kmsg.ProduceResponseTopic{{Partitions: []kmsg.ProduceResponseTopicPartition{{ErrorCode: 3}, {ErrorCode: 0}, {ErrorCode: 87}}}}
	var got []int16
	errorCodes(resp, func(c int16) { got = append(got, c) })
	if len(got) != 2 || got[0] != 3 || got[1] != 87 {
		t.Fatalf("codes %v, want [3 87]", got)
	}
	g := kmsg.NewPtrJoinGroupResponse()
	g.ErrorCode = 79
	got = nil
	errorCodes(g, func(c int16) { got = append(got, c) })
	if len(got) != 1 || got[0] != 79 {
		t.Fatalf("codes %v, want [79]", got)
	}
}

// /metrics reports an open transaction, its age, and the LSO lag it causes
// in its partition; all of it goes once the transaction commits.
func TestMetricsReportOpenTransactions(t *testing.T) {
	s := startTestServer(t, "transaction.state.log.num.partitions=1", "offsets.topic.num.partitions=1")
	ctx := testContext(t, 30*time.Second)
	adm := kadm.NewClient(testClient(t, s))
	createTopic(t, ctx, adm, 1, "txns", nil)
	prod := testClient(t, s, kgo.DefaultProduceTopic("txns"), kgo.TransactionalID("metered-tx"))
	if err := prod.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if err := prod.ProduceSync(ctx, &kgo.Record{Value: []byte(fmt.Sprint(i))}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	scrape := func() string {
		resp, err := http.Get("http://" + s.AdminAddr() + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return string(body)
	}
	value := func(body, re string) (float64, bool) {
		m := regexp.MustCompile(re + ` ([0-9.e+-]+)`).FindStringSubmatch(body)
		if m == nil {
			return 0, false
		}
		v, _ := strconv.ParseFloat(m[1], 64)
		return v, true
	}
	body := scrape()
	if v, _ := value(body, `shoal_transactions_open\{state="Ongoing"\}`); v != 1 {
		t.Errorf("open Ongoing transactions = %v, want 1", v)
	}
	if v, ok := value(body, `shoal_transaction_oldest_age_seconds`); !ok || v < 0 {
		t.Errorf("oldest transaction age = %v (reported %v)", v, ok)
	}
	if v, _ := value(body, `shoal_partition_lso_lag\{partition="0",topic="txns"\}`); v != 3 {
		t.Errorf("LSO lag = %v, want 3", v)
	}
	if err := prod.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		body = scrape()
		ongoing, _ := value(body, `shoal_transactions_open\{state="Ongoing"\}`)
		preparing, _ := value(body, `shoal_transactions_open\{state="PrepareCommit"\}`)
		open := ongoing + preparing
		_, lagged := value(body, `shoal_partition_lso_lag\{partition="0",topic="txns"\}`)
		if open == 0 && !lagged {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the commit: open %v, LSO lag still reported %v", open, lagged)
		}
	}
}

// With admin.auth credentials, the admin listener answers 401 to a
// request without them for everything but the health probes, accepts the
// bearer token and the basic-auth pair, and serves no profiles unless
// admin.pprof.enable is set.
func TestAdminListenerAuthentication(t *testing.T) {
	s := startTestServer(t, "admin.auth.bearer.token=s3cret-token",
		"admin.auth.basic.user=prometheus", "admin.auth.basic.password=scrape-pw")
	get := func(path string, auth func(*http.Request)) int {
		t.Helper()
		req, err := http.NewRequest("GET", "http://"+s.AdminAddr()+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if auth != nil {
			auth(req)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	bearer := func(tok string) func(*http.Request) {
		return func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tok) }
	}
	basic := func(u, p string) func(*http.Request) {
		return func(r *http.Request) { r.SetBasicAuth(u, p) }
	}
	for _, c := range []struct {
		path string
		auth func(*http.Request)
		want int
	}{
		{"/metrics", nil, http.StatusUnauthorized},
		{"/metrics", bearer("wrong"), http.StatusUnauthorized},
		{"/metrics", basic("prometheus", "wrong"), http.StatusUnauthorized},
		{"/ui/", nil, http.StatusUnauthorized},
		{"/debug/pprof/", nil, http.StatusUnauthorized},
		{"/metrics", bearer("s3cret-token"), http.StatusOK},
		{"/metrics", basic("prometheus", "scrape-pw"), http.StatusOK},
		{"/healthz", nil, http.StatusOK},
		{"/debug/pprof/", bearer("s3cret-token"), http.StatusNotFound},
	} {
		if got := get(c.path, c.auth); got != c.want {
			t.Errorf("GET %s: %d, want %d", c.path, got, c.want)
		}
	}
}
