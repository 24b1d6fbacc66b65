// Package quota holds Kafka's client quotas: the entities a quota is set on
// (user, client-id, ip and their defaults), the keys and their validation,
// the precedence that picks the quota a connection falls under, and the
// windowed rate that turns bytes into a throttle time. It is pure: the
// metadata quorum stores what it validates and the broker front end feeds
// it bytes and a clock.
package quota

import (
	"cmp"
	"fmt"
	"math"
	"net/netip"
	"strings"
)

// Kafka's entity type names (ClientQuotaEntity).
const (
	TypeUser     = "user"
	TypeClientID = "client-id"
	TypeIP       = "ip"
)

// Kafka's quota keys (QuotaConfig).
const (
	ProducerByteRate       = "producer_byte_rate"
	ConsumerByteRate       = "consumer_byte_rate"
	RequestPercentage      = "request_percentage"
	ConnectionCreationRate = "connection_creation_rate"
)

// Name is one component of an entity: absent, the default (Kafka's null
// name, <default> on the command line), or a named user, client or address.
type Name struct {
	Set     bool
	Default bool
	Name    string
}

// Named and DefaultName build components.
func Named(n string) Name { return Name{Set: true, Name: n} }

// DefaultName is the default component (a null entity name in Kafka).
func DefaultName() Name { return Name{Set: true, Default: true} }

// String renders a component as Kafka's tools do.
func (n Name) String() string {
	if n.Default {
		return "<default>"
	}
	return n.Name
}

// Entity is what a quota is set on. It is comparable and so keys maps.
// Valid combinations, as in Kafka: user, client-id, user with client-id,
// or ip alone.
type Entity struct {
	User, ClientID, IP Name
}

// String renders an entity as Kafka's ZooKeeper-era paths did, which is
// also how its docs name precedence: users/<u>/clients/<c>, ips/<ip>.
func (e Entity) String() string {
	var parts []string
	if e.User.Set {
		parts = append(parts, "users/"+e.User.String())
	}
	if e.ClientID.Set {
		parts = append(parts, "clients/"+e.ClientID.String())
	}
	if e.IP.Set {
		parts = append(parts, "ips/"+e.IP.String())
	}
	return strings.Join(parts, "/")
}

// Compare orders entities for stable listings.
func Compare(a, b Entity) int { return cmp.Compare(a.String(), b.String()) }

// Component is one (type, name) pair of a request; name nil is the
// default.
type Component struct {
	Type string
	Name *string
}

// EntityOf builds an entity from a request's components, with Kafka's
// checks: a known type, each at most once, and ip never combined with user
// or client-id; an ip name must be an address.
func EntityOf(comps []Component) (Entity, error) {
	var e Entity
	if len(comps) == 0 {
		return e, fmt.Errorf("the quota entity has no components")
	}
	for _, c := range comps {
		n := DefaultName()
		if c.Name != nil {
			n = Named(*c.Name)
		}
		var slot *Name
		switch c.Type {
		case TypeUser:
			slot = &e.User
		case TypeClientID:
			slot = &e.ClientID
		case TypeIP:
			slot = &e.IP
			if !n.Default {
				if _, err := netip.ParseAddr(n.Name); err != nil {
					return e, fmt.Errorf("%q is not a valid IP address", n.Name)
				}
			}
		default:
			return e, fmt.Errorf("unhandled client quota entity type: %s", c.Type)
		}
		if slot.Set {
			return e, fmt.Errorf("duplicate %s component in the quota entity", c.Type)
		}
		*slot = n
	}
	if e.IP.Set && (e.User.Set || e.ClientID.Set) {
		return e, fmt.Errorf("invalid quota entity combination: an ip entity cannot be combined with user or client-id")
	}
	return e, nil
}

// Components lists an entity's components in Kafka's order.
func (e Entity) Components() []Component {
	var out []Component
	add := func(typ string, n Name) {
		if !n.Set {
			return
		}
		c := Component{Type: typ}
		if !n.Default {
			name := n.Name
			c.Name = &name
		}
		out = append(out, c)
	}
	add(TypeUser, e.User)
	add(TypeClientID, e.ClientID)
	add(TypeIP, e.IP)
	return out
}

// keyType is how a key's value must look: integral or any positive number.
type keyType int

const (
	integral keyType = iota
	decimal
)

// userClientKeys and ipKeys are the keys each kind of entity takes.
var (
	userClientKeys = map[string]keyType{ProducerByteRate: integral, ConsumerByteRate: integral, RequestPercentage: decimal}
	ipKeys         = map[string]keyType{ConnectionCreationRate: integral}
)

// ValidateValue checks one key and value for an entity: a key the entity's
// kind takes, and a finite positive value, integral for the byte and
// connection rates. Kafka answers a failure with INVALID_REQUEST.
func ValidateValue(e Entity, key string, value float64) error {
	if err := ValidateKey(e, key); err != nil {
		return err
	}
	if math.IsNaN(value) || math.IsInf(value, 0) || value <= 0 {
		return fmt.Errorf("quota %s must be a positive number, got %v", key, value)
	}
	if keysFor(e)[key] == integral && value != math.Trunc(value) {
		return fmt.Errorf("quota %s must be a whole number, got %v", key, value)
	}
	if key == RequestPercentage && value > 100*1024 {
		return fmt.Errorf("quota %s is out of range: %v", key, value)
	}
	return nil
}

// ValidateKey checks that e's kind of entity takes key (removal needs only
// this).
func ValidateKey(e Entity, key string) error {
	if _, ok := keysFor(e)[key]; !ok {
		return fmt.Errorf("unknown quota key %s for entity %s", key, e)
	}
	return nil
}

func keysFor(e Entity) map[string]keyType {
	if e.IP.Set {
		return ipKeys
	}
	return userClientKeys
}
