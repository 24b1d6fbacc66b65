package raftmeta

import (
	"context"
	"maps"
	"math"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/shoalmq/shoal/quota"
)

// Client quotas, as Kafka's ClientQuotaRecord keeps them in the metadata
// log: one record per entity sets and removes keys; an entity left with no
// key is dropped from the image.

// AlterClientQuota sets and removes quota keys of one entity.
type AlterClientQuota struct {
	Entity quota.Entity
	Set    map[string]float64
	Remove []string
}

func (*AlterClientQuota) recordType() recordType { return typeAlterClientQuota }

func (r *AlterClientQuota) encode(e *encoder) {
	encodeQuotaEntity(e, r.Entity)
	encodeList(e, slices.Sorted(maps.Keys(r.Set)), func(e *encoder, k string) {
		e.str(k)
		e.u64(math.Float64bits(r.Set[k]))
	})
	e.strs(r.Remove)
}

func decodeAlterClientQuota(d *decoder) *AlterClientQuota {
	return &AlterClientQuota{Entity: decodeQuotaEntity(d), Set: decodeQuotaValues(d), Remove: d.strs()}
}

func encodeQuotaEntity(e *encoder, ent quota.Entity) {
	for _, n := range [...]quota.Name{ent.User, ent.ClientID, ent.IP} {
		switch {
		case !n.Set:
			e.u8(0)
		case n.Default:
			e.u8(1)
		default:
			e.u8(2)
			e.str(n.Name)
		}
	}
}

func decodeQuotaEntity(d *decoder) quota.Entity {
	var ent quota.Entity
	for _, n := range [...]*quota.Name{&ent.User, &ent.ClientID, &ent.IP} {
		switch d.u8() {
		case 0:
		case 1:
			*n = quota.DefaultName()
		case 2:
			*n = quota.Named(d.str())
		default:
			d.fail()
		}
	}
	return ent
}

func decodeQuotaValues(d *decoder) map[string]float64 {
	n := d.count()
	m := make(map[string]float64, n)
	for range n {
		k := d.str()
		m[k] = math.Float64frombits(d.u64())
	}
	return m
}

func (b *imageBuilder) clientQuotas() map[quota.Entity]map[string]float64 {
	return own(&b.next.ClientQuotas, &b.ownClientQuotas)
}

func (b *imageBuilder) applyClientQuota(r *AlterClientQuota) error {
	for k, v := range r.Set {
		if err := quota.ValidateValue(r.Entity, k, v); err != nil {
			return errorf(kerr.InvalidRequest, "%v", err)
		}
	}
	c := maps.Clone(b.next.ClientQuotas[r.Entity])
	if c == nil {
		c = map[string]float64{}
	}
	for _, k := range r.Remove {
		delete(c, k)
	}
	maps.Copy(c, r.Set)
	if len(c) == 0 {
		delete(b.clientQuotas(), r.Entity)
	} else {
		b.clientQuotas()[r.Entity] = c
	}
	return nil
}

// QuotaAlteration is one entry of AlterClientQuotas: an entity and its
// key changes, a nil value removing the key.
type QuotaAlteration struct {
	Entity quota.Entity
	Ops    []QuotaOp
}

// QuotaOp sets (Value non-nil) or removes one key.
type QuotaOp struct {
	Key   string
	Value *float64
}

// AlterClientQuotas decides AlterClientQuotas: each entry stands alone and
// fails with INVALID_REQUEST, as Kafka's ClientQuotaControlManager, for a
// key its kind of entity does not take, a bad value, or a key named twice.
// Results are one error (or nil) per entry, in order.
func (d *Decider) AlterClientQuotas(img *Image, alts []QuotaAlteration) ([]Record, []error) {
	errs := make([]error, len(alts))
	var recs []Record
	for i, a := range alts {
		r := &AlterClientQuota{Entity: a.Entity, Set: map[string]float64{}}
		seen := map[string]bool{}
		for _, op := range a.Ops {
			if seen[op.Key] {
				errs[i] = errorf(kerr.InvalidRequest, "Duplicate quota key %s", op.Key)
				break
			}
			seen[op.Key] = true
			if op.Value == nil {
				if err := quota.ValidateKey(a.Entity, op.Key); err != nil {
					errs[i] = errorf(kerr.InvalidRequest, "%v", err)
					break
				}
				r.Remove = append(r.Remove, op.Key)
				continue
			}
			if err := quota.ValidateValue(a.Entity, op.Key, *op.Value); err != nil {
				errs[i] = errorf(kerr.InvalidRequest, "%v", err)
				break
			}
			r.Set[op.Key] = *op.Value
		}
		if errs[i] == nil {
			recs = append(recs, r)
		}
	}
	return recs, errs
}

// AlterClientQuotas decides and proposes AlterClientQuotas; validateOnly
// stops after the decision.
func (c *Controller) AlterClientQuotas(ctx context.Context, alts []QuotaAlteration, validateOnly bool) []error {
	return c.decideEachAndPropose(ctx, len(alts), validateOnly, func(img *Image) ([]Record, []error) {
		return c.d.AlterClientQuotas(img, alts)
	})
}

func encodeClientQuotas(e *encoder, q quota.Quotas) {
	encodeList(e, slices.SortedFunc(maps.Keys(q), quota.Compare), func(e *encoder, ent quota.Entity) {
		encodeQuotaEntity(e, ent)
		encodeList(e, slices.Sorted(maps.Keys(q[ent])), func(e *encoder, k string) {
			e.str(k)
			e.u64(math.Float64bits(q[ent][k]))
		})
	})
}

func decodeClientQuotas(d *decoder, img *Image) error {
	for range d.count() {
		ent := decodeQuotaEntity(d)
		vals := decodeQuotaValues(d)
		if len(vals) == 0 {
			return corruptf("quota entity %s has no keys", ent)
		}
		img.ClientQuotas[ent] = vals
	}
	return nil
}
