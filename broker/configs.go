package broker

// The config APIs, on every listener: DescribeConfigs (key 32) v1-v4,
// AlterConfigs (key 33) v0-v2, IncrementalAlterConfigs (key 44) v0-v1.
//
// Topic, broker and group resources, with Kafka's config names, sources and
// defaults (config/). Alterations are relayed to the active controller.
// BROKER resources are one broker's id or "" for the cluster-wide default;
// the keys config.IsDynamicBrokerKey names change at runtime (stored in the
// metadata quorum, applied by every broker as its image changes); any other
// broker key answers INVALID_REQUEST, "Cannot update these configs
// dynamically", as in Kafka. A BROKER resource is checked by the broker
// that receives the request before it goes to the controller
// (dynamic_listener.go): a broker's own resource only there, where a new
// TLS key store can be opened and compared with the served one.

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoalmq/shoal/config"
	"github.com/shoalmq/shoal/raftmeta"
)

// Kafka's ConfigResource types.
const (
	resourceTopic  = 2
	resourceBroker = 4
	resourceGroup  = 32
)

func (s *Server) handleDescribeConfigs(_ context.Context, _ *reqCtx, req *kmsg.DescribeConfigsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.DescribeConfigsResponse)
	img := s.meta.Image()
	// Describe what this image holds, even before the metadata watcher
	// has published it: a change is visible as soon as it is applied.
	s.publishDynamicConfigs(img)
	for _, rr := range req.Resources {
		out := kmsg.NewDescribeConfigsResponseResource()
		out.ResourceType, out.ResourceName = rr.ResourceType, rr.ResourceName
		var entries []config.Entry
		// synonyms lists what sets an entry, most specific first: its
		// source is the first's, as in Kafka.
		var synonyms func(name string) []config.Synonym
		// brokerKeys marks a broker's own entries: those that cannot
		// change at runtime are read-only.
		brokerKeys := false
		switch rr.ResourceType {
		case resourceTopic:
			if err := raftmeta.ValidateTopicName(rr.ResourceName); err != nil {
				out.ErrorCode, out.ErrorMessage = errorCode(err), errorMessage(err)
				break
			}
			t := img.Topics[rr.ResourceName]
			if t == nil {
				out.ErrorCode = kerr.UnknownTopicOrPartition.Code
				break
			}
			entries = s.cfg.EffectiveTopicConfig(t.Configs).Sorted()
			synonyms = func(name string) []config.Synonym { return s.cfg.TopicSynonyms(name, t.Configs) }
		case resourceGroup:
			if rr.ResourceName == "" {
				out.ErrorCode, out.ErrorMessage = kerr.InvalidRequest.Code, strPtr("Group name must not be empty")
				break
			}
			overrides := img.GroupConfig(rr.ResourceName)
			entries = s.cfg.EffectiveGroupConfig(overrides).Sorted()
			synonyms = func(name string) []config.Synonym { return s.cfg.GroupSynonyms(name, overrides) }
		case resourceBroker:
			if err := s.checkBrokerResource(rr.ResourceName, false); err != nil {
				out.ErrorCode, out.ErrorMessage = errorCode(err), errorMessage(err)
				break
			}
			if rr.ResourceName == "" {
				// As Kafka: the cluster default resource describes only
				// the dynamic defaults that are set.
				entries = clusterDefaultEntries(img.BrokerConfig(""))
				synonyms = s.clusterDefaultSynonyms
				break
			}
			entries = append(s.cfg.BrokerEntries(), s.cfg.DynamicListenerEntries()...)
			synonyms = s.cfg.BrokerSynonyms
			brokerKeys = true
		default:
			out.ErrorCode = kerr.InvalidRequest.Code
			out.ErrorMessage = strPtr(fmt.Sprintf("resource type %d is not supported", rr.ResourceType))
		}
		for _, e := range entries {
			// As in Kafka, an empty list of names asks for every config,
			// as a null one does.
			if len(rr.ConfigNames) > 0 && !contains(rr.ConfigNames, e.Name) {
				continue
			}
			c := kmsg.NewDescribeConfigsResponseResourceConfig()
			c.Name = e.Name
			// As in Kafka, a password-type value is never sent: it is
			// described as null and sensitive.
			value := strPtr(e.Value)
			if e.Type == config.Password {
				value, c.IsSensitive = nil, true
			}
			c.Value = value
			c.ReadOnly = brokerKeys && !config.IsDynamicBrokerKey(e.Name)
			c.ConfigType = kmsg.ConfigType(e.Type)
			if req.IncludeDocumentation && e.Doc != "" {
				c.Documentation = strPtr(e.Doc)
			}
			syns := synonyms(e.Name)
			c.Source = kmsg.ConfigSourceDefaultConfig
			if len(syns) > 0 {
				c.Source = kmsg.ConfigSource(syns[0].Source)
			}
			if req.IncludeSynonyms {
				for _, sy := range syns {
					syn := kmsg.NewDescribeConfigsResponseResourceConfigConfigSynonym()
					syn.Name, syn.Value, syn.Source = sy.Name, strPtr(sy.Value), kmsg.ConfigSource(sy.Source)
					if c.IsSensitive {
						syn.Value = nil
					}
					c.ConfigSynonyms = append(c.ConfigSynonyms, syn)
				}
			}
			out.Configs = append(out.Configs, c)
		}
		resp.Resources = append(resp.Resources, out)
	}
	return resp, nil
}

