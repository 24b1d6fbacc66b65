package broker

// Dynamic listener configs: the key and trust stores of each TLS listener
// (listener.name.<listener>.ssl.keystore.location and the other keys of
// config.DynamicSSLKeys, per broker only) and the connection limits
// (max.connections, max.connections.per.ip, max.connections.per.ip.overrides,
// listener.name.<listener>.max.connections, per broker or cluster-wide),
// changed with (Incremental)AlterConfigs on
// a BROKER resource and applied without a restart.
//
// As in Kafka (ConfigAdminManager.preprocess), a change of a BROKER
// resource is checked by the broker that receives it before it goes to
// the controller: a broker's own resource is altered through that broker
// only, since only it can open the new key store and compare its
// certificate with the one it serves, and knows its listeners: a
// listener's own limit for a listener it does not have is refused. A
// cluster-wide one is accepted, for the brokers that have the listener. A refusal is INVALID_REQUEST with
// the reason, and nothing is stored. Every broker then applies the stored
// overrides as its metadata image changes; new handshakes get the new
// certificate, established connections keep the session they negotiated,
// and a lower connection limit applies to new connections (past
// max.connections they wait, past the per-IP limit they are refused)
// without closing open ones.

import (
	"fmt"
	"maps"
	"net"
	"slices"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/shoalmq/shoal/config"
	"github.com/shoalmq/shoal/raftmeta"
	"github.com/shoalmq/shoal/tlsconfig"
)

// brokerAlter is one BROKER resource of an alter request, as the
// overrides it would set and delete.
type brokerAlter struct {
	name string
	set  map[string]string
	del  []string
	// reread are the TLS listeners whose key or trust store location the
	// change sets to the one in use: their files are read again once the
	// change is accepted, Kafka's way to rotate a certificate rewritten
	// in place. A location that changes is applied with the image.
	reread []string
}

// checkBrokerAlter is the receiving broker's check of a change of a BROKER
// resource (see the file comment); it fills in a.reread.
func (s *Server) checkBrokerAlter(img *raftmeta.Image, a *brokerAlter) error {
	if err := s.checkBrokerResource(a.name, true); err != nil {
		return err
	}
	for _, k := range slices.Sorted(maps.Keys(a.set)) {
		v := a.set[k]
		if err := config.ValidateDynamicBrokerConfig(a.name, k, &v); err != nil {
			return err
		}
	}
	for _, k := range a.del {
		if err := config.ValidateDynamicBrokerConfig(a.name, k, nil); err != nil {
			return err
		}
	}
	broker, cluster := img.BrokerConfig(s.ownResource()), img.BrokerConfig("")
	next := maps.Clone(img.BrokerConfig(a.name))
	if next == nil {
		next = map[string]string{}
	}
	for _, k := range a.del {
		delete(next, k)
	}
	maps.Copy(next, a.set)
	if a.name == "" {
		cluster = next
	} else {
		broker = next
	}
	if err := s.cfg.CheckConnectionLimits(broker, cluster); err != nil {
		return err
	}
	if a.name != "" {
		if err := s.cfg.CheckListenerLimits(a.set); err != nil {
			return err
		}
	}
	for _, l := range alteredListeners(a) {
		la, name := s.sec.tlsListener(l)
		if la == nil {
			return fmt.Errorf("%w: listener.name.%s: this broker has no TLS listener %s", kerr.InvalidRequest, l, l)
		}
		ts, err := s.cfg.ListenerTLS(name, broker)
		if err == nil {
			err = la.store.Check(ts, s.certChanges(name))
		}
		if err != nil {
			return fmt.Errorf("%w: Validation of dynamic config update of listener %s failed: %v", kerr.InvalidRequest, name, err)
		}
		prefix, cur := "listener.name."+l+".", la.store.Settings()
		ks, setKS := a.set[prefix+"ssl.keystore.location"]
		tr, setTR := a.set[prefix+"ssl.truststore.location"]
		if (setKS || setTR) && (!setKS || ks == cur.KeystoreLocation) && (!setTR || tr == cur.TruststoreLocation) {
			a.reread = append(a.reread, l)
		}
	}
	return nil
}

