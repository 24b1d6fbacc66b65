// Package config holds shoal's configuration keys: the broker's (read from a
// server.properties file, SHOAL_* environment variables and --set flags) and
// the per-topic ones (read and written with DescribeConfigs and
// IncrementalAlterConfigs). Key names, types and defaults are Kafka's, so an
// operator's existing knowledge and files carry over.
package config

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Type is the value type of a config key, as Kafka's DescribeConfigs reports it.
type Type int8

// Kafka's ConfigType codes (DescribeConfigs v3+).
const (
	Boolean  Type = 1
	String   Type = 2
	Int      Type = 3
	Short    Type = 4
	Long     Type = 5
	Double   Type = 6
	List     Type = 7
	Class    Type = 8
	Password Type = 9
)

// Def describes one config key.
type Def struct {
	Name    string
	Type    Type
	Default string
	Doc     string
	// Check validates a value beyond its type (ranges, enumerations). Nil means
	// any value of the right type is accepted.
	Check func(v string) error
	// BrokerKey names the broker key whose value is this topic key's default
	// (log.retention.ms for retention.ms). Empty for broker keys.
	BrokerKey string
	// Internal keys are accepted and applied but not listed by
	// DescribeConfigs (Kafka's internal configs).
	Internal bool
}

// Validate checks that v parses as d's type and passes d's Check.
func (d *Def) Validate(v string) error {
	v = strings.TrimSpace(v)
	switch d.Type {
	case Boolean:
		if v != "true" && v != "false" {
			return fmt.Errorf("%s: %q is not a boolean (true or false)", d.Name, v)
		}
	case Int:
		if _, err := strconv.ParseInt(v, 10, 32); err != nil {
			return fmt.Errorf("%s: %q is not a 32-bit integer", d.Name, v)
		}
	case Short:
		if _, err := strconv.ParseInt(v, 10, 16); err != nil {
			return fmt.Errorf("%s: %q is not a 16-bit integer", d.Name, v)
		}
	case Long:
		if _, err := strconv.ParseInt(v, 10, 64); err != nil {
			return fmt.Errorf("%s: %q is not a 64-bit integer", d.Name, v)
		}
	case Double:
		if _, err := strconv.ParseFloat(v, 64); err != nil {
			return fmt.Errorf("%s: %q is not a number", d.Name, v)
		}
	}
	if d.Check != nil {
		if err := d.Check(v); err != nil {
			return fmt.Errorf("%s: %w", d.Name, err)
		}
	}
	return nil
}

func atLeast(min int64) func(string) error {
	return func(v string) error {
		n, _ := strconv.ParseInt(v, 10, 64)
		if n < min {
			return fmt.Errorf("value %d is below the minimum %d", n, min)
		}
		return nil
	}
}

// minusOneOrAtLeast allows -1 (Kafka's "no limit") or min and above.
func minusOneOrAtLeast(min int64) func(string) error {
	return func(v string) error {
		if n, _ := strconv.ParseInt(v, 10, 64); n != -1 && n < min {
			return fmt.Errorf("value %d is neither -1 nor at least %d", n, min)
		}
		return nil
	}
}

func oneOf(allowed ...string) func(string) error {
	return func(v string) error {
		for _, a := range allowed {
			if v == a {
				return nil
			}
		}
		return fmt.Errorf("%q is not one of %s", v, strings.Join(allowed, ", "))
	}
}

// listOf checks a comma-separated list whose every element is allowed.
func listOf(allowed ...string) func(string) error {
	one := oneOf(allowed...)
	return func(v string) error {
		for _, e := range strings.Split(v, ",") {
			if err := one(strings.TrimSpace(e)); err != nil {
				return err
			}
		}
		return nil
	}
}

var maxLong = strconv.FormatInt(math.MaxInt64, 10)

func index(defs []Def) map[string]*Def {
	m := make(map[string]*Def, len(defs))
	for i := range defs {
		m[defs[i].Name] = &defs[i]
	}
	return m
}
