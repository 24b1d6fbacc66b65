package broker

// AlterClientQuotas (key 49), v0-v1: sets and removes client quotas in the
// metadata quorum. Each entry stands alone: a bad entity or key fails that
// entry with INVALID_REQUEST, as in Kafka. A node that is not the active
// controller relays the request to it.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoalmq/shoal/quota"
	"github.com/shoalmq/shoal/raftmeta"
)

func (s *Server) handleAlterClientQuotas(ctx context.Context, _ *reqCtx, req *kmsg.AlterClientQuotasRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.AlterClientQuotasResponse)
	errs := make([]error, len(req.Entries))
	var alts []raftmeta.QuotaAlteration
	var at []int // request index of each alteration
	for i, e := range req.Entries {
		comps := make([]quota.Component, len(e.Entity))
		for j, c := range e.Entity {
			comps[j] = quota.Component{Type: c.Type, Name: c.Name}
		}
		ent, err := quota.EntityOf(comps)
		if err != nil {
			errs[i] = &raftmeta.Error{Code: kerr.InvalidRequest, Message: err.Error()}
			continue
		}
		a := raftmeta.QuotaAlteration{Entity: ent}
		for _, op := range e.Ops {
			o := raftmeta.QuotaOp{Key: op.Key}
			if !op.Remove {
				v := op.Value
				o.Value = &v
			}
			a.Ops = append(a.Ops, o)
		}
		alts = append(alts, a)
		at = append(at, i)
	}
	if len(alts) > 0 {
		for k, err := range s.ctrl.AlterClientQuotas(ctx, alts, req.ValidateOnly) {
			errs[at[k]] = err
		}
	}
	for i, e := range req.Entries {
		out := kmsg.NewAlterClientQuotasResponseEntry()
		out.Entity = answeredEntity(e.Entity)
		out.ErrorCode, out.ErrorMessage = errorCode(errs[i]), errorMessage(errs[i])
		resp.Entries = append(resp.Entries, out)
	}
	return resp, nil
}

// answeredEntity echoes a request entry's entity in its response entry.
func answeredEntity(comps []kmsg.AlterClientQuotasRequestEntryEntity) []kmsg.AlterClientQuotasResponseEntryEntity {
	out := make([]kmsg.AlterClientQuotasResponseEntryEntity, len(comps))
	for i, c := range comps {
		out[i] = kmsg.NewAlterClientQuotasResponseEntryEntity()
		out[i].Type, out[i].Name = c.Type, c.Name
	}
	return out
}
