// Package acl is Kafka's StandardAuthorizer, pure: ACL bindings, their
// validation, the filters of DescribeAcls and DeleteAcls, and the decision
// whether a principal connecting from a host may perform an operation on a
// resource. It holds no state besides an immutable index built from a set
// of bindings, so the metadata image can hand a new Authorizer to every
// connection without locks.
//
// The numeric values of every enum are Kafka's wire values, so a kmsg field
// converts with a plain type conversion.
package acl

import (
	"fmt"
	"strings"
)

// ResourceType is Kafka's ResourceType.
type ResourceType int8

// Kafka's resource types and their wire codes.
const (
	ResourceUnknown         ResourceType = 0
	ResourceAny             ResourceType = 1 // filters only
	ResourceTopic           ResourceType = 2
	ResourceGroup           ResourceType = 3
	ResourceCluster         ResourceType = 4
	ResourceTransactionalID ResourceType = 5
	ResourceDelegationToken ResourceType = 6
	ResourceUser            ResourceType = 7
)

// PatternType is Kafka's PatternType.
type PatternType int8

// Kafka's pattern types. ANY and MATCH exist only in filters.
const (
	PatternUnknown  PatternType = 0
	PatternAny      PatternType = 1
	PatternMatch    PatternType = 2
	PatternLiteral  PatternType = 3
	PatternPrefixed PatternType = 4
)

// Operation is Kafka's AclOperation.
type Operation int8

// Kafka's operations.
const (
	OpUnknown         Operation = 0
	OpAny             Operation = 1 // filters only
	OpAll             Operation = 2
	OpRead            Operation = 3
	OpWrite           Operation = 4
	OpCreate          Operation = 5
	OpDelete          Operation = 6
	OpAlter           Operation = 7
	OpDescribe        Operation = 8
	OpClusterAction   Operation = 9
	OpDescribeConfigs Operation = 10
	OpAlterConfigs    Operation = 11
	OpIdempotentWrite Operation = 12
	OpCreateTokens    Operation = 13
	OpDescribeTokens  Operation = 14
	OpTwoPhaseCommit  Operation = 15
)

// Permission is Kafka's AclPermissionType.
type Permission int8

// Kafka's permission types.
const (
	PermissionUnknown Permission = 0
	PermissionAny     Permission = 1 // filters only
	PermissionDeny    Permission = 2
	PermissionAllow   Permission = 3
)

// Wildcard is the resource name of a LITERAL pattern matching every
// resource of its type, and the host matching every host.
const Wildcard = "*"

// WildcardPrincipal matches every principal.
const WildcardPrincipal = "User:*"

// ClusterName is the only name a CLUSTER resource has.
const ClusterName = "kafka-cluster"

var resourceNames = map[ResourceType]string{
	ResourceUnknown: "UNKNOWN", ResourceAny: "ANY", ResourceTopic: "TOPIC", ResourceGroup: "GROUP",
	ResourceCluster: "CLUSTER", ResourceTransactionalID: "TRANSACTIONAL_ID",
	ResourceDelegationToken: "DELEGATION_TOKEN", ResourceUser: "USER",
}

var patternNames = map[PatternType]string{
	PatternUnknown: "UNKNOWN", PatternAny: "ANY", PatternMatch: "MATCH", PatternLiteral: "LITERAL", PatternPrefixed: "PREFIXED",
}

var operationNames = map[Operation]string{
	OpUnknown: "UNKNOWN", OpAny: "ANY", OpAll: "ALL", OpRead: "READ", OpWrite: "WRITE", OpCreate: "CREATE",
	OpDelete: "DELETE", OpAlter: "ALTER", OpDescribe: "DESCRIBE", OpClusterAction: "CLUSTER_ACTION",
	OpDescribeConfigs: "DESCRIBE_CONFIGS", OpAlterConfigs: "ALTER_CONFIGS", OpIdempotentWrite: "IDEMPOTENT_WRITE",
	OpCreateTokens: "CREATE_TOKENS", OpDescribeTokens: "DESCRIBE_TOKENS", OpTwoPhaseCommit: "TWO_PHASE_COMMIT",
}

var permissionNames = map[Permission]string{
	PermissionUnknown: "UNKNOWN", PermissionAny: "ANY", PermissionDeny: "DENY", PermissionAllow: "ALLOW",
}

func enumString[T ~int8](names map[T]string, v T) string {
	if s, ok := names[v]; ok {
		return s
	}
	return fmt.Sprintf("UNKNOWN(%d)", int8(v))
}

func parseEnum[T ~int8](names map[T]string, kind, s string) (T, error) {
	norm := strings.ToUpper(strings.ReplaceAll(strings.TrimSpace(s), "-", "_"))
	for v, n := range names {
		if n == norm && n != "UNKNOWN" {
			return v, nil
		}
	}
	return 0, fmt.Errorf("unknown %s %q", kind, s)
}