// alteredListeners names the listeners (as written in the keys) whose
// dynamic SSL keys a change sets or deletes.
func alteredListeners(a *brokerAlter) []string {
	var out []string
	add := func(k string) {
		if l, _, ok := config.ListenerSSLKey(k); ok && !contains(out, l) {
			out = append(out, l)
		}
	}
	for k := range a.set {
		add(k)
	}
	for _, k := range a.del {
		add(k)
	}
	slices.Sort(out)
	return out
}

// reread reads again the key and trust stores of the listeners an
// accepted change names in reread, with the settings in use.
func (s *Server) reread(a brokerAlter) {
	for _, l := range a.reread {
		la, name := s.sec.tlsListener(l)
		if la == nil {
			continue
		}
		cur := la.store.Settings()
		if err := la.store.Update(cur, s.certChanges(name)); err != nil {
			s.log.Error("re-reading the listener's TLS key and trust stores failed; the previous certificates stay in use", "listener", name, "err", err)
			continue
		}
		s.log.Info("re-read the listener's TLS key and trust stores", "listener", name, "keystore", cur.KeystoreLocation, "truststore", cur.TruststoreLocation)
	}
}

// applyDynamicListeners brings every TLS listener's key and trust stores
// and the connection limits in line with the published dynamic configs.
// A key store that does not load or does not match the served certificate
// (its file changed or vanished since it was accepted) is logged once and
// the previous certificates stay in use. Called under applyMu.
func (s *Server) applyDynamicListeners() {
	for name, la := range s.sec.listeners {
		if la.tls == nil {
			continue
		}
		ts, err := s.cfg.ListenerTLS(name, nil)
		if err == nil && ts == la.store.Settings() {
			la.refused = nil
			continue
		}
		if err == nil {
			err = la.store.Update(ts, s.certChanges(name))
		}
		if err != nil {
			if la.refused == nil || *la.refused != ts {
				s.log.Error("the listener's dynamic TLS key or trust store cannot be used; the previous certificates stay in use", "listener", name, "err", err)
			}
			la.refused = &ts
			continue
		}
		la.refused = nil
		s.log.Info("the listener serves new TLS key and trust stores", "listener", name, "keystore", ts.KeystoreLocation, "truststore", ts.TruststoreLocation)
	}
	if lim := s.cfg.ConnectionLimits(); !lim.Equal(s.appliedLimits) {
		s.limits.set(lim, s.log)
		s.appliedLimits = lim
		s.log.Info("connection limits changed", "max.connections", lim.Max, "max.connections.per.ip", lim.PerIP, "max.connections.per.ip.overrides", lim.Overrides, "listener.name.<listener>.max.connections", lim.Listeners)
	}
}

// certChanges are the certificate changes a listener's new key store may
// bring.
func (s *Server) certChanges(listener string) tlsconfig.CertChanges {
	dn, san := s.cfg.CertChangesAllowed(listener)
	return tlsconfig.CertChanges{DN: dn, SAN: san}
}

// ownResource is the name of this broker's BROKER resource.
func (s *Server) ownResource() string { return strconv.Itoa(int(s.cfg.NodeID)) }

// tlsListener finds the served TLS listener a config key names (in lower
// case), and its name as configured.
func (sec *security) tlsListener(lower string) (*listenerAuth, string) {
	if sec == nil {
		return nil, ""
	}
	for name, la := range sec.listeners {
		if la.tls != nil && strings.EqualFold(name, lower) {
			return la, name
		}
	}
	return nil, ""
}

// resolveOverrides turns max.connections.per.ip.overrides into limits by
// IP: host names are resolved now.
func resolveOverrides(v string, log interface{ Warn(string, ...any) }) map[string]int {
	hosts, _ := config.ParseConnectionOverrides(v)
	out := map[string]int{}
	for host, n := range hosts {
		if ip := net.ParseIP(host); ip != nil {
			out[ip.String()] = n
			continue
		}
		ips, err := net.LookupIP(host)
		if err != nil {
			log.Warn("max.connections.per.ip.overrides: host does not resolve; its override is ignored", "host", host, "err", err)
		}
		for _, ip := range ips {
			out[ip.String()] = n
		}
	}
	return out
}
