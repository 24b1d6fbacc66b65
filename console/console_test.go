package console

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
)

func TestHistoryKeepsAFixedWindowAndTurnsCountersIntoRates(t *testing.T) {
	h := newHistory(3)
	h.addCounter("in:t", point{T: 1000, V: 10})
	if got := h.get("in:t"); len(got) != 0 {
		t.Fatalf("a first counter value makes a rate: %v", got)
	}
	h.addCounter("in:t", point{T: 3000, V: 30}) // 20 in 2s
	h.addCounter("in:t", point{T: 4000, V: 5})  // a reset: never negative
	if got := h.get("in:t"); len(got) != 2 || got[0].V != 10 || got[1].V != 0 {
		t.Fatalf("rates %v, want [10/s, 0/s]", got)
	}
	for i := int64(0); i < 10; i++ {
		h.add("lag:g", point{T: i, V: float64(i)})
	}
	got := h.get("lag:g")
	if len(got) != 3 || got[0].V != 7 || got[2].V != 9 {
		t.Fatalf("ring %v, want the newest 3 samples 7..9", got)
	}
	if p, ok := h.last("lag:g"); !ok || p.V != 9 {
		t.Fatalf("last %v %v", p, ok)
	}
}

func TestHistoryBoundsTheNumberOfSeries(t *testing.T) {
	h := newHistory(2)
	for i := 0; i < maxSeries+10; i++ {
		h.add(fmt.Sprint("lag:", i), point{V: 1})
	}
	if len(h.series) > maxSeries {
		t.Fatalf("%d series kept, the bound is %d", len(h.series), maxSeries)
	}
}

func TestBrowseFilters(t *testing.T) {
	rec := &kgo.Record{Key: []byte("order-17"), Headers: []kgo.RecordHeader{{Key: "region", Value: []byte("eu")}}}
	for _, c := range []struct {
		key, header string
		want        bool
	}{
		{"", "", true},
		{"der-1", "", true},
		{"order-2", "", false},
		{"", "region", true},
		{"", "region=eu", true},
		{"", "region=us", false},
		{"", "zone", false},
		{"order", "region=eu", true},
	} {
		b := browse{key: c.key, header: c.header}
		if got := b.matches(rec); got != c.want {
			t.Errorf("key %q header %q: match %v, want %v", c.key, c.header, got, c.want)
		}
	}
}

func TestParseBrowseRejectsBadInput(t *testing.T) {
	for _, q := range []string{
		"partition=0",              // no topic
		"topic=t&partition=-1",     // negative partition
		"topic=t&partition=x",      // not a number
		"topic=t&partition=1e9999", // not an integer
		"topic=t&offset=abc",
		"topic=t&timestamp=now",
		"topic=t&partition=4294967296",
	} {
		r := httptest.NewRequest("GET", "/ui/api/messages?"+q, nil)
		if _, err := parseBrowse(r); err == nil {
			t.Errorf("%s: accepted", q)
		}
	}
	r := httptest.NewRequest("GET", "/ui/api/messages?topic=t&limit=1000000", nil)
	b, err := parseBrowse(r)
	if err != nil || b.limit != maxPage || b.newest {
		t.Errorf("limit 1000000: %+v %v, want the page capped at %d, oldest first", b, err, maxPage)
	}
}

// The write endpoints answer before any Kafka request when writes are off
// or the request does not come from the console's pages, so these need no
// broker (the client connects lazily, to a closed port).
func TestWritesAreRefusedUnlessAllowedAndFromThePage(t *testing.T) {
	for _, c := range []struct {
		allow  bool
		header string
		body   string
		want   int
	}{
		{false, "1", `{"topic":"t","partition":0,"before":1}`, http.StatusForbidden},
		{true, "", `{"topic":"t","partition":0,"before":1}`, http.StatusForbidden},
		{true, "1", `not json`, http.StatusBadRequest},
		{true, "1", strings.Repeat("x", maxWriteBody+1), http.StatusBadRequest},
	} {
		con, err := New(Config{Bootstrap: "127.0.0.1:1", AllowWrites: c.allow})
		if err != nil {
			t.Fatal(err)
		}
		for _, path := range []string{"delete-records", "reset-offsets", "redrive"} {
			r := httptest.NewRequest("POST", "/ui/api/"+path, strings.NewReader(c.body))
			if c.header != "" {
				r.Header.Set("X-Shoal-Console", c.header)
			}
			w := httptest.NewRecorder()
			con.ServeHTTP(w, r)
			if w.Code != c.want {
				t.Errorf("%s allow=%v header=%q body %.20q: status %d, want %d (%s)", path, c.allow, c.header, c.body, w.Code, c.want, w.Body)
			}
		}
		con.Close()
	}
}

