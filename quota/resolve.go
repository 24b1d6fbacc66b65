package quota

// Quotas are the quotas set in the cluster, by entity, each a map of key to
// value. It is read-only once built.
type Quotas map[Entity]map[string]float64

// Match is the quota a connection falls under for one key: its value, the
// entity it is set on, and Sensor, the identity whose traffic is measured
// against it. As in Kafka, a quota set on a default entity applies to each
// user or client separately: Sensor names the connection's own user and
// client where the entity has a user or client component.
type Match struct {
	Value  float64
	Entity Entity
	Sensor Entity
}

// Lookup finds the quota for key of a connection authenticated as user with
// client id clientID, with Kafka's precedence (most specific first):
//
//	users/<user>/clients/<client>
//	users/<user>/clients/<default>
//	users/<user>
//	users/<default>/clients/<client>
//	users/<default>/clients/<default>
//	users/<default>
//	clients/<client>
//	clients/<default>
//
// ok is false when none of them sets key: the connection is unthrottled.
func (q Quotas) Lookup(user, clientID, key string) (Match, bool) {
	u, c := Named(user), Named(clientID)
	none := Name{}
	for _, e := range [...]Entity{
		{User: u, ClientID: c},
		{User: u, ClientID: DefaultName()},
		{User: u},
		{User: DefaultName(), ClientID: c},
		{User: DefaultName(), ClientID: DefaultName()},
		{User: DefaultName()},
		{ClientID: c},
		{ClientID: DefaultName()},
	} {
		v, ok := q[e][key]
		if !ok {
			continue
		}
		m := Match{Value: v, Entity: e}
		if e.User != none {
			m.Sensor.User = u
		}
		if e.ClientID != none {
			m.Sensor.ClientID = c
		}
		return m, true
	}
	return Match{}, false
}

// LookupIP finds the connection_creation_rate quota of an address: the
// address's own, else the default ip quota.
func (q Quotas) LookupIP(ip string) (float64, bool) {
	if v, ok := q[Entity{IP: Named(ip)}][ConnectionCreationRate]; ok {
		return v, true
	}
	v, ok := q[Entity{IP: DefaultName()}][ConnectionCreationRate]
	return v, ok
}
