package config

import "strings"

// kafkaOnlyKeys are broker keys Kafka 4.x defines that configure nothing
// in shoal: the JVM's thread pools and socket buffers, and the parts of
// Java's TLS stack (key and trust manager algorithms, providers, engine
// factories) and of Kerberos (GSSAPI, which shoal does not offer) that
// have no counterpart here. An operator's server.properties that sets
// them starts, and serve logs each one as ignored; every other unknown
// key still stops start-up, so a typo is never silently dropped.
var kafkaOnlyKeys = map[string]bool{
	"num.network.threads":               true,
	"num.io.threads":                    true,
	"num.replica.fetchers":              true,
	"num.recovery.threads.per.data.dir": true,
	"background.threads":                true,
	"queued.max.requests":               true,
	"socket.send.buffer.bytes":          true,
	"socket.receive.buffer.bytes":       true,
	"early.start.listeners":             true,

	"ssl.keymanager.algorithm":                 true,
	"ssl.trustmanager.algorithm":               true,
	"ssl.provider":                             true,
	"ssl.secure.random.implementation":         true,
	"ssl.engine.factory.class":                 true,
	"sasl.kerberos.service.name":               true,
	"sasl.kerberos.kinit.cmd":                  true,
	"sasl.kerberos.min.time.before.relogin":    true,
	"sasl.kerberos.principal.to.local.rules":   true,
	"sasl.kerberos.ticket.renew.jitter":        true,
	"sasl.kerberos.ticket.renew.window.factor": true,
	"sasl.login.class":                         true,
	"sasl.login.callback.handler.class":        true,
	"sasl.login.refresh.buffer.seconds":        true,
	"sasl.login.refresh.min.period.seconds":    true,
	"sasl.login.refresh.window.factor":         true,
	"sasl.login.refresh.window.jitter":         true,
	"sasl.login.connect.timeout.ms":            true,
	"sasl.login.read.timeout.ms":               true,
	"sasl.login.retry.backoff.ms":              true,
	"sasl.login.retry.backoff.max.ms":          true,
	"sasl.client.callback.handler.class":       true,
}

// isKafkaOnlyKey reports whether key is one of kafkaOnlyKeys, also when
// set for one listener (listener.name.<listener>.<key>) or one listener
// and mechanism (listener.name.<listener>.<mechanism>.<key>), as Kafka
// allows for its ssl.* and sasl.* keys.
func isKafkaOnlyKey(key string) bool {
	if kafkaOnlyKeys[key] {
		return true
	}
	rest, ok := strings.CutPrefix(key, "listener.name.")
	if !ok {
		return false
	}
	_, rest, ok = strings.Cut(rest, ".")
	if !ok {
		return false
	}
	if strings.HasPrefix(rest, "ssl.") || strings.HasPrefix(rest, "sasl.") {
		return kafkaOnlyKeys[rest]
	}
	_, rest, _ = strings.Cut(rest, ".")
	return strings.HasPrefix(rest, "sasl.") && kafkaOnlyKeys[rest]
}