// checkBrokerResource accepts this broker's id or "" (the cluster default),
// refusing others with the messages Kafka gives to a describe or, alter
// set, to an alter.
func (s *Server) checkBrokerResource(name string, alter bool) error {
	if name == "" {
		return nil
	}
	id, err := strconv.ParseInt(name, 10, 32)
	kind, orEmpty := "Broker", " or empty string"
	if alter {
		kind, orEmpty = "Node", ""
	}
	if err != nil {
		return &raftmeta.Error{Code: kerr.InvalidRequest, Message: kind + " id must be an integer, but it is: " + name}
	}
	if int32(id) != s.cfg.NodeID {
		return &raftmeta.Error{Code: kerr.InvalidRequest, Message: fmt.Sprintf("Unexpected broker id, expected %d%s, but received %s", s.cfg.NodeID, orEmpty, name)}
	}
	return nil
}

// clusterDefaultEntries lists the cluster-wide dynamic defaults.
func clusterDefaultEntries(overrides map[string]string) []config.Entry {
	out := make([]config.Entry, 0, len(overrides))
	for _, k := range slices.Sorted(maps.Keys(overrides)) {
		e := config.Entry{Name: k, Value: overrides[k]}
		if d := config.BrokerKeyDef(k); d != nil {
			e.Type, e.Doc = d.Type, d.Doc
		}
		out = append(out, e)
	}
	return out
}

// clusterDefaultSynonyms are the synonyms of a cluster default: as in
// Kafka, only the cluster defaults among them.
func (s *Server) clusterDefaultSynonyms(name string) []config.Synonym {
	var out []config.Synonym
	for _, sy := range s.cfg.BrokerSynonyms(name) {
		if sy.Source == config.SourceDynamicDefaultBroker {
			out = append(out, sy)
		}
	}
	return out
}

func strPtr(s string) *string { return &s }

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

// alterResource applies a config change to one resource. changes turns the
// resource's current overrides into the keys to set and delete; the
// controller checks them and whether the resource exists.
func (s *Server) alterResource(ctx context.Context, img *raftmeta.Image, rtype int8, name string, validateOnly bool,
	changes func(current map[string]string) (map[string]string, []string, error)) error {
	var current map[string]string
	var alter func(ctx context.Context, name string, set map[string]string, del []string, validateOnly bool) error
	switch rtype {
	case resourceTopic:
		if t := img.Topics[name]; t != nil {
			current = t.Configs
		}
		alter = s.ctrl.AlterTopicConfigs
	case resourceGroup:
		current, alter = img.GroupConfig(name), s.ctrl.AlterGroupConfigs
	case resourceBroker:
		current, alter = img.BrokerConfig(name), s.ctrl.AlterBrokerConfigs
	default:
		return &raftmeta.Error{Code: kerr.InvalidRequest, Message: fmt.Sprintf("Unknown resource type %d", rtype)}
	}
	set, del, err := changes(current)
	if err != nil {
		return err
	}
	return alter(ctx, name, set, del, validateOnly)
}

