package raftmeta

import (
	"context"
	"maps"
	"slices"
	"strconv"

	"github.com/twmb/franz-go/pkg/kerr"
)

// Dynamic broker configs, as Kafka's ConfigRecord for BROKER resources
// keeps them: overrides by resource name, a broker id ("3") or "" for the
// cluster-wide default. A resource left with no override is dropped.

// AlterBrokerConfigs changes the dynamic overrides of one BROKER resource.
type AlterBrokerConfigs struct {
	Broker string
	Set    map[string]string
	Delete []string
}

func (*AlterBrokerConfigs) recordType() recordType { return typeAlterBrokerConfigs }

func (r *AlterBrokerConfigs) encode(e *encoder) {
	e.str(r.Broker)
	e.strMap(r.Set)
	e.strs(r.Delete)
}

// validBrokerResource checks a BROKER resource name: "" or a broker id.
func validBrokerResource(name string) *Error {
	if name == "" {
		return nil
	}
	if id, err := strconv.ParseInt(name, 10, 32); err != nil || id < 0 || strconv.FormatInt(id, 10) != name {
		return errorf(kerr.InvalidRequest, "Invalid broker resource name %q: want a broker id or the empty name", name)
	}
	return nil
}

// BrokerConfig returns the dynamic overrides of a BROKER resource (a broker
// id, or "" for the cluster default), or nil.
func (img *Image) BrokerConfig(resource string) map[string]string { return img.BrokerConfigs[resource] }

// applyOverrides returns a copy of current with del deleted and set set
// (in that order), for group and broker config overrides.
func applyOverrides(current map[string]string, set map[string]string, del []string) map[string]string {
	c := cloneConfigs(current)
	for _, k := range del {
		delete(c, k)
	}
	maps.Copy(c, set)
	return c
}

func (b *imageBuilder) brokerConfigs() map[string]map[string]string {
	return own(&b.next.BrokerConfigs, &b.ownBrokerConfigs)
}

func (b *imageBuilder) applyBrokerConfigs(r *AlterBrokerConfigs) error {
	if err := validBrokerResource(r.Broker); err != nil {
		return err
	}
	if c := applyOverrides(b.next.BrokerConfigs[r.Broker], r.Set, r.Delete); len(c) == 0 {
		delete(b.brokerConfigs(), r.Broker)
	} else {
		b.brokerConfigs()[r.Broker] = c
	}
	return nil
}

// AlterBrokerConfigs decides an incremental change of a BROKER resource's
// dynamic overrides. Keys and values are checked by the broker's validator
// (which also refuses keys that cannot change at runtime).
func (d *Decider) AlterBrokerConfigs(img *Image, resource string, set map[string]string, del []string) ([]Record, error) {
	if err := validBrokerResource(resource); err != nil {
		return nil, err
	}
	var check func(name string, value *string) error
	if d.ValidateBrokerConfig != nil {
		check = func(name string, value *string) error { return d.ValidateBrokerConfig(resource, name, value) }
	}
	if err := validateChange(check, set, del); err != nil {
		return nil, err
	}
	return []Record{&AlterBrokerConfigs{Broker: resource, Set: maps.Clone(set), Delete: slices.Clone(del)}}, nil
}

// SetBrokerConfigValidator installs the check of dynamic broker config
// overrides used by AlterBrokerConfigs (resource: a broker id or "" for
// the cluster default; nil value: the key is being deleted), and which
// keys' values the change log must not show; nil, the default, accepts
// everything and hides nothing.
func (c *Controller) SetBrokerConfigValidator(validate func(resource, name string, value *string) error, sensitive func(name string) bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.d.ValidateBrokerConfig = validate
	c.d.SensitiveBrokerConfig = sensitive
}

// AlterBrokerConfigs sets and deletes dynamic overrides of one BROKER
// resource.
func (c *Controller) AlterBrokerConfigs(ctx context.Context, resource string, set map[string]string, del []string, validateOnly bool) error {
	return c.decideAndPropose(ctx, validateOnly, func(img *Image) ([]Record, error) {
		return c.d.AlterBrokerConfigs(img, resource, set, del)
	})
}
