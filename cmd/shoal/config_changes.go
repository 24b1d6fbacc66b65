package main

import (
	"errors"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/urfave/cli/v2"
)

// configChanges are the --set key=value and --delete key flags of a
// command that alters configs (topic alter, config set), as
// IncrementalAlterConfigs operations.
type configChanges struct {
	set    map[string]string
	order  []string // set's keys in the order given
	del    []string
	alters []kadm.AlterConfig
}

// parseConfigChanges reads --set and --delete; cmd names the command in
// usage errors.
func parseConfigChanges(c *cli.Context, cmd string) (configChanges, error) {
	set, order, err := parseKeyValues("set", listFlagValues(c, "set"))
	if err != nil {
		return configChanges{}, err
	}
	ch := configChanges{set: set, order: order, del: listFlagValues(c, "delete")}
	if len(set) == 0 && len(ch.del) == 0 {
		return ch, usageError("%s: nothing to change; give --set key=value and/or --delete key", cmd)
	}
	for _, k := range order {
		ch.alters = append(ch.alters, kadm.AlterConfig{Op: kadm.SetConfig, Name: k, Value: kmsg.StringPtr(set[k])})
	}
	for _, k := range ch.del {
		if k == "" || strings.Contains(k, "=") {
			return ch, usageError("--delete: %q is not a config name", k)
		}
		if _, both := set[k]; both {
			return ch, usageError("%s: %q is both set and deleted", cmd, k)
		}
		ch.alters = append(ch.alters, kadm.AlterConfig{Op: kadm.DeleteConfig, Name: k})
	}
	return ch, nil
}

// alterConfigsFailure is the error of an IncrementalAlterConfigs answer:
// of the request (err), or of its first refused resource; nil if every
// resource was altered. what names the alteration in the message
// ("alter topic \"orders\""); unknown, if not nil, is the error for a
// resource that does not exist.
func alterConfigsFailure(resps kadm.AlterConfigsResponses, err error, what string, unknown error) error {
	if err != nil {
		return failure("%s: %s", what, describeErr(err))
	}
	for _, r := range resps {
		if r.Err == nil {
			continue
		}
		if unknown != nil && errors.Is(r.Err, kerr.UnknownTopicOrPartition) {
			return unknown
		}
		return failure("%s: %s", what, describeErrMsg(r.Err, r.ErrMessage))
	}
	return nil
}

// summary renders the changes as key=value and -key, in the order given.
func (ch configChanges) summary() string {
	var parts []string
	for _, k := range ch.order {
		parts = append(parts, k+"="+ch.set[k])
	}
	for _, k := range ch.del {
		parts = append(parts, "-"+k)
	}
	return strings.Join(parts, " ")
}

// setMap is the keys set, for JSON output.
func (ch configChanges) setMap() map[string]string {
	out := map[string]string{}
	for _, k := range ch.order {
		out[k] = ch.set[k]
	}
	return out
}
