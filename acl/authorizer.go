package acl

import (
	"net"
	"slices"
	"strings"
)

// Config holds the broker settings the authorizer reads.
type Config struct {
	// SuperUsers are principals ("User:admin") allowed everything, from
	// super.users.
	SuperUsers []string
	// AllowIfNoACL is allow.everyone.if.no.acl.found: a resource that no
	// ACL names at all is open to everyone.
	AllowIfNoACL bool
}

// ParseSuperUsers splits super.users: principals separated by semicolons,
// surrounding spaces ignored.
func ParseSuperUsers(s string) ([]string, error) {
	var out []string
	for _, p := range strings.Split(s, ";") {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		if _, err := ParsePrincipal(p); err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// Authorizer answers authorization questions from a fixed set of bindings.
// It is immutable: build a new one when the ACLs change. Safe for
// concurrent use.
type Authorizer struct {
	cfg        Config
	superUsers map[string]bool
	byType     map[ResourceType]*typeIndex
}

// typeIndex holds the bindings of one resource type, arranged so a check
// costs a map lookup per distinct prefix length rather than a scan of all
// bindings.
type typeIndex struct {
	literal  map[string][]Entry // by exact name, the wildcard included
	prefixed map[string][]Entry
	// prefixLens are the distinct lengths of prefixed names, ascending.
	prefixLens []int
}

// New builds an authorizer over bindings. Bindings that do not validate
// are ignored: they cannot have been created.
func New(bindings []Binding, cfg Config) *Authorizer {
	a := &Authorizer{cfg: cfg, superUsers: map[string]bool{}, byType: map[ResourceType]*typeIndex{}}
	for _, u := range cfg.SuperUsers {
		a.superUsers[u] = true
	}
	for _, b := range bindings {
		if b.Validate() != nil {
			continue
		}
		ix := a.byType[b.Pattern.Type]
		if ix == nil {
			ix = &typeIndex{literal: map[string][]Entry{}, prefixed: map[string][]Entry{}}
			a.byType[b.Pattern.Type] = ix
		}
		if b.Pattern.PatternType == PatternPrefixed {
			n := len(b.Pattern.Name)
			if !slices.Contains(ix.prefixLens, n) {
				ix.prefixLens = append(ix.prefixLens, n)
			}
			ix.prefixed[b.Pattern.Name] = append(ix.prefixed[b.Pattern.Name], b.Entry)
		} else {
			ix.literal[b.Pattern.Name] = append(ix.literal[b.Pattern.Name], b.Entry)
		}
	}
	for _, ix := range a.byType {
		slices.Sort(ix.prefixLens)
	}
	return a
}

// Rule says why a decision was made, for the audit log.
type Rule int

// The rules behind a decision, as Kafka's audit log names them.
const (
	RuleSuperUser    Rule = iota + 1 // the principal is in super.users
	RuleDefaultAllow                 // no ACL names the resource and allow.everyone.if.no.acl.found is set
	RuleDefaultDeny                  // no ACL grants the operation
	RuleMatchingACL                  // Decision.ACL allowed or denied it
)

// Decision is the answer to one authorization question.
type Decision struct {
	Allowed bool
	Rule    Rule
	// ACL is the binding that decided, with RuleMatchingACL.
	ACL Binding
}

// Authorize decides whether principal, connecting from host (an IP address
// in text form), may perform op on res. The rules are Kafka's
// StandardAuthorizer's:
//
//  1. A super user may do anything.
//  2. The ACLs that apply are those whose pattern matches the resource: a
//     LITERAL with its exact name, a LITERAL wildcard, or a PREFIXED whose
//     name is a prefix of it; and whose principal is the principal or the
//     wildcard principal, and whose host is the host or the wildcard.
//  3. A DENY applies only to its own operation (or ALL) and wins over any
//     ALLOW. An ALLOW for READ, WRITE, DELETE or ALTER also allows
//     DESCRIBE; one for ALTER_CONFIGS also allows DESCRIBE_CONFIGS; ALL
//     allows everything.
//  4. Without an applicable ALLOW, the answer is no, unless no ACL at all
//     (for any principal) matches the resource and allow.everyone.if.no.acl.found
//     is set.
func (a *Authorizer) Authorize(principal Principal, host string, op Operation, res Resource) Decision {
	if a.superUsers[principal.String()] {
		return Decision{Allowed: true, Rule: RuleSuperUser}
	}
	m := matcher{principal: principal.String(), host: host, hostIP: net.ParseIP(host), op: op, res: res}
	if ix := a.byType[res.Type]; ix != nil {
		m.section(ix.literal[res.Name], PatternLiteral, res.Name)
		for _, n := range ix.prefixLens {
			if m.denied || n > len(res.Name) {
				break
			}
			if entries, ok := ix.prefixed[res.Name[:n]]; ok {
				m.section(entries, PatternPrefixed, res.Name[:n])
			}
		}
		if !m.denied && res.Name != Wildcard {
			m.section(ix.literal[Wildcard], PatternLiteral, Wildcard)
		}
	}
	switch {
	case m.denied:
		return Decision{Allowed: false, Rule: RuleMatchingACL, ACL: m.deny}
	case m.allowed:
		return Decision{Allowed: true, Rule: RuleMatchingACL, ACL: m.allow}
	case !m.resourceHasACLs && a.cfg.AllowIfNoACL:
		return Decision{Allowed: true, Rule: RuleDefaultAllow}
	default:
		return Decision{Allowed: false, Rule: RuleDefaultDeny}
	}
}

// matcher accumulates the outcome of the ACLs that match one resource.
type matcher struct {
	principal, host string
	// hostIP is host parsed, so an ACL naming the same address in another
	// spelling ("0:0:0:0:0:0:0:1", as Java prints it, for "::1") matches.
	hostIP net.IP
	op     Operation
	res    Resource

	resourceHasACLs bool
	allowed, denied bool
	allow, deny     Binding
}

func (m *matcher) section(entries []Entry, pt PatternType, name string) {
	for _, e := range entries {
		m.resourceHasACLs = true
		if m.denied {
			return
		}
		switch m.result(e) {
		case PermissionAllow:
			if !m.allowed {
				m.allowed = true
				m.allow = Binding{Pattern: Pattern{Type: m.res.Type, Name: name, PatternType: pt}, Entry: e}
			}
		case PermissionDeny:
			m.denied = true
			m.deny = Binding{Pattern: Pattern{Type: m.res.Type, Name: name, PatternType: pt}, Entry: e}
			return
		}
	}
}

// result returns the permission e grants for the matcher's question, or
// PermissionUnknown if e does not apply to it.
func (m *matcher) result(e Entry) Permission {
	if e.Principal != m.principal && e.Principal != WildcardPrincipal {
		return PermissionUnknown
	}
	if e.Host != Wildcard && e.Host != m.host && (m.hostIP == nil || !m.hostIP.Equal(net.ParseIP(e.Host))) {
		return PermissionUnknown
	}
	if e.Operation != OpAll && e.Operation != m.op {
		// Implications apply to ALLOW only: DENY READ does not deny DESCRIBE.
		if e.Permission != PermissionAllow || !Implies(e.Operation, m.op) {
			return PermissionUnknown
		}
	}
	return e.Permission
}

// Implies reports whether an ALLOW for granted also allows op, beyond
// granted == op and ALL: DESCRIBE is implied by READ, WRITE, DELETE and
// ALTER, and DESCRIBE_CONFIGS by ALTER_CONFIGS.
func Implies(granted, op Operation) bool {
	switch op {
	case OpDescribe:
		return granted == OpRead || granted == OpWrite || granted == OpDelete || granted == OpAlter
	case OpDescribeConfigs:
		return granted == OpAlterConfigs
	}
	return false
}

// AuditMessage is the authorizer log line of one decision, worded like
// Kafka's kafka.authorizer.logger so existing log searches keep working.
// Denied requests are logged at info level, allowed ones at debug.
func AuditMessage(principal Principal, host string, op Operation, res Resource, api string, d Decision) string {
	verdict := "Denied"
	if d.Allowed {
		verdict = "Allowed"
	}
	var rule string
	switch d.Rule {
	case RuleSuperUser:
		rule = "SuperUser"
	case RuleDefaultAllow:
		rule = "DefaultAllow"
	case RuleDefaultDeny:
		rule = "DefaultDeny"
	default:
		rule = "MatchingAcl(acl=" + d.ACL.String() + ")"
	}
	return "Principal = " + principal.String() + " is " + verdict + " operation = " + op.String() +
		" from host = " + host + " on resource = " + resourceTypeName(res.Type) + ":LITERAL:" + res.Name +
		" for request = " + api + " based on rule " + rule
}

// resourceTypeName spells a resource type as Kafka's audit log does
// (SecurityUtils.resourceTypeName): Topic, Group, Cluster, TransactionalId,
// DelegationToken, User.
func resourceTypeName(t ResourceType) string {
	switch t {
	case ResourceTopic:
		return "Topic"
	case ResourceGroup:
		return "Group"
	case ResourceCluster:
		return "Cluster"
	case ResourceTransactionalID:
		return "TransactionalId"
	case ResourceDelegationToken:
		return "DelegationToken"
	case ResourceUser:
		return "User"
	}
	return t.String()
}