func (s *Server) handleAlterConfigs(ctx context.Context, rc *reqCtx, req *kmsg.AlterConfigsRequest, forward forwardFunc) (kmsg.Response, error) {
	items := make([]alterItem, len(req.Resources))
	for i, rr := range req.Resources {
		var names, nulls []string
		for _, c := range rr.Configs {
			names = append(names, c.Name)
			if c.Value == nil {
				nulls = append(nulls, c.Name)
			}
		}
		items[i] = alterItem{rtype: rr.ResourceType, name: rr.ResourceName, malformed: malformedConfigs(names, nulls), changes: func(current map[string]string) (map[string]string, []string, error) {
			// AlterConfigs replaces the whole set of overrides.
			set := map[string]string{}
			for _, c := range rr.Configs {
				set[c.Name] = *c.Value
			}
			var del []string
			for k := range current {
				if _, ok := set[k]; !ok {
					del = append(del, k)
				}
			}
			return set, del, nil
		}}
	}
	resp := req.ResponseKind().(*kmsg.AlterConfigsResponse)
	resp.Resources = alterResources(s, ctx, rc, req, forward, req.ValidateOnly, items, &req.Resources,
		func(r kmsg.Response) []kmsg.AlterConfigsResponseResource {
			return r.(*kmsg.AlterConfigsResponse).Resources
		})
	return resp, nil
}

// alterItem is one resource of an AlterConfigs or IncrementalAlterConfigs
// request: changes turns the resource's current overrides into the keys
// to set and delete; malformed, if not nil, refuses the resource before
// anything else is looked at.
type alterItem struct {
	rtype     kmsg.ConfigResourceType
	name      string
	malformed error
	changes   func(current map[string]string) (map[string]string, []string, error)
}

// malformedConfigs is Kafka's check of one resource's config list, made by
// the broker a client reaches: a key named twice, or a value null where
// the operation needs one (nulls), is INVALID_REQUEST.
func malformedConfigs(names, nulls []string) error {
	seen := map[string]bool{}
	for _, n := range names {
		if seen[n] {
			return &raftmeta.Error{Code: kerr.InvalidRequest, Message: "Error due to duplicate config keys"}
		}
		seen[n] = true
	}
	if len(nulls) > 0 {
		return &raftmeta.Error{Code: kerr.InvalidRequest, Message: "Null value not supported for : " + strings.Join(nulls, ", ")}
	}
	return nil
}

// repeatedResources marks the items whose resource the request names more
// than once: Kafka refuses every one of them.
func repeatedResources(items []alterItem) []bool {
	type key struct {
		rtype kmsg.ConfigResourceType
		name  string
	}
	count := map[key]int{}
	for _, it := range items {
		count[key{it.rtype, it.name}]++
	}
	out := make([]bool, len(items))
	for i, it := range items {
		out[i] = count[key{it.rtype, it.name}] > 1
	}
	return out
}

// alterResult is the answer for one resource.
type alterResult struct {
	rtype   kmsg.ConfigResourceType
	name    string
	code    int16
	message *string
}

// alterResource is the answer to one resource of AlterConfigs or of
// IncrementalAlterConfigs: the two have the same fields, so either
// converts to the other.
type alterResource interface {
	kmsg.AlterConfigsResponseResource | kmsg.IncrementalAlterConfigsResponseResource
}

// alterResources runs items, the resources of req that *resources holds,
// through alterConfigs and returns their answers; answered picks the
// answers out of a forwarded request's response.
func alterResources[T any, R alterResource](s *Server, ctx context.Context, rc *reqCtx, req kmsg.Request, forward forwardFunc,
	validateOnly bool, items []alterItem, resources *[]T, answered func(kmsg.Response) []R) []R {
	results := s.alterConfigs(ctx, rc, req, forward, validateOnly, items,
		func(kept []bool) { *resources = keepIndexes(*resources, kept) },
		func(r kmsg.Response) []alterResult { return mapSlice(answered(r), alterResultOf[R]) })
	return mapSlice(results, alterAnswer[R])
}