func TestPagesAreEmbedded(t *testing.T) {
	con, err := New(Config{Bootstrap: "127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	defer con.Close()
	for _, p := range []string{"/ui/", "/ui/app.js", "/ui/style.css"} {
		w := httptest.NewRecorder()
		con.ServeHTTP(w, httptest.NewRequest("GET", p, nil))
		if w.Code != http.StatusOK || w.Body.Len() == 0 {
			t.Errorf("GET %s: %d, %d bytes", p, w.Code, w.Body.Len())
		}
		if csp := w.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") {
			t.Errorf("GET %s: Content-Security-Policy %q", p, csp)
		}
		plain := w.Body.Bytes()

		// Gzipped for a browser that accepts it, the same bytes inside.
		r := httptest.NewRequest("GET", p, nil)
		r.Header.Set("Accept-Encoding", "gzip, deflate, br")
		w = httptest.NewRecorder()
		con.ServeHTTP(w, r)
		zr, err := gzip.NewReader(w.Body)
		if err != nil || w.Header().Get("Content-Encoding") != "gzip" {
			t.Fatalf("GET %s with gzip: %v, Content-Encoding %q", p, err, w.Header().Get("Content-Encoding"))
		}
		unzipped, _ := io.ReadAll(zr)
		if !bytes.Equal(unzipped, plain) {
			t.Errorf("GET %s: the gzipped body differs from the plain one", p)
		}

		// Revalidation by ETag answers 304 without a body.
		r = httptest.NewRequest("GET", p, nil)
		r.Header.Set("Accept-Encoding", "gzip")
		r.Header.Set("If-None-Match", w.Header().Get("ETag"))
		w = httptest.NewRecorder()
		con.ServeHTTP(w, r)
		if w.Code != http.StatusNotModified || w.Body.Len() != 0 {
			t.Errorf("GET %s revalidated: %d, %d bytes", p, w.Code, w.Body.Len())
		}
	}
	w := httptest.NewRecorder()
	con.ServeHTTP(w, httptest.NewRequest("GET", "/ui/nothing.js", nil))
	if w.Code != http.StatusNotFound {
		t.Errorf("GET a file that is not there: %d", w.Code)
	}
}

// The rates come from the broker's counters by their registered names.
func TestSampleRatesReadsTheTopicCounters(t *testing.T) {
	reg := prometheus.NewRegistry()
	in := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "shoal_topic_records_in_total"}, []string{"topic"})
	out := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "shoal_topic_records_out_total"}, []string{"topic"})
	reg.MustRegister(in, out)
	con, err := New(Config{Bootstrap: "127.0.0.1:1", Metrics: reg})
	if err != nil {
		t.Fatal(err)
	}
	defer con.Close()
	in.WithLabelValues("orders").Add(100)
	con.sampleRates(10_000)
	in.WithLabelValues("orders").Add(50)
	out.WithLabelValues("orders").Add(20)
	con.sampleRates(12_000)
	if p, ok := con.hist.last("in:orders"); !ok || p.V != 25 {
		t.Errorf("produce rate %v %v, want 25/s", p, ok)
	}
	if _, ok := con.hist.last("out:orders"); ok {
		t.Errorf("a consume rate from a counter's first value")
	}
}

// The session table ends idle and old sessions, and past maxSessions the
// one used least recently, closing their Kafka clients.
func TestSessionsExpireAndStayBounded(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	s := newSessions()
	s.now = func() time.Time { return now }
	defer s.closeAll()
	conn := func() *kafkaConn {
		k, err := newKafkaConn("u", []kgo.Opt{kgo.SeedBrokers("127.0.0.1:1")})
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	first := s.add(conn())
	var ids []string
	for range maxSessions - 1 {
		now = now.Add(time.Second)
		ids = append(ids, s.add(conn()))
	}
	now = now.Add(time.Second)
	if s.get(first) == nil {
		t.Fatal("a session of a full table was ended")
	}
	// first is now the most recent; the next login ends ids[0].
	s.add(conn())
	if len(s.byID) != maxSessions || s.get(ids[0]) != nil || s.get(first) == nil {
		t.Fatalf("%d sessions; the least recently used must make room", len(s.byID))
	}
	now = now.Add(sessionIdle + time.Second)
	if s.get(first) != nil || len(s.byID) != 0 {
		t.Fatalf("%d sessions after %v idle", len(s.byID), sessionIdle)
	}
	// A session in use still ends after sessionMax.
	id := s.add(conn())
	for end := now.Add(sessionMax); now.Before(end); now = now.Add(sessionIdle / 2) {
		if s.get(id) == nil {
			t.Fatalf("a session in use ended before %v", sessionMax)
		}
	}
	now = now.Add(time.Second)
	if s.get(id) != nil {
		t.Fatalf("a session outlived %v", sessionMax)
	}
}

// Without a session cookie, or with an unknown one, a console that needs
// logins answers 401 to its API, and the settings say to log in.
func TestAPINeedsALoginWhenTheListenerHasSASL(t *testing.T) {
	con, err := New(Config{Bootstrap: "127.0.0.1:1", SASLMechanisms: []string{"SCRAM-SHA-512"}})
	if err != nil {
		t.Fatal(err)
	}
	defer con.Close()
	for _, cookie := range []string{"", "made-up"} {
		r := httptest.NewRequest("GET", "/ui/api/topics", nil)
		if cookie != "" {
			r.AddCookie(&http.Cookie{Name: sessionCookie, Value: cookie})
		}
		w := httptest.NewRecorder()
		con.ServeHTTP(w, r)
		if w.Code != http.StatusUnauthorized {
			t.Errorf("cookie %q: status %d, want 401", cookie, w.Code)
		}
	}
	w := httptest.NewRecorder()
	con.ServeHTTP(w, httptest.NewRequest("GET", "/ui/api/settings", nil))
	if !strings.Contains(w.Body.String(), `"login":true`) || strings.Contains(w.Body.String(), `"user"`) {
		t.Errorf("settings %s", w.Body)
	}
	// A login from another site (no X-Shoal-Console header) is refused
	// before any Kafka request.
	w = httptest.NewRecorder()
	con.ServeHTTP(w, httptest.NewRequest("POST", "/ui/api/login", strings.NewReader(`{"user":"a","password":"b"}`)))
	if w.Code != http.StatusForbidden {
		t.Errorf("login without the header: %d", w.Code)
	}
}
