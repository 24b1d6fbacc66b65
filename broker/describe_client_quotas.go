package broker

// DescribeClientQuotas (key 48), v0-v1: lists the client quotas in this
// node's metadata image that a filter selects, with Kafka's matching: each
// component matches one entity type EXACT (a name), DEFAULT or ANY (set,
// named or default); strict asks for entities with no other components.

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoalmq/shoal/quota"
)

// Kafka's DescribeClientQuotas match types.
const (
	matchExact   = 0
	matchDefault = 1
	matchAny     = 2
)

func (s *Server) handleDescribeClientQuotas(_ context.Context, _ *reqCtx, req *kmsg.DescribeClientQuotasRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.DescribeClientQuotasResponse)
	match, err := quotaFilter(req.Components, req.Strict)
	if err != nil {
		resp.ErrorCode, resp.ErrorMessage = kerr.InvalidRequest.Code, strPtr(err.Error())
		return resp, nil
	}
	quotas := s.meta.Image().ClientQuotas
	for _, ent := range slices.SortedFunc(maps.Keys(quotas), quota.Compare) {
		if !match(ent) {
			continue
		}
		out := kmsg.NewDescribeClientQuotasResponseEntry()
		for _, c := range ent.Components() {
			oc := kmsg.NewDescribeClientQuotasResponseEntryEntity()
			oc.Type, oc.Name = c.Type, c.Name
			out.Entity = append(out.Entity, oc)
		}
		vals := quotas[ent]
		for _, k := range slices.Sorted(maps.Keys(vals)) {
			v := kmsg.NewDescribeClientQuotasResponseEntryValue()
			v.Key, v.Value = k, vals[k]
			out.Values = append(out.Values, v)
		}
		resp.Entries = append(resp.Entries, out)
	}
	return resp, nil
}

// quotaFilter turns DescribeClientQuotas components into a predicate, with
// Kafka's checks: a known entity type, each at most once, ip never with
// user or client-id, a name only with EXACT.
func quotaFilter(comps []kmsg.DescribeClientQuotasRequestComponent, strict bool) (func(quota.Entity) bool, error) {
	type check struct {
		part  func(quota.Entity) quota.Name
		match func(quota.Name) bool
	}
	parts := map[string]func(quota.Entity) quota.Name{
		quota.TypeUser:     func(e quota.Entity) quota.Name { return e.User },
		quota.TypeClientID: func(e quota.Entity) quota.Name { return e.ClientID },
		quota.TypeIP:       func(e quota.Entity) quota.Name { return e.IP },
	}
	var checks []check
	named := map[string]bool{}
	for _, c := range comps {
		part, ok := parts[c.EntityType]
		if !ok {
			return nil, fmt.Errorf("custom entity type %q is not supported", c.EntityType)
		}
		if named[c.EntityType] {
			return nil, fmt.Errorf("duplicate %s filter component", c.EntityType)
		}
		named[c.EntityType] = true
		var m func(quota.Name) bool
		switch c.MatchType {
		case matchExact:
			if c.Match == nil {
				return nil, fmt.Errorf("an EXACT filter component for %s needs a name", c.EntityType)
			}
			want := quota.Named(*c.Match)
			m = func(n quota.Name) bool { return n == want }
		case matchDefault:
			if c.Match != nil {
				return nil, fmt.Errorf("a DEFAULT filter component for %s takes no name", c.EntityType)
			}
			m = func(n quota.Name) bool { return n.Set && n.Default }
		case matchAny:
			if c.Match != nil {
				return nil, fmt.Errorf("an ANY filter component for %s takes no name", c.EntityType)
			}
			m = func(n quota.Name) bool { return n.Set }
		default:
			return nil, fmt.Errorf("unknown match type %d", c.MatchType)
		}
		checks = append(checks, check{part, m})
	}
	if named[quota.TypeIP] && (named[quota.TypeUser] || named[quota.TypeClientID]) {
		return nil, fmt.Errorf("invalid entity filter component combination: an ip filter component cannot be used with user or client-id")
	}
	return func(e quota.Entity) bool {
		for _, c := range checks {
			if !c.match(c.part(e)) {
				return false
			}
		}
		if strict {
			for typ, part := range parts {
				if !named[typ] && part(e).Set {
					return false
				}
			}
		}
		return true
	}, nil
}
