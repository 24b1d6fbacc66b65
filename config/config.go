// Package config holds shoal's configuration keys: the broker's (read from a
// server.properties file, SHOAL_* environment variables and --set flags) and
// the per-topic ones (read and written with DescribeConfigs and
// IncrementalAlterConfigs). Key names, types and defaults are Kafka's, so an
// operator's existing knowledge and files carry over.
package config

import (
	"errors"
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

// Validate checks that v parses as d's type and passes d's Check. A
// refusal is worded as Kafka's ConfigException words it: "Invalid value v
// for configuration name: reason".
func (d *Def) Validate(v string) error {
	v = strings.TrimSpace(v)
	if err := d.check(v); err != nil {
		return fmt.Errorf("Invalid value %s for configuration %s: %w", v, d.Name, err)
	}
	return nil
}

// check is Validate's reason to refuse v, in Kafka's words where Kafka
// has them.
func (d *Def) check(v string) error {
	integers := map[Type]struct {
		bits int
		name string
	}{Int: {32, "INT"}, Short: {16, "SHORT"}, Long: {64, "LONG"}}
	switch d.Type {
	case Boolean:
		if v != "true" && v != "false" {
			return errors.New("Expected value to be either true or false")
		}
	case Int, Short, Long:
		i := integers[d.Type]
		if _, err := strconv.ParseInt(v, 10, i.bits); err != nil {
			return fmt.Errorf("Not a number of type %s", i.name)
		}
	case Double:
		if _, err := strconv.ParseFloat(v, 64); err != nil {
			return errors.New("Not a number of type DOUBLE")
		}
	}
	if d.Check != nil {
		return d.Check(v)
	}
	return nil
}

func atLeast(min int64) func(string) error {
	return func(v string) error {
		if n, _ := strconv.ParseInt(v, 10, 64); n < min {
			return fmt.Errorf("Value must be at least %d", min)
		}
		return nil
	}
}

// minusOneOrAtLeast allows -1 (Kafka's "no limit") or min and above.
func minusOneOrAtLeast(min int64) func(string) error {
	return func(v string) error {
		if n, _ := strconv.ParseInt(v, 10, 64); n != -1 && n < min {
			return fmt.Errorf("Value must be -1 or at least %d", min)
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
		return fmt.Errorf("String must be one of: %s", strings.Join(allowed, ", "))
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
