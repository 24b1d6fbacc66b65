package raftmeta

import (
	"errors"
	"reflect"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/shoalmq/shoal/quota"
)

func ptrF(v float64) *float64 { return &v }

func TestImageClientQuotasAndBrokerConfigs(t *testing.T) {
	alice := quota.Entity{User: quota.Named("alice")}
	clients := quota.Entity{ClientID: quota.DefaultName()}
	v1 := mustApply(t, newImage("c"), 2,
		&AlterClientQuota{Entity: alice, Set: map[string]float64{quota.ProducerByteRate: 1024, quota.ConsumerByteRate: 2048}},
		&AlterClientQuota{Entity: clients, Set: map[string]float64{quota.ProducerByteRate: 10}},
		&AlterBrokerConfigs{Broker: "", Set: map[string]string{"log.retention.ms": "1000"}},
		&AlterBrokerConfigs{Broker: "1", Set: map[string]string{"log.cleaner.backoff.ms": "500"}},
	)
	v2 := mustApply(t, v1, 3,
		&AlterClientQuota{Entity: alice, Remove: []string{quota.ProducerByteRate}},
		&AlterClientQuota{Entity: clients, Remove: []string{quota.ProducerByteRate}},
		&AlterBrokerConfigs{Broker: "1", Delete: []string{"log.cleaner.backoff.ms"}},
	)
	if len(v1.ClientQuotas) != 2 || len(v1.ClientQuotas[alice]) != 2 || len(v1.BrokerConfigs) != 2 {
		t.Fatalf("v1 modified by v2: %v %v", v1.ClientQuotas, v1.BrokerConfigs)
	}
	if !reflect.DeepEqual(v2.ClientQuotas, quota.Quotas{alice: {quota.ConsumerByteRate: 2048}}) {
		t.Fatalf("v2 quotas = %v (an entity without keys is dropped)", v2.ClientQuotas)
	}
	if !reflect.DeepEqual(v2.BrokerConfigs, map[string]map[string]string{"": {"log.retention.ms": "1000"}}) {
		t.Fatalf("v2 broker configs = %v", v2.BrokerConfigs)
	}
	mustRoundTrip(t, v1)

	// A record that slipped past the decider is refused whole.
	for _, r := range []Record{
		&AlterClientQuota{Entity: alice, Set: map[string]float64{quota.ConnectionCreationRate: 5}},
		&AlterBrokerConfigs{Broker: "x"},
	} {
		if _, err := newImage("c").apply(2, []Record{r}); !errors.Is(err, kerr.InvalidRequest) {
			t.Errorf("%T: err = %v, want INVALID_REQUEST", r, err)
		}
	}
}

func TestDecideAlterClientQuotas(t *testing.T) {
	d := &Decider{}
	img := newImage("c")
	user := quota.Entity{User: quota.Named("u")}
	ip := quota.Entity{IP: quota.DefaultName()}
	recs, errs := d.AlterClientQuotas(img, []QuotaAlteration{
		{Entity: user, Ops: []QuotaOp{{Key: quota.ProducerByteRate, Value: ptrF(1e6)}, {Key: quota.ConsumerByteRate}}},
		{Entity: user, Ops: []QuotaOp{{Key: "bogus", Value: ptrF(1)}}},
		{Entity: user, Ops: []QuotaOp{{Key: quota.ConnectionCreationRate, Value: ptrF(1)}}},
		{Entity: ip, Ops: []QuotaOp{{Key: quota.ProducerByteRate, Value: ptrF(1)}}},
		{Entity: ip, Ops: []QuotaOp{{Key: quota.ConnectionCreationRate, Value: ptrF(10)}}},
		{Entity: user, Ops: []QuotaOp{{Key: quota.ProducerByteRate, Value: ptrF(1.5)}}},
		{Entity: user, Ops: []QuotaOp{{Key: quota.ProducerByteRate, Value: ptrF(-1)}}},
		{Entity: user, Ops: []QuotaOp{{Key: quota.ProducerByteRate, Value: ptrF(1)}, {Key: quota.ProducerByteRate}}},
	})
	wantOK := map[int]bool{0: true, 4: true}
	for i, err := range errs {
		if wantOK[i] != (err == nil) || (err != nil && !errors.Is(err, kerr.InvalidRequest)) {
			t.Errorf("entry %d: err = %v", i, err)
		}
	}
	want := []Record{
		&AlterClientQuota{Entity: user, Set: map[string]float64{quota.ProducerByteRate: 1e6}, Remove: []string{quota.ConsumerByteRate}},
		&AlterClientQuota{Entity: ip, Set: map[string]float64{quota.ConnectionCreationRate: 10}},
	}
	if !reflect.DeepEqual(recs, want) {
		t.Fatalf("records = %+v", recs)
	}
}

func TestDecideAlterBrokerConfigs(t *testing.T) {
	d := &Decider{ValidateBrokerConfig: func(resource, name string, _ *string) error {
		if name == "node.id" {
			return errorf(kerr.InvalidRequest, "Cannot update these configs dynamically: [node.id]")
		}
		if name == "listener.name.ssl.ssl.keystore.location" && resource == "" {
			return errorf(kerr.InvalidRequest, "Cannot update these configs at default cluster level, broker id must be specified")
		}
		return nil
	}}
	img := newImage("c")
	if _, err := d.AlterBrokerConfigs(img, "", map[string]string{"node.id": "2"}, nil); !errors.Is(err, kerr.InvalidRequest) {
		t.Errorf("read-only key: %v", err)
	}
	if _, err := d.AlterBrokerConfigs(img, "-1", map[string]string{"log.retention.ms": "2"}, nil); !errors.Is(err, kerr.InvalidRequest) {
		t.Errorf("bad resource: %v", err)
	}
	// The validator sees which resource the key is for.
	ks := map[string]string{"listener.name.ssl.ssl.keystore.location": "/etc/ks.pem"}
	if _, err := d.AlterBrokerConfigs(img, "", ks, nil); !errors.Is(err, kerr.InvalidRequest) {
		t.Errorf("per-broker key as a cluster default: %v", err)
	}
	if _, err := d.AlterBrokerConfigs(img, "3", ks, nil); err != nil {
		t.Errorf("per-broker key for broker 3: %v", err)
	}
	recs, err := d.AlterBrokerConfigs(img, "3", map[string]string{"log.retention.ms": "2"}, []string{"log.segment.bytes"})
	if err != nil || !reflect.DeepEqual(recs, []Record{&AlterBrokerConfigs{Broker: "3", Set: map[string]string{"log.retention.ms": "2"}, Delete: []string{"log.segment.bytes"}}}) {
		t.Fatalf("records %+v, err %v", recs, err)
	}
}
