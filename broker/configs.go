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
		// brokerKeys marks a broker's own entries: those that cannot
		// change at runtime are read-only.
		brokerKeys := false
		switch rr.ResourceType {
		case resourceTopic:
			t := img.Topics[rr.ResourceName]
			if t == nil {
				out.ErrorCode = kerr.UnknownTopicOrPartition.Code
				break
			}
			entries = s.cfg.EffectiveTopicConfig(t.Configs).Sorted()
		case resourceGroup:
			if rr.ResourceName == "" {
				out.ErrorCode = kerr.InvalidRequest.Code
				break
			}
			entries = s.cfg.EffectiveGroupConfig(img.GroupConfig(rr.ResourceName)).Sorted()
		case resourceBroker:
			if err := s.checkBrokerResource(rr.ResourceName); err != nil {
				out.ErrorCode, out.ErrorMessage = errorCode(err), errorMessage(err)
				break
			}
			if rr.ResourceName == "" {
				// As Kafka: the cluster default resource describes only
				// the dynamic defaults that are set.
				entries = clusterDefaultEntries(img.BrokerConfig(""))
				break
			}
			entries = append(s.cfg.BrokerEntries(), s.cfg.DynamicListenerEntries()...)
			brokerKeys = true
		default:
			out.ErrorCode = kerr.InvalidRequest.Code
			out.ErrorMessage = strPtr(fmt.Sprintf("resource type %d is not supported", rr.ResourceType))
		}
		for _, e := range entries {
			if rr.ConfigNames != nil && !contains(rr.ConfigNames, e.Name) {
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
			c.Source = kmsg.ConfigSource(e.Source)
			c.ConfigType = kmsg.ConfigType(e.Type)
			if req.IncludeDocumentation && e.Doc != "" {
				c.Documentation = strPtr(e.Doc)
			}
			if req.IncludeSynonyms {
				syn := kmsg.NewDescribeConfigsResponseResourceConfigConfigSynonym()
				syn.Name, syn.Value, syn.Source = e.Name, value, kmsg.ConfigSource(e.Source)
				c.ConfigSynonyms = append(c.ConfigSynonyms, syn)
			}
			out.Configs = append(out.Configs, c)
		}
		resp.Resources = append(resp.Resources, out)
	}
	return resp, nil
}

// checkBrokerResource accepts this broker's id or "" (the cluster default).
func (s *Server) checkBrokerResource(name string) error {
	if name == "" {
		return nil
	}
	id, err := strconv.ParseInt(name, 10, 32)
	if err != nil || int32(id) != s.cfg.NodeID {
		return fmt.Errorf("%w: broker %q is not this broker (%d)", kerr.InvalidRequest, name, s.cfg.NodeID)
	}
	return nil
}

