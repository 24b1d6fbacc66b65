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