func (t ResourceType) String() string { return enumString(resourceNames, t) }
func (p PatternType) String() string  { return enumString(patternNames, p) }
func (o Operation) String() string    { return enumString(operationNames, o) }
func (p Permission) String() string   { return enumString(permissionNames, p) }

// ParseResourceType parses a name such as "TOPIC" or "transactional-id",
// case-insensitively, as Kafka's command line does.
func ParseResourceType(s string) (ResourceType, error) {
	return parseEnum(resourceNames, "resource type", s)
}

// ParsePatternType parses "LITERAL", "PREFIXED", "ANY" or "MATCH".
func ParsePatternType(s string) (PatternType, error) {
	return parseEnum(patternNames, "pattern type", s)
}

// ParseOperation parses an operation name such as "READ" or "describe-configs".
func ParseOperation(s string) (Operation, error) { return parseEnum(operationNames, "operation", s) }

// ParsePermission parses "ALLOW", "DENY" or "ANY".
func ParsePermission(s string) (Permission, error) {
	return parseEnum(permissionNames, "permission type", s)
}

// Principal is a KafkaPrincipal: a type (always "User" for principals that
// authentication produces) and a name.
type Principal struct {
	Type string
	Name string
}

// User returns the principal User:name.
func User(name string) Principal { return Principal{Type: "User", Name: name} }

// Anonymous is the principal of a connection that did not authenticate
// (a PLAINTEXT listener, or SSL without a client certificate).
var Anonymous = User("ANONYMOUS")

func (p Principal) String() string { return p.Type + ":" + p.Name }

// ParsePrincipal parses "Type:name" as Kafka's SecurityUtils.parseKafkaPrincipal
// does: the type is everything before the first colon; both parts must be
// non-empty.
func ParsePrincipal(s string) (Principal, error) {
	i := strings.IndexByte(s, ':')
	if i < 0 {
		return Principal{}, fmt.Errorf("could not parse principal from %q (no colon is present separating the principal type from the principal name)", s)
	}
	if i == 0 || i == len(s)-1 {
		return Principal{}, fmt.Errorf("could not parse principal from %q (principal type and name must not be empty)", s)
	}
	return Principal{Type: s[:i], Name: s[i+1:]}, nil
}

// Resource is what an operation acts on: a concrete resource, never a
// pattern (the CLUSTER resource is named ClusterName).
type Resource struct {
	Type ResourceType
	Name string
}

// Pattern selects resources: by exact name (LITERAL, with Wildcard
// selecting all) or by name prefix (PREFIXED).
type Pattern struct {
	Type        ResourceType
	Name        string
	PatternType PatternType
}

// Entry is the access part of a binding: who, from where, what, and
// whether it is allowed or denied.
type Entry struct {
	// Principal is "Type:name" as Kafka stores it; WildcardPrincipal
	// matches everyone.
	Principal  string
	Host       string
	Operation  Operation
	Permission Permission
}

// Binding is one ACL: a pattern and an entry.
type Binding struct {
	Pattern Pattern
	Entry   Entry
}

func (b Binding) String() string {
	return fmt.Sprintf("(pattern=%s:%s:%s, principal=%s, host=%s, operation=%s, permission=%s)",
		b.Pattern.Type, b.Pattern.PatternType, b.Pattern.Name, b.Entry.Principal, b.Entry.Host, b.Entry.Operation, b.Entry.Permission)
}

// Validate checks a binding to be created as Kafka does, in its order
// and with its messages (what CreateAcls answers with INVALID_REQUEST):
// the broker's checks of the resource name first, then the controller's
// of the enums. The principal and host are checked last; Kafka fails a
// binding whose principal does not parse only when storing it.
func (b Binding) Validate() error {
	switch {
	case b.Pattern.Type == ResourceCluster && b.Pattern.Name != ClusterName:
		return fmt.Errorf("The only valid name for the CLUSTER resource is %s", ClusterName)
	case b.Pattern.Name == "":
		return fmt.Errorf("Invalid empty resource name")
	}
	switch b.Pattern.Type {
	case ResourceTopic, ResourceGroup, ResourceCluster, ResourceTransactionalID, ResourceDelegationToken, ResourceUser:
	default:
		return fmt.Errorf("Invalid resourceType %s", b.Pattern.Type)
	}
	switch b.Pattern.PatternType {
	case PatternLiteral, PatternPrefixed:
	default:
		return fmt.Errorf("Invalid patternType %s", b.Pattern.PatternType)
	}
	if _, ok := operationNames[b.Entry.Operation]; !ok || b.Entry.Operation == OpAny || b.Entry.Operation == OpUnknown {
		return fmt.Errorf("Invalid operation %s", b.Entry.Operation)
	}
	switch b.Entry.Permission {
	case PermissionAllow, PermissionDeny:
	default:
		return fmt.Errorf("Invalid permissionType %s", b.Entry.Permission)
	}
	if _, err := ParsePrincipal(b.Entry.Principal); err != nil {
		return err
	}
	if b.Entry.Host == "" {
		return fmt.Errorf("host should not be empty")
	}
	return nil
}
