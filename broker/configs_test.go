package broker

import (
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
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
	own := strconv.Itoa(int(s.cfg.NodeID))
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
	for _, c := range []struct{ resource, key, value, says string }{
		{"7", "log.retention.ms", "1000", "Unexpected broker id, expected " + own + ", but received 7"},
		{"x", "log.retention.ms", "1000", "Node id must be an integer, but it is: x"},
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

// alterAnswerOf is what an alter answers for one resource.
type alterAnswerOf struct {
	name string
	code int16
	msg  string
}

// alterAnswers is what an AlterConfigs or IncrementalAlterConfigs response
// answers, resource by resource.
func alterAnswers[R alterResource](rs []R) []alterAnswerOf {
	out := make([]alterAnswerOf, 0, len(rs))
	for _, r := range rs {
		x := alterResultOf(r)
		out = append(out, alterAnswerOf{x.name, x.code, deref(x.message)})
	}
	return out
}

// alterConfigOp is one config of an IncrementalAlterConfigs resource.
func alterConfigOp(name string, op kmsg.IncrementalAlterConfigOp, value *string) kmsg.IncrementalAlterConfigsRequestResourceConfig {
	c := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
	c.Name, c.Op, c.Value = name, op, value
	return c
}

// topicResource is an IncrementalAlterConfigs resource of topic with ops.
func topicResource(topic string, ops ...kmsg.IncrementalAlterConfigsRequestResourceConfig) kmsg.IncrementalAlterConfigsRequestResource {
	r := kmsg.NewIncrementalAlterConfigsRequestResource()
	r.ResourceType, r.ResourceName, r.Configs = kmsg.ConfigResourceTypeTopic, topic, ops
	return r
}

// Malformed alter requests are refused as Kafka's brokers refuse them
// before anything is changed: a resource named twice (every occurrence), a
// key named twice and a null value where the operation needs one are
// INVALID_REQUEST with Kafka's messages; APPEND to a key that is not a
// list and an unknown key are INVALID_CONFIG.
func TestAlterConfigsMalformed(t *testing.T) {
	s := startTestServer(t)
	cl := testClient(t, s)
	ctx := testContext(t, 20*time.Second)
	createTopic(t, ctx, kadm.NewClient(cl), 1, "t", map[string]*string{"retention.ms": kmsg.StringPtr("1000")})
	createTopic(t, ctx, kadm.NewClient(cl), 1, "u", nil)
	retention := kmsg.StringPtr("2000")

	incremental := func(resources ...kmsg.IncrementalAlterConfigsRequestResource) []alterAnswerOf {
		t.Helper()
		req := kmsg.NewPtrIncrementalAlterConfigsRequest()
		req.Resources = resources
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		return alterAnswers(resp.Resources)
	}
	check := func(what string, got []alterAnswerOf, want ...alterAnswerOf) {
		t.Helper()
		if !slices.Equal(got, want) {
			t.Errorf("%s: answered %+v, want %+v", what, got, want)
		}
	}
	invalid := func(name, msg string) alterAnswerOf { return alterAnswerOf{name, kerr.InvalidRequest.Code, msg} }

	check("a topic named twice", incremental(
		topicResource("t", alterConfigOp("retention.ms", kmsg.IncrementalAlterConfigOpSet, retention)),
		topicResource("u", alterConfigOp("retention.ms", kmsg.IncrementalAlterConfigOpSet, retention)),
		topicResource("t", alterConfigOp("segment.ms", kmsg.IncrementalAlterConfigOpSet, retention)),
	), alterAnswerOf{"u", 0, ""}, invalid("t", "Each resource must appear at most once."), invalid("t", "Each resource must appear at most once."))
	check("a key named twice", incremental(topicResource("t",
		alterConfigOp("retention.ms", kmsg.IncrementalAlterConfigOpSet, retention),
		alterConfigOp("retention.ms", kmsg.IncrementalAlterConfigOpDelete, nil),
	)), invalid("t", "Error due to duplicate config keys"))
	check("null values", incremental(topicResource("t",
		alterConfigOp("cleanup.policy", kmsg.IncrementalAlterConfigOpAppend, nil),
		alterConfigOp("segment.ms", kmsg.IncrementalAlterConfigOpSet, nil),
		alterConfigOp("retention.ms", kmsg.IncrementalAlterConfigOpDelete, nil),
	)), invalid("t", "Null value not supported for : cleanup.policy, segment.ms"))
	check("APPEND to a number", incremental(topicResource("t",
		alterConfigOp("retention.ms", kmsg.IncrementalAlterConfigOpAppend, retention),
	)), alterAnswerOf{"t", kerr.InvalidConfig.Code, "Can't APPEND to key retention.ms because its type is not LIST."})
	check("an unknown key", incremental(topicResource("t",
		alterConfigOp("no.such.key", kmsg.IncrementalAlterConfigOpSet, retention),
	)), alterAnswerOf{"t", kerr.InvalidConfig.Code, "Unknown topic config name: no.such.key"})

	// AlterConfigs replaces every override: a null value was taken for a
	// deletion, where Kafka refuses the resource.
	legacy := kmsg.NewPtrAlterConfigsRequest()
	res := kmsg.NewAlterConfigsRequestResource()
	res.ResourceType, res.ResourceName = kmsg.ConfigResourceTypeTopic, "t"
	for _, name := range []string{"retention.ms", "segment.ms", "segment.ms"} {
		c := kmsg.NewAlterConfigsRequestResourceConfig()
		c.Name = name
		res.Configs = append(res.Configs, c)
	}
	legacy.Resources = append(legacy.Resources, res)
	for _, c := range []struct {
		configs int
		msg     string
	}{{3, "Error due to duplicate config keys"}, {2, "Null value not supported for : retention.ms, segment.ms"}} {
		legacy.Resources[0].Configs = res.Configs[:c.configs]
		resp, err := legacy.RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		check("AlterConfigs", alterAnswers(resp.Resources), invalid("t", c.msg))
	}
	if got := s.meta.Image().Topics["t"].Configs["retention.ms"]; got != "1000" {
		t.Fatalf("t's retention.ms is %q after refused changes, want 1000", got)
	}
}

// DescribeConfigs answers as Kafka's brokers do: an empty list of names
// asks for every config, as a null one does; a topic name that cannot be
// one is INVALID_TOPIC_EXCEPTION; another broker's resource is refused
// with Kafka's message.
func TestDescribeConfigsResources(t *testing.T) {
	s := startTestServer(t)
	cl := testClient(t, s)
	ctx := testContext(t, 20*time.Second)
	createTopic(t, ctx, kadm.NewClient(cl), 1, "t", nil)
	describe := func(rtype kmsg.ConfigResourceType, name string, names []string) kmsg.DescribeConfigsResponseResource {
		t.Helper()
		req := kmsg.NewPtrDescribeConfigsRequest()
		r := kmsg.NewDescribeConfigsRequestResource()
		r.ResourceType, r.ResourceName, r.ConfigNames = rtype, name, names
		req.Resources = append(req.Resources, r)
		// Sent to this broker whatever the resource names.
		kr, err := cl.Broker(int(s.cfg.NodeID)).Request(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		resp := kr.(*kmsg.DescribeConfigsResponse)
		if len(resp.Resources) != 1 {
			t.Fatalf("describe %s: %+v", name, resp.Resources)
		}
		return resp.Resources[0]
	}
	all := describe(kmsg.ConfigResourceTypeTopic, "t", nil)
	if empty := describe(kmsg.ConfigResourceTypeTopic, "t", []string{}); len(all.Configs) == 0 || len(empty.Configs) != len(all.Configs) {
		t.Errorf("described %d configs for an empty list of names, %d for none", len(empty.Configs), len(all.Configs))
	}
	if r := describe(kmsg.ConfigResourceTypeTopic, "bad/name", nil); r.ErrorCode != kerr.InvalidTopicException.Code {
		t.Errorf("describe bad/name: code %d %q, want INVALID_TOPIC_EXCEPTION", r.ErrorCode, deref(r.ErrorMessage))
	}
	if r := describe(kmsg.ConfigResourceType(resourceGroup), "", nil); r.ErrorCode != kerr.InvalidRequest.Code || deref(r.ErrorMessage) != "Group name must not be empty" {
		t.Errorf("describe group \"\": code %d %q, want INVALID_REQUEST as Kafka words it", r.ErrorCode, deref(r.ErrorMessage))
	}
	own := strconv.Itoa(int(s.cfg.NodeID))
	for name, want := range map[string]string{
		"7": "Unexpected broker id, expected " + own + " or empty string, but received 7",
		"x": "Broker id must be an integer, but it is: x",
	} {
		if r := describe(kmsg.ConfigResourceTypeBroker, name, nil); r.ErrorCode != kerr.InvalidRequest.Code || deref(r.ErrorMessage) != want {
			t.Errorf("describe broker %s: code %d %q, want INVALID_REQUEST %q", name, r.ErrorCode, deref(r.ErrorMessage), want)
		}
	}
}

// DescribeConfigs lists the synonyms of a key as Kafka's brokers do: the
// layers that set it, most specific first (the topic's or group's own
// value, this broker's dynamic value, the cluster default, the static
// configuration, the key's default), each broker key's layers in Kafka's
// order of synonyms, starting from the key the entry stands for; the
// entry's source is the first synonym's.
func TestDescribeConfigsSynonyms(t *testing.T) {
	s := startTestServer(t, "log.retention.hours=2", "log.cleaner.delete.retention.ms=5000", "group.consumer.session.timeout.ms=50000")
	cl := testClient(t, s)
	ctx := testContext(t, 20*time.Second)
	adm := kadm.NewClient(cl)
	createTopic(t, ctx, adm, 1, "t", map[string]*string{"delete.retention.ms": strPtr("7000")})
	// The cluster default, as any broker setting, is set through the
	// controller; each broker applies it when its image has it.
	req := kmsg.NewPtrIncrementalAlterConfigsRequest()
	res := kmsg.NewIncrementalAlterConfigsRequestResource()
	res.ResourceType = kmsg.ConfigResourceTypeBroker
	res.Configs = []kmsg.IncrementalAlterConfigsRequestResourceConfig{{Name: "log.retention.ms", Op: opSet, Value: strPtr("60000")}}
	req.Resources = append(req.Resources, res)
	if resp, err := req.RequestWith(ctx, cl); err != nil || resp.Resources[0].ErrorCode != 0 {
		t.Fatalf("setting the cluster default: %v %+v", err, resp)
	}
	for s.meta.Image().BrokerConfig("")["log.retention.ms"] != "60000" {
		if ctx.Err() != nil {
			t.Fatal("the cluster default never reached the image")
		}
		time.Sleep(10 * time.Millisecond)
	}
	setGroupConfig(t, cl, "g", "share.acquire.mode", "record_limit")

	type syn struct {
		name, value string
		source      kmsg.ConfigSource
	}
	describe := func(rtype kmsg.ConfigResourceType, name string) map[string]kmsg.DescribeConfigsResponseResourceConfig {
		t.Helper()
		req := kmsg.NewPtrDescribeConfigsRequest()
		req.IncludeSynonyms = true
		r := kmsg.NewDescribeConfigsRequestResource()
		r.ResourceType, r.ResourceName = rtype, name
		req.Resources = append(req.Resources, r)
		kr, err := cl.Broker(int(s.cfg.NodeID)).Request(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		resp := kr.(*kmsg.DescribeConfigsResponse)
		if len(resp.Resources) != 1 || resp.Resources[0].ErrorCode != 0 {
			t.Fatalf("describe %q: %+v", name, resp.Resources)
		}
		out := map[string]kmsg.DescribeConfigsResponseResourceConfig{}
		for _, c := range resp.Resources[0].Configs {
			out[c.Name] = c
		}
		return out
	}
	check := func(what string, got map[string]kmsg.DescribeConfigsResponseResourceConfig, key, value string, source kmsg.ConfigSource, want ...syn) {
		t.Helper()
		c, ok := got[key]
		if !ok {
			t.Errorf("%s: %s not described", what, key)
			return
		}
		var have []syn
		for _, sy := range c.ConfigSynonyms {
			have = append(have, syn{sy.Name, deref(sy.Value), sy.Source})
		}
		if deref(c.Value) != value || c.Source != source || !slices.Equal(have, want) {
			t.Errorf("%s: %s = %q source %v synonyms %v; want %q source %v synonyms %v", what, key, deref(c.Value), c.Source, have, value, source, want)
		}
	}
	const (
		topic          = kmsg.ConfigSourceDynamicTopicConfig
		group          = kmsg.ConfigSourceGroupConfig
		clusterDefault = kmsg.ConfigSourceDynamicDefaultBrokerConfig
		static         = kmsg.ConfigSourceStaticBrokerConfig
		dflt           = kmsg.ConfigSourceDefaultConfig
	)

	tc := describe(kmsg.ConfigResourceTypeTopic, "t")
	check("topic", tc, "retention.ms", "60000", clusterDefault,
		syn{"log.retention.ms", "60000", clusterDefault}, syn{"log.retention.hours", "2", static}, syn{"log.retention.hours", "168", dflt})
	check("topic", tc, "delete.retention.ms", "7000", topic,
		syn{"delete.retention.ms", "7000", topic}, syn{"log.cleaner.delete.retention.ms", "5000", static}, syn{"log.cleaner.delete.retention.ms", "86400000", dflt})
	check("topic", tc, "cleanup.policy", "delete", dflt, syn{"log.cleanup.policy", "delete", dflt})
	// As in Kafka, the layers of a coarser unit are listed only after the
	// key the topic key stands for: segment.ms, from log.roll.hours'
	// default, has none.
	check("topic", tc, "segment.ms", "604800000", dflt)
	check("topic", tc, "leader.replication.throttled.replicas", "", dflt)

	bc := describe(kmsg.ConfigResourceTypeBroker, strconv.Itoa(int(s.cfg.NodeID)))
	check("broker", bc, "log.retention.ms", "60000", clusterDefault,
		syn{"log.retention.ms", "60000", clusterDefault}, syn{"log.retention.hours", "2", static}, syn{"log.retention.hours", "168", dflt})
	check("broker", bc, "log.retention.hours", "2", static, syn{"log.retention.hours", "2", static}, syn{"log.retention.hours", "168", dflt})
	check("broker", bc, "log.retention.minutes", "", dflt)

	dc := describe(kmsg.ConfigResourceTypeBroker, "")
	check("cluster default", dc, "log.retention.ms", "60000", clusterDefault, syn{"log.retention.ms", "60000", clusterDefault})

	gc := describe(kmsg.ConfigResourceType(resourceGroup), "g")
	check("group", gc, "consumer.session.timeout.ms", "50000", static,
		syn{"group.consumer.session.timeout.ms", "50000", static}, syn{"group.consumer.session.timeout.ms", "45000", dflt})
	check("group", gc, "share.acquire.mode", "record_limit", group,
		syn{"share.acquire.mode", "record_limit", group}, syn{"share.acquire.mode", "batch_optimized", dflt})
}