// clusterDefaultEntries lists the cluster-wide dynamic defaults.
func clusterDefaultEntries(overrides map[string]string) []config.Entry {
	out := make([]config.Entry, 0, len(overrides))
	for _, k := range slices.Sorted(maps.Keys(overrides)) {
		e := config.Entry{Name: k, Value: overrides[k], Source: config.SourceDynamicDefaultBroker}
		if d := config.BrokerKeyDef(k); d != nil {
			e.Type, e.Doc = d.Type, d.Doc
		}
		out = append(out, e)
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
// resource's current overrides into the keys to set and delete.
func (s *Server) alterResource(ctx context.Context, img *raftmeta.Image, rtype int8, name string, validateOnly bool,
	changes func(current map[string]string) (map[string]string, []string, error)) error {
	switch rtype {
	case resourceTopic:
	case resourceGroup:
		set, del, err := changes(img.GroupConfig(name))
		if err != nil {
			return err
		}
		return s.ctrl.AlterGroupConfigs(ctx, name, set, del, validateOnly)
	case resourceBroker:
		set, del, err := changes(img.BrokerConfig(name))
		if err != nil {
			return err
		}
		return s.ctrl.AlterBrokerConfigs(ctx, name, set, del, validateOnly)
	default:
		return fmt.Errorf("%w: resource type %d is not supported", kerr.InvalidRequest, rtype)
	}
	t := img.Topics[name]
	if t == nil {
		return kerr.UnknownTopicOrPartition
	}
	set, del, err := changes(t.Configs)
	if err != nil {
		return err
	}
	for k, v := range set {
		if err := config.ValidateTopicConfig(k, &v); err != nil {
			return fmt.Errorf("%w: %v", kerr.InvalidConfig, err)
		}
	}
	for _, k := range del {
		if err := config.ValidateTopicConfig(k, nil); err != nil {
			return fmt.Errorf("%w: %v", kerr.InvalidConfig, err)
		}
	}
	return s.ctrl.AlterTopicConfigs(ctx, name, set, del, validateOnly)
}

func (s *Server) handleAlterConfigs(ctx context.Context, rc *reqCtx, req *kmsg.AlterConfigsRequest, forward forwardFunc) (kmsg.Response, error) {
	items := make([]alterItem, len(req.Resources))
	for i, rr := range req.Resources {
		items[i] = alterItem{rtype: rr.ResourceType, name: rr.ResourceName, changes: func(current map[string]string) (map[string]string, []string, error) {
			// AlterConfigs replaces the whole set of overrides.
			set := map[string]string{}
			for _, c := range rr.Configs {
				if c.Value != nil {
					set[c.Name] = *c.Value
				}
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
// to set and delete.
type alterItem struct {
	rtype   kmsg.ConfigResourceType
	name    string
	changes func(current map[string]string) (map[string]string, []string, error)
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
// reached, each BROKER resource is checked first (preprocessBroker) and a
// refused one is dropped from req (keep); the rest is forwarded to the
// active controller (forward, answered through forwarded) or, on it,
// applied here.
// Refusals are answered after the others.
func (s *Server) alterConfigs(ctx context.Context, rc *reqCtx, req kmsg.Request, forward forwardFunc, validateOnly bool, items []alterItem,
	keep func(kept []bool), forwarded func(kmsg.Response) []alterResult) []alterResult {
	img := s.meta.Image()
	var refused []alterResult
	var accepted []brokerAlter
	if !rc.conn.forwarded {
		kept := make([]bool, len(items))
		var rest []alterItem
		for i, it := range items {
			a, err := s.preprocessBroker(img, it)
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
	}
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
		lookup, defaults := config.TopicDef, s.cfg.TopicDefault
		switch rr.ResourceType {
		case resourceGroup:
			lookup, defaults = config.GroupDef, s.groupDefault
		case resourceBroker:
			lookup, defaults = config.BrokerKeyDef, s.brokerDefault
		}
		items[i] = alterItem{rtype: rr.ResourceType, name: rr.ResourceName, changes: func(current map[string]string) (map[string]string, []string, error) {
			return incrementalChanges(current, rr.Configs, lookup, defaults)
		}}
	}
	resp := req.ResponseKind().(*kmsg.IncrementalAlterConfigsResponse)
	resp.Resources = alterResources(s, ctx, rc, req, forward, req.ValidateOnly, items, &req.Resources,
		func(r kmsg.Response) []kmsg.IncrementalAlterConfigsResponseResource {
			return r.(*kmsg.IncrementalAlterConfigsResponse).Resources
		})
	return resp, nil
}

// incrementalChanges turns SET/DELETE/APPEND/SUBTRACT operations into the
// overrides to set and delete. APPEND and SUBTRACT work on list keys, on the
// topic's effective value.
func incrementalChanges(current map[string]string, ops []kmsg.IncrementalAlterConfigsRequestResourceConfig,
	lookup func(string) *config.Def, defaults func(string) (string, config.Source)) (map[string]string, []string, error) {
	set := map[string]string{}
	var del []string
	seen := map[string]bool{}
	for _, op := range ops {
		if seen[op.Name] {
			return nil, nil, fmt.Errorf("%w: config %s appears twice", kerr.InvalidRequest, op.Name)
		}
		seen[op.Name] = true
		d := lookup(op.Name)
		if d == nil {
			return nil, nil, fmt.Errorf("%w: unknown config %q", kerr.InvalidConfig, op.Name)
		}
		switch op.Op {
		case opSet:
			if op.Value == nil {
				return nil, nil, fmt.Errorf("%w: SET %s needs a value", kerr.InvalidRequest, op.Name)
			}
			set[op.Name] = *op.Value
		case opDelete:
			del = append(del, op.Name)
		case opAppend, opSubtract:
			if d.Type != config.List {
				return nil, nil, fmt.Errorf("%w: %s is not a list", kerr.InvalidConfig, op.Name)
			}
			cur, ok := current[op.Name]
			if !ok {
				cur, _ = defaults(op.Name)
			}
			set[op.Name] = editList(cur, deref(op.Value), op.Op == opAppend)
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

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
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
