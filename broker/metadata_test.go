package broker

import (
	"fmt"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// metadataOf is a Metadata request for topics by name.
func metadataOf(autoCreate bool, topics ...string) *kmsg.MetadataRequest {
	req := kmsg.NewPtrMetadataRequest()
	req.AllowAutoTopicCreation = autoCreate
	req.Topics = []kmsg.MetadataRequestTopic{}
	for _, name := range topics {
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr(name)
		req.Topics = append(req.Topics, rt)
	}
	return req
}

// An internal topic auto-created by Metadata is made as its coordinator
// makes it, with its own partition count and compacted, as Kafka's
// auto-creation does; a default topic would leave the coordinator on the
// wrong partitions and its log never compacted.
func TestMetadataAutoCreatesInternalTopicsForTheirCoordinator(t *testing.T) {
	s := startTestServer(t, "num.partitions=1", "offsets.topic.num.partitions=3", "transaction.state.log.num.partitions=2")
	c := dialRaw(t, s.Addrs()[0])
	for name, want := range map[string]int{"__consumer_offsets": 3, "__transaction_state": 2} {
		r := c.roundTrip(metadataOf(true, name), 12).(*kmsg.MetadataResponse)
		if len(r.Topics) != 1 || r.Topics[0].ErrorCode != 0 || !r.Topics[0].IsInternal {
			t.Fatalf("%s: %+v", name, r.Topics)
		}
		if got := len(r.Topics[0].Partitions); got != want {
			t.Errorf("%s auto-created with %d partitions, want %d", name, got, want)
		}
		if policy := s.meta.Image().Topics[name].Configs["cleanup.policy"]; policy != "compact" {
			t.Errorf("%s auto-created with cleanup.policy %q, want compact", name, policy)
		}
	}
}

// A topic name Kafka could never create is answered INVALID_TOPIC_EXCEPTION,
// which clients do not retry, whether or not auto-creation is on; a valid
// missing name is UNKNOWN_TOPIC_OR_PARTITION when nothing creates it.
func TestMetadataInvalidTopicName(t *testing.T) {
	for _, enabled := range []string{"true", "false"} {
		s := startTestServer(t, "auto.create.topics.enable="+enabled)
		c := dialRaw(t, s.Addrs()[0])
		for _, allow := range []bool{true, false} {
			missing := fmt.Sprintf("missing-%s-%v", enabled, allow)
			r := c.roundTrip(metadataOf(allow, "bad name", "", "..", missing), 12).(*kmsg.MetadataResponse)
			want := []int16{kerr.InvalidTopicException.Code, kerr.InvalidTopicException.Code, kerr.InvalidTopicException.Code,
				kerr.UnknownTopicOrPartition.Code}
			if enabled == "true" && allow {
				want[3] = 0
			}
			if len(r.Topics) != len(want) {
				t.Fatalf("auto.create.topics.enable=%s allow=%v: %d topics answered", enabled, allow, len(r.Topics))
			}
			for i, rt := range r.Topics {
				if rt.ErrorCode != want[i] {
					t.Errorf("auto.create.topics.enable=%s allow=%v, %q: %v, want %v", enabled, allow, *rt.Topic,
						kerr.ErrorForCode(rt.ErrorCode), kerr.ErrorForCode(want[i]))
				}
			}
		}
	}
}
