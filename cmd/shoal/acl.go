package main

// shoal acl create|list|delete: ACL bindings, with the resource and entry
// flags of Kafka's kafka-acls.sh (--allow-principal, --operation, --topic,
// --group, --cluster, --transactional-id, --resource-pattern-type).

import (
	"context"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/urfave/cli/v2"

	"github.com/shoalmq/shoal/acl"
)

func aclCommand() *cli.Command {
	return commandGroup("acl", "create, list and delete ACLs (the authorizer must be on: authorizer.class.name)",
		`shoal acl create --allow-principal User:alice --operation READ --operation WRITE --topic orders
shoal acl create --allow-principal User:alice --operation READ --group orders- --resource-pattern-type prefixed
shoal acl list --principal User:alice
shoal acl delete --allow-principal User:alice --topic orders`,
		aclCreateCommand(),
		aclListCommand(),
		aclDeleteCommand(),
	)
}

// aclResourceFlags name the resources of a binding or filter.
func aclResourceFlags(patternDefault string) []cli.Flag {
	return []cli.Flag{
		listFlag("topic", nil, "topic name (repeatable; * for all topics)"),
		listFlag("group", nil, "group name (repeatable; * for all groups)"),
		listFlag("transactional-id", nil, "transactional id (repeatable)"),
		&cli.BoolFlag{Name: "cluster", Usage: "the cluster resource"},
		&cli.StringFlag{Name: "resource-pattern-type", Value: patternDefault, Usage: "literal or prefixed (list and delete also take any and match)"},
	}
}

func aclCreateCommand() *cli.Command {
	return leaf(&cli.Command{
		Name:  "create",
		Usage: "add ACLs: each principal and host gets each operation on each resource",
		UsageText: `shoal acl create (--allow-principal P | --deny-principal P)... [--allow-host H] [--deny-host H] --operation OP... RESOURCE...

example: shoal acl create --allow-principal User:alice --operation READ --operation DESCRIBE --topic orders --group billing`,
		Flags: append([]cli.Flag{
			listFlag("allow-principal", nil, "principal (User:name) allowed (repeatable)"),
			listFlag("deny-principal", nil, "principal (User:name) denied (repeatable)"),
			&cli.StringFlag{Name: "allow-host", Value: "*", Usage: "host the allowed principals connect from"},
			&cli.StringFlag{Name: "deny-host", Value: "*", Usage: "host the denied principals connect from"},
			listFlag("operation", nil, "READ, WRITE, CREATE, DELETE, ALTER, DESCRIBE, CLUSTER_ACTION, DESCRIBE_CONFIGS, ALTER_CONFIGS, IDEMPOTENT_WRITE or ALL (repeatable)"),
		}, aclResourceFlags("literal")...),
		Action: aclCreate,
	})
}

func aclListCommand() *cli.Command {
	return leaf(&cli.Command{
		Name:  "list",
		Usage: "list ACLs, all or those matching the filters",
		UsageText: `shoal acl list [--principal P] [--operation OP] [RESOURCE...]

example: shoal acl list --topic orders --resource-pattern-type match`,
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "principal", Usage: "only ACLs of this principal"},
			listFlag("operation", nil, "only ACLs of this operation"),
		}, aclResourceFlags("any")...),
		Action: aclList,
	})
}

func aclDeleteCommand() *cli.Command {
	return leaf(&cli.Command{
		Name:  "delete",
		Usage: "delete the ACLs matching the filters (at least one resource or principal)",
		UsageText: `shoal acl delete [--allow-principal P | --deny-principal P] [--operation OP] RESOURCE...

example: shoal acl delete --allow-principal User:alice --topic orders`,
		Flags: append([]cli.Flag{
			listFlag("allow-principal", nil, "only ALLOW ACLs of this principal"),
			listFlag("deny-principal", nil, "only DENY ACLs of this principal"),
			listFlag("operation", nil, "only ACLs of this operation"),
		}, aclResourceFlags("literal")...),
		Action: aclDelete,
	})
}

// aclResources reads the resource flags as patterns (name "" when none is
// given: a filter then matches any name).
func aclResources(c *cli.Context, forFilter bool) ([]acl.Pattern, error) {
	pt, err := acl.ParsePatternType(c.String("resource-pattern-type"))
	if err != nil {
		return nil, usageError("--resource-pattern-type: %v", err)
	}
	if !forFilter && pt != acl.PatternLiteral && pt != acl.PatternPrefixed {
		return nil, usageError("--resource-pattern-type: %s is for list and delete; create takes literal or prefixed", pt)
	}
	var out []acl.Pattern
	add := func(t acl.ResourceType, names []string) {
		for _, n := range names {
			out = append(out, acl.Pattern{Type: t, Name: n, PatternType: pt})
		}
	}
	add(acl.ResourceTopic, listFlagValues(c, "topic"))
	add(acl.ResourceGroup, listFlagValues(c, "group"))
	add(acl.ResourceTransactionalID, listFlagValues(c, "transactional-id"))
	if c.Bool("cluster") {
		add(acl.ResourceCluster, []string{acl.ClusterName})
	}
	return out, nil
}

