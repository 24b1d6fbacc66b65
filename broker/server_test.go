package broker

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/shoalmq/shoal/config"
)

// startTestServer runs a single-node server on free loopback ports with its
// data in a temp dir.
func startTestServer(t testing.TB, set ...string) *Server {
	t.Helper()
	return startTestServerWith(t, Options{}, set...)
}

// startTestServerWith is startTestServer with opts (a clock, say); a nil
// Logger discards the node's log.
func startTestServerWith(t testing.TB, opts Options, set ...string) *Server {
	t.Helper()
	dir := t.TempDir()
	base := []string{
		"log.dirs=" + dir,
		"listeners=PLAINTEXT://127.0.0.1:0,CONTROLLER://127.0.0.1:0",
		"admin.addr=127.0.0.1:0",
	}
	cfg, err := config.Load("", nil, append(base, set...))
	if err != nil {
		t.Fatal(err)
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	s, err := Start(cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// testContext is a context that ends after d or when the test does.
func testContext(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func testClient(t testing.TB, s *Server, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(s.Addrs()...)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// createTopic creates topic with partitions partitions (one replica) and
// the given configs, failing the test if it is refused; it returns the
// topic's ID.
func createTopic(t testing.TB, ctx context.Context, adm *kadm.Client, partitions int32, topic string, configs map[string]*string) [16]byte {
	t.Helper()
	r, err := adm.CreateTopic(ctx, partitions, 1, configs, topic)
	if err == nil {
		err = r.Err
	}
	if err != nil {
		t.Fatalf("creating %s: %v", topic, err)
	}
	return r.ID
}

func TestProduceConsume(t *testing.T) {
	s := startTestServer(t)
	ctx := testContext(t, 30*time.Second)
	adm := kadm.NewClient(testClient(t, s))
	createTopic(t, ctx, adm, 2, "t", nil)
	prod := testClient(t, s, kgo.DefaultProduceTopic("t"))
	const n = 200
	for i := 0; i < n; i++ {
		r := &kgo.Record{Key: []byte(fmt.Sprint(i % 7)), Value: []byte(fmt.Sprint(i))}
		if err := prod.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	cons := testClient(t, s, kgo.ConsumeTopics("t"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	got := 0
	next := map[int32]int64{}
	for got < n {
		fs := cons.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consumed %d of %d: %v", got, n, err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset != next[r.Partition] {
				t.Fatalf("partition %d: offset %d, want %d", r.Partition, r.Offset, next[r.Partition])
			}
			next[r.Partition]++
			got++
		})
	}
}

func TestConsumerGroupConsumesAndCommits(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []kgo.Opt
	}{
		{"classic", []kgo.Opt{kgo.Balancers(kgo.CooperativeStickyBalancer())}},
		{"consumer", []kgo.Opt{kgo.Balancers(kgo.RangeBalancer()), kgo.ServerSideBalancer()}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := startTestServer(t, "group.initial.rebalance.delay.ms=0", "offsets.topic.num.partitions=3")
			ctx := testContext(t, 30*time.Second)
			adm := kadm.NewClient(testClient(t, s))
			createTopic(t, ctx, adm, 4, "gt", nil)
			prod := testClient(t, s, kgo.DefaultProduceTopic("gt"))
			const n = 400
			for i := 0; i < n; i++ {
				if err := prod.ProduceSync(ctx, &kgo.Record{Key: []byte(fmt.Sprint(i)), Value: []byte("v")}).FirstErr(); err != nil {
					t.Fatal(err)
				}
			}
			opts := append([]kgo.Opt{kgo.ConsumerGroup("g-" + tc.name), kgo.ConsumeTopics("gt"),
				kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit()}, tc.opts...)
			cons := testClient(t, s, opts...)
			got := 0
			for got < n {
				fs := cons.PollFetches(ctx)
				if ctx.Err() != nil {
					t.Fatalf("consumed %d of %d: %v", got, n, fs.Errors())
				}
				got += fs.NumRecords()
			}
			if err := cons.CommitUncommittedOffsets(ctx); err != nil {
				t.Fatal(err)
			}
			offs, err := adm.FetchOffsets(ctx, "g-"+tc.name)
			if err != nil {
				t.Fatal(err)
			}
			var total int64
			offs.Each(func(o kadm.OffsetResponse) { total += o.At })
			if total != n {
				t.Fatalf("committed offsets sum to %d, want %d", total, n)
			}
		})
	}
}