func alterResultOf[R alterResource](r R) alterResult {
	x := kmsg.AlterConfigsResponseResource(r)
	return alterResult{x.ResourceType, x.ResourceName, x.ErrorCode, x.ErrorMessage}
}

func alterAnswer[R alterResource](r alterResult) R {
	return R(kmsg.AlterConfigsResponseResource{ResourceType: r.rtype, ResourceName: r.name, ErrorCode: r.code, ErrorMessage: r.message})
}

// alterConfigs is the path both alter APIs take. On the broker the client
// reached, each resource is checked first, as Kafka's brokers do: one
// named twice, a malformed config list and a BROKER resource this broker
// refuses (preprocessBroker) are dropped from req (keep); the rest is
// forwarded to the active controller (forward, answered through forwarded)
// or, on it, applied here.
// Refusals are answered after the others.
func (s *Server) alterConfigs(ctx context.Context, rc *reqCtx, req kmsg.Request, forward forwardFunc, validateOnly bool, items []alterItem,
	keep func(kept []bool), forwarded func(kmsg.Response) []alterResult) []alterResult {
	img := s.meta.Image()
	var refused []alterResult
	var accepted []brokerAlter
	kept := make([]bool, len(items))
	repeated := repeatedResources(items)
	var rest []alterItem
	for i, it := range items {
		var a []brokerAlter
		err := it.malformed
		if repeated[i] {
			err = &raftmeta.Error{Code: kerr.InvalidRequest, Message: "Each resource must appear at most once."}
		}
		// A forwarded request's BROKER resources were checked by the
		// broker that forwarded it.
		if err == nil && !rc.conn.forwarded {
			a, err = s.preprocessBroker(img, it)
		}
		if err != nil {
			refused = append(refused, alterResult{it.rtype, it.name, errorCode(err), errorMessage(err)})
			continue
		}
		accepted = append(accepted, a...)
		kept[i] = true
		rest = append(rest, it)
	}
	keep(kept)
	items = rest
	var results []alterResult
	if len(items) > 0 {
		if r, ok := forward(ctx, rc, req); ok {
			results = forwarded(r)
		} else {
			for _, it := range items {
				err := s.alterResource(ctx, img, int8(it.rtype), it.name, validateOnly, it.changes)
				results = append(results, alterResult{it.rtype, it.name, errorCode(err), errorMessage(err)})
			}
		}
	}
	for _, r := range results {
		if r.rtype != resourceBroker || r.code != 0 || validateOnly {
			continue
		}
		for _, a := range accepted {
			if a.name == r.name {
				s.reread(a)
			}
		}
	}
	return append(results, refused...)
}

// preprocessBroker runs the receiving broker's check of a BROKER resource
// (checkBrokerAlter) and returns the change it would make; other resource
// types pass unchecked.
func (s *Server) preprocessBroker(img *raftmeta.Image, it alterItem) ([]brokerAlter, error) {
	if it.rtype != resourceBroker {
		return nil, nil
	}
	set, del, err := it.changes(img.BrokerConfig(it.name))
	if err != nil {
		return nil, err
	}
	a := brokerAlter{name: it.name, set: set, del: del}
	if err := s.checkBrokerAlter(img, &a); err != nil {
		return nil, err
	}
	return []brokerAlter{a}, nil
}

// mapSlice returns f of each element of xs.
func mapSlice[T, U any](xs []T, f func(T) U) []U {
	out := make([]U, 0, len(xs))
	for _, x := range xs {
		out = append(out, f(x))
	}
	return out
}

// keepIndexes returns the elements of xs whose index kept marks.
func keepIndexes[T any](xs []T, kept []bool) []T {
	out := xs[:0]
	for i, x := range xs {
		if kept[i] {
			out = append(out, x)
		}
	}
	return out
}

// Kafka's IncrementalAlterConfigs operations.
const (
	opSet      = 0
	opDelete   = 1
	opAppend   = 2
	opSubtract = 3
)

