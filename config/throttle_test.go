package config

import (
	"errors"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
)

// The throttled-replicas topic configs take Kafka's values: "*" or
// partition:broker pairs; anything else is refused.
func TestThrottledReplicasValidation(t *testing.T) {
	for _, v := range []string{"", "*", "0:1", "0:1,1:2", " 0:1 , 3:4 ", "0:1,"} {
		if err := ValidateTopicConfig("leader.replication.throttled.replicas", &v); err != nil {
			t.Errorf("%q refused: %v", v, err)
		}
	}
	for _, v := range []string{"0", "a:1", "0:1,*", "0:-1", "1:2:3", "**"} {
		if err := ValidateTopicConfig("follower.replication.throttled.replicas", &v); err == nil {
			t.Errorf("%q accepted", v)
		}
	}
}

func TestReplicaThrottled(t *testing.T) {
	for _, c := range []struct {
		value             string
		partition, broker int32
		want              bool
	}{
		{"", 0, 1, false},
		{"*", 7, 3, true},
		{"0:1,1:2", 0, 1, true},
		{"0:1,1:2", 1, 2, true},
		{"0:1,1:2", 1, 1, false},
		{"0:1,1:2", 0, 2, false},
	} {
		if got := ReplicaThrottled(c.value, c.partition, c.broker); got != c.want {
			t.Errorf("ReplicaThrottled(%q, %d, %d) = %v, want %v", c.value, c.partition, c.broker, got, c.want)
		}
	}
}

// The throttled rates are dynamic broker configs, at least 0.
func TestThrottledRatesDynamic(t *testing.T) {
	for _, k := range []string{"leader.replication.throttled.rate", "follower.replication.throttled.rate"} {
		v := "1048576"
		if err := ValidateDynamicBrokerConfig("", k, &v); err != nil {
			t.Errorf("%s=%s refused: %v", k, v, err)
		}
		neg := "-1"
		if err := ValidateDynamicBrokerConfig("", k, &neg); !errors.Is(err, kerr.InvalidConfig) {
			t.Errorf("%s=-1: %v, want INVALID_CONFIG", k, err)
		}
	}
	v := "5"
	if err := ValidateDynamicBrokerConfig("", "replication.quota.window.num", &v); !errors.Is(err, kerr.InvalidRequest) {
		t.Errorf("replication.quota.window.num changed at runtime: %v, want INVALID_REQUEST", err)
	}
}
