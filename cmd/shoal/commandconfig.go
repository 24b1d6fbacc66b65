package main

// --command-config: the security settings of a Kafka client properties
// file (the file kafka-topics.sh and friends take), so the commands reach
// a TLS or SASL listener with the settings an operator already has.

import (
	"fmt"
	"os"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"
	kplain "github.com/twmb/franz-go/pkg/sasl/plain"
	kscram "github.com/twmb/franz-go/pkg/sasl/scram"
	"github.com/urfave/cli/v2"

	"github.com/shoalmq/shoal/config"
	"github.com/shoalmq/shoal/sasl"
	"github.com/shoalmq/shoal/tlsconfig"
)

// commandConfigOpts reads the --command-config file, if one is given, into
// client options: security.protocol, sasl.mechanism, sasl.jaas.config and
// the ssl.* keys (PEM trust and key stores). Other keys are ignored, as
// they configure things the commands set themselves.
func commandConfigOpts(c *cli.Context) ([]kgo.Opt, error) {
	path := globalString(c, "command-config")
	if path == "" {
		return nil, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, usageError("--command-config: %v", err)
	}
	defer f.Close()
	props, err := config.ParseProperties(f)
	if err != nil {
		return nil, usageError("--command-config %s: %v", path, err)
	}
	opts, err := clientSecurityOpts(props)
	if err != nil {
		return nil, usageError("--command-config %s: %v", path, err)
	}
	return opts, nil
}

// clientSecurityOpts turns Kafka client security keys into kgo options.
func clientSecurityOpts(props map[string]string) ([]kgo.Opt, error) {
	proto := strings.ToUpper(props["security.protocol"])
	if proto == "" {
		proto = "PLAINTEXT"
	}
	var opts []kgo.Opt
	switch proto {
	case "PLAINTEXT", "SASL_PLAINTEXT":
	case "SSL", "SASL_SSL":
		m := map[string]string{}
		for _, k := range tlsconfig.Keys {
			if v, ok := props[k]; ok {
				m[k] = v
			}
		}
		st, err := tlsconfig.NewStore(tlsconfig.FromMap(m))
		if err != nil {
			return nil, err
		}
		// kgo fills in the server name of each broker it dials.
		opts = append(opts, kgo.DialTLSConfig(st.ClientConfig("")))
	default:
		return nil, fmt.Errorf("security.protocol=%s: want PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL", props["security.protocol"])
	}
	if !strings.HasPrefix(proto, "SASL_") {
		return opts, nil
	}
	mech := strings.ToUpper(props["sasl.mechanism"])
	jaas, err := sasl.ParseJAASConfig(props["sasl.jaas.config"])
	if err != nil {
		return nil, fmt.Errorf("sasl.jaas.config: %v", err)
	}
	user, pass := jaas.Options["username"], jaas.Options["password"]
	switch mech {
	case sasl.PLAIN:
		opts = append(opts, kgo.SASL(kplain.Auth{User: user, Pass: pass}.AsMechanism()))
	case sasl.SCRAMSHA256:
		opts = append(opts, kgo.SASL(kscram.Auth{User: user, Pass: pass}.AsSha256Mechanism()))
	case sasl.SCRAMSHA512:
		opts = append(opts, kgo.SASL(kscram.Auth{User: user, Pass: pass}.AsSha512Mechanism()))
	case "", "GSSAPI":
		return nil, fmt.Errorf("sasl.mechanism=%s: GSSAPI (Kerberos, Kafka's default) is not supported; set PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512", props["sasl.mechanism"])
	default:
		return nil, fmt.Errorf("sasl.mechanism=%s is not supported by the command line (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512)", props["sasl.mechanism"])
	}
	return opts, nil
}