func (s *Server) handleIncrementalAlterConfigs(ctx context.Context, rc *reqCtx, req *kmsg.IncrementalAlterConfigsRequest, forward forwardFunc) (kmsg.Response, error) {
	items := make([]alterItem, len(req.Resources))
	for i, rr := range req.Resources {
		kind, lookup, defaults := "topic", config.TopicDef, s.cfg.TopicDefault
		switch rr.ResourceType {
		case resourceGroup:
			kind, lookup, defaults = "group", config.GroupDef, s.groupDefault
		case resourceBroker:
			kind, lookup, defaults = "broker", config.BrokerKeyDef, s.brokerDefault
		}
		var names, nulls []string
		for _, c := range rr.Configs {
			names = append(names, c.Name)
			if c.Value == nil && c.Op != opDelete {
				nulls = append(nulls, c.Name)
			}
		}
		items[i] = alterItem{rtype: rr.ResourceType, name: rr.ResourceName, malformed: malformedConfigs(names, nulls), changes: func(current map[string]string) (map[string]string, []string, error) {
			return incrementalChanges(current, rr.Configs, kind, lookup, defaults)
		}}
	}
	resp := req.ResponseKind().(*kmsg.IncrementalAlterConfigsResponse)
	resp.Resources = alterResources(s, ctx, rc, req, forward, req.ValidateOnly, items, &req.Resources,
		func(r kmsg.Response) []kmsg.IncrementalAlterConfigsResponseResource {
			return r.(*kmsg.IncrementalAlterConfigsResponse).Resources
		})
	return resp, nil
}

// incrementalChanges turns SET/DELETE/APPEND/SUBTRACT operations, whose
// list malformedConfigs accepted, into the overrides to set and delete of
// a resource of kind (topic, group or broker). APPEND and SUBTRACT work on
// list keys, on the topic's effective value.
func incrementalChanges(current map[string]string, ops []kmsg.IncrementalAlterConfigsRequestResourceConfig,
	kind string, lookup func(string) *config.Def, defaults func(string) (string, config.Source)) (map[string]string, []string, error) {
	set := map[string]string{}
	var del []string
	for _, op := range ops {
		d := lookup(op.Name)
		if d == nil {
			return nil, nil, &raftmeta.Error{Code: kerr.InvalidConfig, Message: fmt.Sprintf("Unknown %s config name: %s", kind, op.Name)}
		}
		switch op.Op {
		case opSet:
			set[op.Name] = *op.Value
		case opDelete:
			del = append(del, op.Name)
		case opAppend, opSubtract:
			if d.Type != config.List {
				verb := "APPEND"
				if op.Op == opSubtract {
					verb = "SUBTRACT"
				}
				return nil, nil, &raftmeta.Error{Code: kerr.InvalidConfig, Message: fmt.Sprintf("Can't %s to key %s because its type is not LIST.", verb, op.Name)}
			}
			cur, ok := current[op.Name]
			if !ok {
				cur, _ = defaults(op.Name)
			}
			set[op.Name] = editList(cur, *op.Value, op.Op == opAppend)
		default:
			return nil, nil, fmt.Errorf("%w: unknown operation %d", kerr.InvalidRequest, op.Op)
		}
	}
	return set, del, nil
}

// editList appends or removes the comma-separated items of change.
func editList(cur, change string, add bool) string {
	var items []string
	for _, e := range strings.Split(cur, ",") {
		if e = strings.TrimSpace(e); e != "" {
			items = append(items, e)
		}
	}
	for _, c := range strings.Split(change, ",") {
		c = strings.TrimSpace(c)
		if c == "" {
			continue
		}
		if add {
			if !contains(items, c) {
				items = append(items, c)
			}
			continue
		}
		kept := items[:0]
		for _, e := range items {
			if e != c {
				kept = append(kept, e)
			}
		}
		items = kept
	}
	return strings.Join(items, ",")
}

// brokerDefault is a broker key's current value, what APPEND and SUBTRACT
// edit when the resource does not override it.
func (s *Server) brokerDefault(name string) (string, config.Source) {
	v, _ := s.cfg.Value(name)
	return v, config.SourceStaticBroker
}

// groupDefault is a group key's value when the group does not override it.
func (s *Server) groupDefault(name string) (string, config.Source) {
	e := s.cfg.EffectiveGroupConfig(nil)[name]
	return e.Value, e.Source
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
