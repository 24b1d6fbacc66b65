package main

import (
	"strings"
	"testing"
)

// The client security keys are read as Kafka's clients read them, and
// what the command line cannot honour is refused with the key's name
// rather than ignored (a client that silently fell back to PLAINTEXT
// would send credentials in the clear or fail obscurely).
func TestClientSecurityOpts(t *testing.T) {
	scram := `org.apache.kafka.common.security.scram.ScramLoginModule required username="alice" password="alice-secret";`
	for name, tc := range map[string]struct {
		props map[string]string
		opts  int
		err   string
	}{
		"none":           {props: map[string]string{}, opts: 0},
		"plaintext":      {props: map[string]string{"security.protocol": "plaintext"}, opts: 0},
		"sasl scram":     {props: map[string]string{"security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": "SCRAM-SHA-512", "sasl.jaas.config": scram}, opts: 1},
		"ssl":            {props: map[string]string{"security.protocol": "SSL"}, opts: 1},
		"sasl ssl":       {props: map[string]string{"security.protocol": "SASL_SSL", "sasl.mechanism": "PLAIN", "sasl.jaas.config": scram}, opts: 2},
		"unknown proto":  {props: map[string]string{"security.protocol": "TLS"}, err: "security.protocol"},
		"kerberos":       {props: map[string]string{"security.protocol": "SASL_PLAINTEXT", "sasl.jaas.config": scram}, err: "GSSAPI"},
		"bad jaas":       {props: map[string]string{"security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": "PLAIN", "sasl.jaas.config": "nonsense"}, err: "sasl.jaas.config"},
		"jks truststore": {props: map[string]string{"security.protocol": "SSL", "ssl.truststore.type": "JKS", "ssl.truststore.location": "/x.jks"}, err: "ssl.truststore.type"},
	} {
		opts, err := clientSecurityOpts(tc.props)
		switch {
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%s: err %v, want one naming %s", name, err, tc.err)
		case tc.err == "" && err != nil:
			t.Errorf("%s: %v", name, err)
		case tc.err == "" && len(opts) != tc.opts:
			t.Errorf("%s: %d options, want %d", name, len(opts), tc.opts)
		}
	}
}