func aclOperations(c *cli.Context) ([]acl.Operation, error) {
	var ops []acl.Operation
	for _, s := range listFlagValues(c, "operation") {
		for _, part := range strings.Split(s, ",") {
			op, err := acl.ParseOperation(part)
			if err != nil {
				return nil, usageError("--operation: %v", err)
			}
			ops = append(ops, op)
		}
	}
	return ops, nil
}

// aclJSON is one binding as --output json prints it.
type aclJSON struct {
	ResourceType string `json:"resource_type"`
	ResourceName string `json:"resource_name"`
	PatternType  string `json:"pattern_type"`
	Principal    string `json:"principal"`
	Host         string `json:"host"`
	Operation    string `json:"operation"`
	Permission   string `json:"permission"`
}

func toACLJSON(b acl.Binding) aclJSON {
	return aclJSON{
		ResourceType: b.Pattern.Type.String(), ResourceName: b.Pattern.Name, PatternType: b.Pattern.PatternType.String(),
		Principal: b.Entry.Principal, Host: b.Entry.Host, Operation: b.Entry.Operation.String(), Permission: b.Entry.Permission.String(),
	}
}

// printACLs prints bindings as a table or JSON.
func printACLs(c *cli.Context, out string, bindings []acl.Binding) error {
	list := make([]aclJSON, 0, len(bindings))
	for _, b := range bindings {
		list = append(list, toACLJSON(b))
	}
	return printRows(c.App.Writer, out, list,
		[]string{"RESOURCE-TYPE", "RESOURCE-NAME", "PATTERN", "PRINCIPAL", "HOST", "OPERATION", "PERMISSION"},
		func(j aclJSON) []any {
			return []any{j.ResourceType, j.ResourceName, j.PatternType, j.Principal, j.Host, j.Operation, j.Permission}
		})
}

func aclCreate(c *cli.Context) error {
	pats, err := aclResources(c, false)
	if err != nil {
		return err
	}
	ops, err := aclOperations(c)
	if err != nil {
		return err
	}
	if len(pats) == 0 {
		return usageError("acl create: name a resource (--topic, --group, --transactional-id or --cluster)")
	}
	if len(ops) == 0 {
		return usageError("acl create: name at least one --operation")
	}
	var bindings []acl.Binding
	for _, perm := range []struct {
		flag, host string
		p          acl.Permission
	}{{"allow-principal", "allow-host", acl.PermissionAllow}, {"deny-principal", "deny-host", acl.PermissionDeny}} {
		for _, principal := range listFlagValues(c, perm.flag) {
			if _, err := acl.ParsePrincipal(principal); err != nil {
				return usageError("--%s: %v", perm.flag, err)
			}
			for _, p := range pats {
				for _, op := range ops {
					bindings = append(bindings, acl.Binding{Pattern: p, Entry: acl.Entry{Principal: principal, Host: c.String(perm.host), Operation: op, Permission: perm.p}})
				}
			}
		}
	}
	if len(bindings) == 0 {
		return usageError("acl create: name a principal with --allow-principal or --deny-principal")
	}
	return withAdmin(c, func(ctx context.Context, a adminSession) error {
		req := kmsg.NewPtrCreateACLsRequest()
		for _, b := range bindings {
			cr := kmsg.NewCreateACLsRequestCreation()
			cr.ResourceType, cr.ResourceName, cr.ResourcePatternType = kmsg.ACLResourceType(b.Pattern.Type), b.Pattern.Name, kmsg.ACLResourcePatternType(b.Pattern.PatternType)
			cr.Principal, cr.Host = b.Entry.Principal, b.Entry.Host
			cr.Operation, cr.PermissionType = kmsg.ACLOperation(b.Entry.Operation), kmsg.ACLPermissionType(b.Entry.Permission)
			req.Creations = append(req.Creations, cr)
		}
		resp, err := req.RequestWith(ctx, a.cl)
		if err != nil {
			return failure("create ACLs: %s", describeErr(err))
		}
		for i, r := range resp.Results {
			if err := kerr.ErrorForCode(r.ErrorCode); err != nil {
				return failure("create ACL %s: %s", bindings[i], describeErrMsg(err, deref(r.ErrorMessage)))
			}
		}
		return printACLs(c, a.out, bindings)
	})
}

