package broker

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// A password-type broker setting is described as Kafka describes one: a
// null value marked sensitive, never the secret, in the entry and in its
// synonyms.
func TestDescribeBrokerConfigsHidesPasswords(t *testing.T) {
	const secret = "admin-token-do-not-show"
	s := startTestServer(t, "admin.auth.bearer.token="+secret)
	cl := testClient(t, s)
	req := kmsg.NewPtrDescribeConfigsRequest()
	req.IncludeSynonyms = true
	res := kmsg.NewDescribeConfigsRequestResource()
	res.ResourceType = kmsg.ConfigResourceTypeBroker
	res.ResourceName = strconv.Itoa(int(s.cfg.NodeID))
	req.Resources = append(req.Resources, res)
	resp, err := req.RequestWith(testContext(t, 10*time.Second), cl)
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Resources) != 1 || resp.Resources[0].ErrorCode != 0 {
		t.Fatalf("described %+v", resp.Resources)
	}
	found := false
	for _, c := range resp.Resources[0].Configs {
		if c.Name != "admin.auth.bearer.token" {
			continue
		}
		found = true
		if c.Value != nil || !c.IsSensitive {
			t.Errorf("admin.auth.bearer.token described with value %v, sensitive %v; want null and sensitive", deref(c.Value), c.IsSensitive)
		}
		for _, syn := range c.ConfigSynonyms {
			if syn.Value != nil {
				t.Errorf("synonym %s carries value %q, want null", syn.Name, *syn.Value)
			}
		}
	}
	if !found {
		t.Fatal("admin.auth.bearer.token not described")
	}
}

// A BROKER resource is checked by the broker that receives it, as Kafka's
// ConfigAdminManager does: another broker's resource, and a key store for
// a listener this broker does not serve with TLS, are INVALID_REQUEST and
// never reach the controller.
func TestAlterBrokerConfigsCheckedByTheReceivingBroker(t *testing.T) {
	s := startTestServer(t)
	cl := testClient(t, s)
	alter := func(resource, key, value string) *kmsg.IncrementalAlterConfigsResponseResource {
		t.Helper()
		req := kmsg.NewPtrIncrementalAlterConfigsRequest()
		res := kmsg.NewIncrementalAlterConfigsRequestResource()
		res.ResourceType, res.ResourceName = kmsg.ConfigResourceTypeBroker, resource
		c := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
		c.Name, c.Value = key, &value
		res.Configs = append(res.Configs, c)
		req.Resources = append(req.Resources, res)
		// Sent to this broker whatever the resource names, as a client
		// that does not route by resource would.
		r, err := cl.Broker(int(s.cfg.NodeID)).Request(testContext(t, 10*time.Second), req)
		if err != nil {
			t.Fatalf("alter: %v", err)
		}
		resp := r.(*kmsg.IncrementalAlterConfigsResponse)
		if len(resp.Resources) != 1 {
			t.Fatalf("alter: %+v", resp)
		}
		return &resp.Resources[0]
	}
	own := strconv.Itoa(int(s.cfg.NodeID))
	for _, c := range []struct{ resource, key, value, says string }{
		{"7", "log.retention.ms", "1000", "not this broker"},
		{own, "listener.name.plaintext.ssl.keystore.location", "/nonexistent.pem", "no TLS listener"},
	} {
		if r := alter(c.resource, c.key, c.value); r.ErrorCode != kerr.InvalidRequest.Code || !strings.Contains(deref(r.ErrorMessage), c.says) {
			t.Errorf("%s %s: code %d %q, want INVALID_REQUEST saying %q", c.resource, c.key, r.ErrorCode, deref(r.ErrorMessage), c.says)
		}
	}
	if r := alter(own, "max.connections", "100"); r.ErrorCode != 0 {
		t.Fatalf("max.connections on this broker: code %d %q", r.ErrorCode, deref(r.ErrorMessage))
	}
	if len(s.meta.Image().BrokerConfig("7")) != 0 {
		t.Fatal("the refused change of broker 7 was stored")
	}
}
