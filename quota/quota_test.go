package quota

import (
	"testing"
	"time"
)

func TestLookupPrecedence(t *testing.T) {
	q := Quotas{}
	set := func(e Entity, v float64) { q[e] = map[string]float64{ProducerByteRate: v} }
	// Set from least to most specific; each step must win over the last.
	steps := []Entity{
		{ClientID: DefaultName()},
		{ClientID: Named("c")},
		{User: DefaultName()},
		{User: DefaultName(), ClientID: DefaultName()},
		{User: DefaultName(), ClientID: Named("c")},
		{User: Named("u")},
		{User: Named("u"), ClientID: DefaultName()},
		{User: Named("u"), ClientID: Named("c")},
	}
	for i, e := range steps {
		set(e, float64(i+1))
		m, ok := q.Lookup("u", "c", ProducerByteRate)
		if !ok || m.Value != float64(i+1) || m.Entity != e {
			t.Fatalf("after setting %s: got %+v, %v", e, m, ok)
		}
	}
	// Defaults measure each user and client apart.
	m, _ := Quotas{{ClientID: DefaultName()}: {ProducerByteRate: 1}}.Lookup("u", "c", ProducerByteRate)
	if m.Sensor != (Entity{ClientID: Named("c")}) {
		t.Fatalf("sensor = %s", m.Sensor)
	}
	if _, ok := q.Lookup("u", "c", ConsumerByteRate); ok {
		t.Fatal("a key nobody set matched")
	}
}

func TestEntityOf(t *testing.T) {
	s := func(v string) *string { return &v }
	for _, tc := range []struct {
		comps []Component
		ok    bool
	}{
		{[]Component{{TypeUser, s("u")}, {TypeClientID, nil}}, true},
		{[]Component{{TypeIP, s("10.1.2.3")}}, true},
		{[]Component{{TypeIP, nil}}, true},
		{nil, false},
		{[]Component{{"group", s("g")}}, false},
		{[]Component{{TypeUser, s("u")}, {TypeUser, s("v")}}, false},
		{[]Component{{TypeIP, s("10.1.2.3")}, {TypeUser, s("u")}}, false},
		{[]Component{{TypeIP, s("not-an-ip")}}, false},
	} {
		e, err := EntityOf(tc.comps)
		if (err == nil) != tc.ok {
			t.Errorf("%v: err = %v", tc.comps, err)
		}
		if err == nil && len(e.Components()) != len(tc.comps) {
			t.Errorf("%v: components back %v", tc.comps, e.Components())
		}
	}
}

// A client sending steadily above its bound is throttled so that, backing
// off as told, it averages the bound.
func TestRateThrottleConverges(t *testing.T) {
	r := NewRate(Window{Samples: 11, Size: time.Second})
	now := time.Unix(1000, 0)
	const bound = 1 << 20
	var sent float64
	start := now
	for now.Sub(start) < 60*time.Second {
		d := r.ThrottleTime(256<<10, bound, now)
		sent += 256 << 10
		now = now.Add(10*time.Millisecond + d)
	}
	rate := sent / now.Sub(start).Seconds()
	if rate < 0.9*bound || rate > 1.2*bound {
		t.Fatalf("rate %.0f B/s with bound %d", rate, bound)
	}
	// Under the bound nothing is throttled.
	idle := NewRate(DefaultWindow)
	if d := idle.ThrottleTime(1000, bound, now); d != 0 {
		t.Fatalf("throttled %v under the bound", d)
	}
}

// A client whose every request takes 5 ms of a thread, sent back to back
// and backing off as told, is held to its request_percentage: its
// requests' time stays near the quota's share of one thread.
func TestRequestPercentageConverges(t *testing.T) {
	s := NewSensors(Window{Samples: 11, Size: time.Second})
	k := SensorKey{Key: RequestPercentage, ID: Entity{ClientID: Named("busy")}}
	const quota = 10.0 // percent of one thread
	const busy = 5 * time.Millisecond
	now := time.Unix(1000, 0)
	start := now
	var used time.Duration
	for now.Sub(start) < 60*time.Second {
		d := s.Throttle(k, float64(busy)*100/float64(time.Second), quota, now)
		used += busy
		now = now.Add(busy + d)
	}
	pct := 100 * used.Seconds() / now.Sub(start).Seconds()
	if pct < 0.9*quota || pct > 1.2*quota {
		t.Fatalf("request time %.1f%% of a thread with a %.0f%% quota", pct, quota)
	}
}

// A connection over its address's rate is refused and not counted, so an
// address that keeps trying is admitted again at the quota's pace, and
// another address is not affected.
func TestSensorsAdmitUnrecordsRefused(t *testing.T) {
	s := NewSensors(Window{Samples: 3, Size: time.Second})
	ip := func(a string) SensorKey { return SensorKey{Key: ConnectionCreationRate, ID: Entity{IP: Named(a)}} }
	now := time.Unix(1000, 0)
	// Two whole windows of 2/s: four connections pass at once.
	for i := range 4 {
		if d := s.Admit(ip("10.0.0.1"), 1, 2, now); d != 0 {
			t.Fatalf("connection %d throttled %v", i, d)
		}
	}
	for range 10 {
		if d := s.Admit(ip("10.0.0.1"), 1, 2, now); d <= 0 || d > time.Second {
			t.Fatalf("fifth connection: throttle %v, want (0, 1s]", d)
		}
	}
	if r := s.Rates(now)[ip("10.0.0.1")]; r != 2 {
		t.Fatalf("rate %v after refusals, want 2: refused connections were counted", r)
	}
	if d := s.Admit(ip("10.0.0.2"), 1, 2, now); d != 0 {
		t.Fatalf("another address throttled %v", d)
	}
	// Once the measured span has grown to 2.5 s, a fifth fits (5 over 2.5 s).
	if d := s.Admit(ip("10.0.0.1"), 1, 2, now.Add(2500*time.Millisecond)); d != 0 {
		t.Fatalf("throttled %v once the rate came back", d)
	}
	// A zero bound lets nothing through: the longest throttle.
	if d := s.Admit(SensorKey{Key: "zero"}, 1, 0, now); d != time.Second {
		t.Fatalf("zero bound: throttle %v, want one sample", d)
	}
}