// aclFilters builds one filter per resource (or one for any resource)
// and principal/permission.
func aclFilters(c *cli.Context, principals map[string]acl.Permission) ([]acl.Filter, error) {
	pats, err := aclResources(c, true)
	if err != nil {
		return nil, err
	}
	ops, err := aclOperations(c)
	if err != nil {
		return nil, err
	}
	pt, _ := acl.ParsePatternType(c.String("resource-pattern-type"))
	if len(pats) == 0 {
		pats = []acl.Pattern{{Type: acl.ResourceAny, PatternType: pt}}
	}
	if len(ops) == 0 {
		ops = []acl.Operation{acl.OpAny}
	}
	if len(principals) == 0 {
		principals = map[string]acl.Permission{"": acl.PermissionAny}
	}
	var out []acl.Filter
	for _, p := range pats {
		for principal, perm := range principals {
			for _, op := range ops {
				f := acl.Filter{ResourceType: p.Type, PatternType: p.PatternType, Operation: op, Permission: perm}
				if p.Name != "" {
					f.Name = &p.Name
				}
				if principal != "" {
					f.Principal = &principal
				}
				out = append(out, f)
			}
		}
	}
	return out, nil
}

func aclList(c *cli.Context) error {
	principals := map[string]acl.Permission{}
	if p := c.String("principal"); p != "" {
		principals[p] = acl.PermissionAny
	}
	filters, err := aclFilters(c, principals)
	if err != nil {
		return err
	}
	return withAdmin(c, func(ctx context.Context, a adminSession) error {
		var all []acl.Binding
		seen := map[acl.Binding]bool{}
		for _, f := range filters {
			bs, err := describeACLs(ctx, a.cl, f)
			if err != nil {
				return err
			}
			for _, b := range bs {
				if !seen[b] {
					seen[b] = true
					all = append(all, b)
				}
			}
		}
		return printACLs(c, a.out, all)
	})
}

func describeACLs(ctx context.Context, cl *kgo.Client, f acl.Filter) ([]acl.Binding, error) {
	req := kmsg.NewPtrDescribeACLsRequest()
	req.ResourceType, req.ResourceName, req.ResourcePatternType = kmsg.ACLResourceType(f.ResourceType), f.Name, kmsg.ACLResourcePatternType(f.PatternType)
	req.Principal, req.Host = f.Principal, f.Host
	req.Operation, req.PermissionType = kmsg.ACLOperation(f.Operation), kmsg.ACLPermissionType(f.Permission)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return nil, failure("list ACLs: %s", describeErr(err))
	}
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return nil, failure("list ACLs: %s", describeErrMsg(err, deref(resp.ErrorMessage)))
	}
	var out []acl.Binding
	for _, r := range resp.Resources {
		for _, a := range r.ACLs {
			out = append(out, acl.Binding{
				Pattern: acl.Pattern{Type: acl.ResourceType(r.ResourceType), Name: r.ResourceName, PatternType: acl.PatternType(r.ResourcePatternType)},
				Entry:   acl.Entry{Principal: a.Principal, Host: a.Host, Operation: acl.Operation(a.Operation), Permission: acl.Permission(a.PermissionType)},
			})
		}
	}
	return out, nil
}

func aclDelete(c *cli.Context) error {
	principals := map[string]acl.Permission{}
	for _, p := range listFlagValues(c, "allow-principal") {
		principals[p] = acl.PermissionAllow
	}
	for _, p := range listFlagValues(c, "deny-principal") {
		principals[p] = acl.PermissionDeny
	}
	pats, err := aclResources(c, true)
	if err != nil {
		return err
	}
	if len(pats) == 0 && len(principals) == 0 {
		return usageError("acl delete: name a resource or a principal (deleting every ACL takes --resource-pattern-type any --topic '*' and the like, one type at a time)")
	}
	filters, err := aclFilters(c, principals)
	if err != nil {
		return err
	}
	return withAdmin(c, func(ctx context.Context, a adminSession) error {
		req := kmsg.NewPtrDeleteACLsRequest()
		for _, f := range filters {
			rf := kmsg.NewDeleteACLsRequestFilter()
			rf.ResourceType, rf.ResourceName, rf.ResourcePatternType = kmsg.ACLResourceType(f.ResourceType), f.Name, kmsg.ACLResourcePatternType(f.PatternType)
			rf.Principal, rf.Host = f.Principal, f.Host
			rf.Operation, rf.PermissionType = kmsg.ACLOperation(f.Operation), kmsg.ACLPermissionType(f.Permission)
			req.Filters = append(req.Filters, rf)
		}
		resp, err := req.RequestWith(ctx, a.cl)
		if err != nil {
			return failure("delete ACLs: %s", describeErr(err))
		}
		var deleted []acl.Binding
		for _, r := range resp.Results {
			if err := kerr.ErrorForCode(r.ErrorCode); err != nil {
				return failure("delete ACLs: %s", describeErrMsg(err, deref(r.ErrorMessage)))
			}
			for _, m := range r.MatchingACLs {
				deleted = append(deleted, acl.Binding{
					Pattern: acl.Pattern{Type: acl.ResourceType(m.ResourceType), Name: m.ResourceName, PatternType: acl.PatternType(m.ResourcePatternType)},
					Entry:   acl.Entry{Principal: m.Principal, Host: m.Host, Operation: acl.Operation(m.Operation), Permission: acl.Permission(m.PermissionType)},
				})
			}
		}
		return printACLs(c, a.out, deleted)
	})
}
