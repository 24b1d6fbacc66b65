package broker

import (
	"strconv"
	"testing"
	"time"

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
