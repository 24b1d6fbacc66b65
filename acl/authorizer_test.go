package acl

import (
	"fmt"
	"strings"
	"testing"
)

func allow(rt ResourceType, pt PatternType, name, principal, host string, op Operation) Binding {
	return Binding{Pattern{rt, name, pt}, Entry{principal, host, op, PermissionAllow}}
}

func deny(rt ResourceType, pt PatternType, name, principal, host string, op Operation) Binding {
	return Binding{Pattern{rt, name, pt}, Entry{principal, host, op, PermissionDeny}}
}

var (
	alice = User("alice")
	bob   = User("bob")
)

const (
	hostA = "10.0.0.1"
	hostB = "10.0.0.2"
)

func TestAuthorize(t *testing.T) {
	topicFoo := Resource{ResourceTopic, "foo"}
	for _, tc := range []struct {
		name      string
		acls      []Binding
		cfg       Config
		principal Principal
		host      string
		op        Operation
		res       Resource
		want      bool
		rule      Rule
	}{
		{name: "no acls denies", principal: alice, host: hostA, op: OpRead, res: topicFoo, want: false, rule: RuleDefaultDeny},
		{name: "no acls with allow.everyone", cfg: Config{AllowIfNoACL: true}, principal: alice, host: hostA, op: OpRead, res: topicFoo, want: true, rule: RuleDefaultAllow},
		{name: "allow.everyone does not apply when another principal has an acl on the resource",
			cfg: Config{AllowIfNoACL: true}, acls: []Binding{allow(ResourceTopic, PatternLiteral, "foo", "User:bob", "*", OpRead)},
			principal: alice, host: hostA, op: OpRead, res: topicFoo, want: false, rule: RuleDefaultDeny},
		{name: "allow.everyone applies when acls name only other resources",
			cfg: Config{AllowIfNoACL: true}, acls: []Binding{allow(ResourceTopic, PatternLiteral, "bar", "User:bob", "*", OpRead)},
			principal: alice, host: hostA, op: OpRead, res: topicFoo, want: true, rule: RuleDefaultAllow},
		{name: "allow.everyone is blocked by a prefixed acl covering the resource",
			cfg: Config{AllowIfNoACL: true}, acls: []Binding{allow(ResourceTopic, PatternPrefixed, "fo", "User:bob", "*", OpRead)},
			principal: alice, host: hostA, op: OpRead, res: topicFoo, want: false, rule: RuleDefaultDeny},
		{name: "allow.everyone is blocked by a wildcard acl",
			cfg: Config{AllowIfNoACL: true}, acls: []Binding{allow(ResourceTopic, PatternLiteral, "*", "User:bob", "*", OpRead)},
			principal: alice, host: hostA, op: OpRead, res: topicFoo, want: false, rule: RuleDefaultDeny},
		{name: "super user beats deny", cfg: Config{SuperUsers: []string{"User:alice"}},
			acls:      []Binding{deny(ResourceTopic, PatternLiteral, "foo", "User:alice", "*", OpAll)},
			principal: alice, host: hostA, op: OpDelete, res: topicFoo, want: true, rule: RuleSuperUser},
		{name: "super user of another type is not super", cfg: Config{SuperUsers: []string{"Group:alice"}},
			principal: alice, host: hostA, op: OpRead, res: topicFoo, want: false, rule: RuleDefaultDeny},
		{name: "literal allow", acls: []Binding{allow(ResourceTopic, PatternLiteral, "foo", "User:alice", "*", OpRead)},
			principal: alice, host: hostA, op: OpRead, res: topicFoo, want: true, rule: RuleMatchingACL},
		{name: "literal names another topic", acls: []Binding{allow(ResourceTopic, PatternLiteral, "fo", "User:alice", "*", OpRead)},
			principal: alice, host: hostA, op: OpRead, res: topicFoo, want: false, rule: RuleDefaultDeny},
		{name: "literal longer than the name", acls: []Binding{allow(ResourceTopic, PatternLiteral, "foobar", "User:alice", "*", OpRead)},
			principal: alice, host: hostA, op: OpRead, res: topicFoo, want: false},
		{name: "prefixed allow", acls: []Binding{allow(ResourceTopic, PatternPrefixed, "fo", "User:alice", "*", OpRead)},
			principal: alice, host: hostA, op: OpRead, res: topicFoo, want: true, rule: RuleMatchingACL},
		{name: "prefixed equal to the whole name", acls: []Binding{allow(ResourceTopic, PatternPrefixed, "foo", "User:alice", "*", OpRead)},
			principal: alice, host: hostA, op: OpRead, res: topicFoo, want: true, rule: RuleMatchingACL},
		{name: "prefixed longer than the name", acls: []Binding{allow(ResourceTopic, PatternPrefixed, "foob", "User:alice", "*", OpRead)},
			principal: alice, host: hostA, op: OpRead, res: topicFoo, want: false},
		{name: "prefixed star is not a wildcard", acls: []Binding{allow(ResourceTopic, PatternPrefixed, "*", "User:alice", "*", OpRead)},
			principal: alice, host: hostA, op: OpRead, res: topicFoo, want: false},
		{name: "wildcard literal", acls: []Binding{allow(ResourceTopic, PatternLiteral, "*", "User:alice", "*", OpRead)},
			principal: alice, host: hostA, op: OpRead, res: topicFoo, want: true, rule: RuleMatchingACL},
		{name: "wildcard of another resource type", acls: []Binding{allow(ResourceGroup, PatternLiteral, "*", "User:alice", "*", OpRead)},
			principal: alice, host: hostA, op: OpRead, res: topicFoo, want: false},
		{name: "same name, other resource type", acls: []Binding{allow(ResourceGroup, PatternLiteral, "foo", "User:alice", "*", OpRead)},
			principal: alice, host: hostA, op: OpRead, res: topicFoo, want: false},
		{name: "wildcard principal", acls: []Binding{allow(ResourceTopic, PatternLiteral, "foo", "User:*", "*", OpRead)},
			principal: bob, host: hostA, op: OpRead, res: topicFoo, want: true},
		{name: "wildcard principal matches other principal types", acls: []Binding{allow(ResourceTopic, PatternLiteral, "foo", "User:*", "*", OpRead)},
			principal: Principal{"Group", "x"}, host: hostA, op: OpRead, res: topicFoo, want: true},
		{name: "other principal", acls: []Binding{allow(ResourceTopic, PatternLiteral, "foo", "User:bob", "*", OpRead)},
			principal: alice, host: hostA, op: OpRead, res: topicFoo, want: false},
		{name: "principal match is case sensitive", acls: []Binding{allow(ResourceTopic, PatternLiteral, "foo", "User:Alice", "*", OpRead)},
			principal: alice, host: hostA, op: OpRead, res: topicFoo, want: false},
		{name: "exact host", acls: []Binding{allow(ResourceTopic, PatternLiteral, "foo", "User:alice", hostA, OpRead)},
			principal: alice, host: hostA, op: OpRead, res: topicFoo, want: true},
		{name: "other host", acls: []Binding{allow(ResourceTopic, PatternLiteral, "foo", "User:alice", hostA, OpRead)},
			principal: alice, host: hostB, op: OpRead, res: topicFoo, want: false},
		{name: "IPv6 host in Java's spelling", acls: []Binding{allow(ResourceTopic, PatternLiteral, "foo", "User:alice", "0:0:0:0:0:0:0:1", OpRead)},
			principal: alice, host: "::1", op: OpRead, res: topicFoo, want: true},
		{name: "host that is not an address matches exactly", acls: []Binding{allow(ResourceTopic, PatternLiteral, "foo", "User:alice", "client-1", OpRead)},
			principal: alice, host: "client-1", op: OpRead, res: topicFoo, want: true},
		{name: "deny from one host only", acls: []Binding{
			allow(ResourceTopic, PatternLiteral, "foo", "User:alice", "*", OpRead),
			deny(ResourceTopic, PatternLiteral, "foo", "User:alice", hostB, OpRead)},
			principal: alice, host: hostA, op: OpRead, res: topicFoo, want: true},
		{name: "deny from that host", acls: []Binding{
			allow(ResourceTopic, PatternLiteral, "foo", "User:alice", "*", OpRead),
			deny(ResourceTopic, PatternLiteral, "foo", "User:alice", hostB, OpRead)},
			principal: alice, host: hostB, op: OpRead, res: topicFoo, want: false, rule: RuleMatchingACL},
		{name: "deny wins over allow on the same pattern", acls: []Binding{
			allow(ResourceTopic, PatternLiteral, "foo", "User:alice", "*", OpRead),
			deny(ResourceTopic, PatternLiteral, "foo", "User:alice", "*", OpRead)},
			principal: alice, host: hostA, op: OpRead, res: topicFoo, want: false, rule: RuleMatchingACL},
		{name: "prefixed deny wins over literal allow", acls: []Binding{
			allow(ResourceTopic, PatternLiteral, "foo", "User:alice", "*", OpRead),
			deny(ResourceTopic, PatternPrefixed, "f", "User:alice", "*", OpRead)},
			principal: alice, host: hostA, op: OpRead, res: topicFoo, want: false},
		{name: "wildcard deny wins over literal allow", acls: []Binding{
			allow(ResourceTopic, PatternLiteral, "foo", "User:alice", "*", OpRead),
			deny(ResourceTopic, PatternLiteral, "*", "User:alice", "*", OpRead)},
			principal: alice, host: hostA, op: OpRead, res: topicFoo, want: false},
		{name: "wildcard principal deny wins over named allow", acls: []Binding{
			allow(ResourceTopic, PatternLiteral, "foo", "User:alice", "*", OpRead),
			deny(ResourceTopic, PatternLiteral, "foo", "User:*", "*", OpRead)},
			principal: alice, host: hostA, op: OpRead, res: topicFoo, want: false},
		{name: "deny ALL denies every operation", acls: []Binding{
			allow(ResourceTopic, PatternLiteral, "foo", "User:alice", "*", OpAll),
			deny(ResourceTopic, PatternLiteral, "foo", "User:alice", "*", OpAll)},
			principal: alice, host: hostA, op: OpDescribeConfigs, res: topicFoo, want: false},
		{name: "deny of another operation does not deny", acls: []Binding{
			allow(ResourceTopic, PatternLiteral, "foo", "User:alice", "*", OpAll),
			deny(ResourceTopic, PatternLiteral, "foo", "User:alice", "*", OpWrite)},
			principal: alice, host: hostA, op: OpRead, res: topicFoo, want: true},
		{name: "deny READ does not deny DESCRIBE", acls: []Binding{
			allow(ResourceTopic, PatternLiteral, "foo", "User:alice", "*", OpDescribe),
			deny(ResourceTopic, PatternLiteral, "foo", "User:alice", "*", OpRead)},
			principal: alice, host: hostA, op: OpDescribe, res: topicFoo, want: true},
		{name: "deny ALTER_CONFIGS does not deny DESCRIBE_CONFIGS", acls: []Binding{
			allow(ResourceTopic, PatternLiteral, "foo", "User:alice", "*", OpDescribeConfigs),
			deny(ResourceTopic, PatternLiteral, "foo", "User:alice", "*", OpAlterConfigs)},
			principal: alice, host: hostA, op: OpDescribeConfigs, res: topicFoo, want: true},
		{name: "DESCRIBE does not imply READ", acls: []Binding{allow(ResourceTopic, PatternLiteral, "foo", "User:alice", "*", OpDescribe)},
			principal: alice, host: hostA, op: OpRead, res: topicFoo, want: false},
		{name: "DESCRIBE_CONFIGS does not imply ALTER_CONFIGS", acls: []Binding{allow(ResourceTopic, PatternLiteral, "foo", "User:alice", "*", OpDescribeConfigs)},
			principal: alice, host: hostA, op: OpAlterConfigs, res: topicFoo, want: false},
		{name: "ALTER does not imply DESCRIBE_CONFIGS", acls: []Binding{allow(ResourceTopic, PatternLiteral, "foo", "User:alice", "*", OpAlter)},
			principal: alice, host: hostA, op: OpDescribeConfigs, res: topicFoo, want: false},
		{name: "cluster resource", acls: []Binding{allow(ResourceCluster, PatternLiteral, ClusterName, "User:alice", "*", OpClusterAction)},
			principal: alice, host: hostA, op: OpClusterAction, res: Resource{ResourceCluster, ClusterName}, want: true},
		{name: "transactional id prefixed", acls: []Binding{allow(ResourceTransactionalID, PatternPrefixed, "app-", "User:alice", "*", OpWrite)},
			principal: alice, host: hostA, op: OpWrite, res: Resource{ResourceTransactionalID, "app-1"}, want: true},
		{name: "delegation token", acls: []Binding{allow(ResourceDelegationToken, PatternLiteral, "tok", "User:alice", "*", OpDescribe)},
			principal: alice, host: hostA, op: OpDescribe, res: Resource{ResourceDelegationToken, "tok"}, want: true},
		{name: "invalid binding is ignored", acls: []Binding{allow(ResourceTopic, PatternMatch, "foo", "User:alice", "*", OpRead)},
			cfg: Config{AllowIfNoACL: true}, principal: alice, host: hostA, op: OpRead, res: topicFoo, want: true, rule: RuleDefaultAllow},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := New(tc.acls, tc.cfg).Authorize(tc.principal, tc.host, tc.op, tc.res)
			if d.Allowed != tc.want {
				t.Fatalf("Authorize = %v (rule %d, acl %v), want %v", d.Allowed, d.Rule, d.ACL, tc.want)
			}
			if tc.rule != 0 {
				if d.Rule != tc.rule {
					t.Fatalf("rule = %d, want %d", d.Rule, tc.rule)
				}
			}
		})
	}
}

// TestImplications checks every (granted, requested) pair of operations
// against Kafka's implication rules for ALLOW bindings.
func TestImplications(t *testing.T) {
	ops := []Operation{OpAll, OpRead, OpWrite, OpCreate, OpDelete, OpAlter, OpDescribe, OpClusterAction,
		OpDescribeConfigs, OpAlterConfigs, OpIdempotentWrite, OpCreateTokens, OpDescribeTokens, OpTwoPhaseCommit}
	implied := map[[2]Operation]bool{
		{OpRead, OpDescribe}: true, {OpWrite, OpDescribe}: true, {OpDelete, OpDescribe}: true, {OpAlter, OpDescribe}: true,
		{OpAlterConfigs, OpDescribeConfigs}: true,
	}
	res := Resource{ResourceTopic, "t"}
	for _, granted := range ops {
		a := New([]Binding{allow(ResourceTopic, PatternLiteral, "t", "User:alice", "*", granted)}, Config{})
		for _, op := range ops {
			if op == OpAll {
				continue // ALL is never requested, only granted
			}
			want := granted == OpAll || granted == op || implied[[2]Operation{granted, op}]
			if got := a.Authorize(alice, hostA, op, res).Allowed; got != want {
				t.Errorf("ALLOW %s, request %s: allowed = %v, want %v", granted, op, got, want)
			}
			// A DENY never implies: DENY granted refuses exactly granted (or everything for ALL).
			d := New([]Binding{
				allow(ResourceTopic, PatternLiteral, "t", "User:alice", "*", OpAll),
				deny(ResourceTopic, PatternLiteral, "t", "User:alice", "*", granted),
			}, Config{})
			wantDeny := granted == OpAll || granted == op
			if got := !d.Authorize(alice, hostA, op, res).Allowed; got != wantDeny {
				t.Errorf("DENY %s, request %s: denied = %v, want %v", granted, op, got, wantDeny)
			}
		}
	}
}

func TestPrefixIndexManyLengths(t *testing.T) {
	var acls []Binding
	for i := 1; i <= 5; i++ {
		acls = append(acls, allow(ResourceTopic, PatternPrefixed, "abcdefgh"[:i]+"x", "User:alice", "*", OpRead))
	}
	acls = append(acls, allow(ResourceTopic, PatternPrefixed, "abcd", "User:alice", "*", OpWrite))
	a := New(acls, Config{})
	if !a.Authorize(alice, hostA, OpWrite, Resource{ResourceTopic, "abcdefgh"}).Allowed {
		t.Fatal("prefix abcd should allow WRITE on abcdefgh")
	}
	if a.Authorize(alice, hostA, OpRead, Resource{ResourceTopic, "abcdefgh"}).Allowed {
		t.Fatal("no prefix ending in x covers abcdefgh")
	}
	if !a.Authorize(alice, hostA, OpRead, Resource{ResourceTopic, "abcx-1"}).Allowed {
		t.Fatal("prefix abcx should allow READ on abcx-1")
	}
}

// TestBindingValidate checks CreateAcls' refusals, with Kafka's messages
// where Kafka refuses the binding itself (the principal and host checks
// are this package's: Kafka fails such a binding later, less clearly).
func TestBindingValidate(t *testing.T) {
	good := allow(ResourceTopic, PatternLiteral, "foo", "User:alice", "*", OpRead)
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]struct {
		mutate func(*Binding)
		want   string // Kafka's message; empty: any
	}{
		"resource ANY":       {func(b *Binding) { b.Pattern.Type = ResourceAny }, "Invalid resourceType ANY"},
		"resource UNKNOWN":   {func(b *Binding) { b.Pattern.Type = ResourceUnknown }, "Invalid resourceType UNKNOWN"},
		"resource 42":        {func(b *Binding) { b.Pattern.Type = 42 }, ""},
		"pattern MATCH":      {func(b *Binding) { b.Pattern.PatternType = PatternMatch }, "Invalid patternType MATCH"},
		"pattern ANY":        {func(b *Binding) { b.Pattern.PatternType = PatternAny }, "Invalid patternType ANY"},
		"operation ANY":      {func(b *Binding) { b.Entry.Operation = OpAny }, "Invalid operation ANY"},
		"operation 99":       {func(b *Binding) { b.Entry.Operation = 99 }, ""},
		"permission ANY":     {func(b *Binding) { b.Entry.Permission = PermissionAny }, "Invalid permissionType ANY"},
		"empty name":         {func(b *Binding) { b.Pattern.Name = "" }, "Invalid empty resource name"},
		"empty name, ANY":    {func(b *Binding) { b.Pattern.Name, b.Pattern.Type = "", ResourceAny }, "Invalid empty resource name"},
		"principal no colon": {func(b *Binding) { b.Entry.Principal = "alice" }, ""},
		"principal no name":  {func(b *Binding) { b.Entry.Principal = "User:" }, ""},
		"empty host":         {func(b *Binding) { b.Entry.Host = "" }, ""},
		"cluster wrong name": {func(b *Binding) { b.Pattern = Pattern{ResourceCluster, "c", PatternLiteral} }, "The only valid name for the CLUSTER resource is kafka-cluster"},
		"cluster no name":    {func(b *Binding) { b.Pattern = Pattern{ResourceCluster, "", PatternPrefixed} }, "The only valid name for the CLUSTER resource is kafka-cluster"},
	} {
		b := good
		c.mutate(&b)
		err := b.Validate()
		if err == nil || (c.want != "" && err.Error() != c.want) {
			t.Errorf("%s: Validate(%v) = %v, want %q", name, b, err, c.want)
		}
	}
}

func ptr(s string) *string { return &s }

func TestFilter(t *testing.T) {
	lit := allow(ResourceTopic, PatternLiteral, "foo", "User:alice", hostA, OpRead)
	pre := allow(ResourceTopic, PatternPrefixed, "fo", "User:alice", "*", OpRead)
	wild := deny(ResourceTopic, PatternLiteral, "*", "User:bob", "*", OpWrite)
	grp := allow(ResourceGroup, PatternLiteral, "foo", "User:alice", "*", OpRead)
	all := []Binding{lit, pre, wild, grp}
	anyFilter := Filter{ResourceType: ResourceAny, PatternType: PatternAny, Operation: OpAny, Permission: PermissionAny}
	for _, tc := range []struct {
		name string
		f    func(f *Filter)
		want []Binding
	}{
		{"match all", func(f *Filter) {}, all},
		{"resource type", func(f *Filter) { f.ResourceType = ResourceGroup }, []Binding{grp}},
		{"ANY pattern with a name is exact", func(f *Filter) { f.Name = ptr("foo") }, []Binding{lit, grp}},
		{"ANY pattern does not expand the wildcard", func(f *Filter) { f.Name = ptr("*") }, []Binding{wild}},
		{"LITERAL", func(f *Filter) { f.PatternType = PatternLiteral }, []Binding{lit, wild, grp}},
		{"LITERAL name", func(f *Filter) { f.PatternType = PatternLiteral; f.Name = ptr("foo") }, []Binding{lit, grp}},
		{"PREFIXED name is exact", func(f *Filter) { f.PatternType = PatternPrefixed; f.Name = ptr("foo") }, nil},
		{"PREFIXED", func(f *Filter) { f.PatternType = PatternPrefixed; f.Name = ptr("fo") }, []Binding{pre}},
		{"MATCH topic foo", func(f *Filter) { f.ResourceType = ResourceTopic; f.PatternType = PatternMatch; f.Name = ptr("foo") }, []Binding{lit, pre, wild}},
		{"MATCH topic fob", func(f *Filter) { f.ResourceType = ResourceTopic; f.PatternType = PatternMatch; f.Name = ptr("fob") }, []Binding{pre, wild}},
		{"MATCH topic f", func(f *Filter) { f.ResourceType = ResourceTopic; f.PatternType = PatternMatch; f.Name = ptr("f") }, []Binding{wild}},
		{"MATCH without name", func(f *Filter) { f.PatternType = PatternMatch }, all},
		{"principal", func(f *Filter) { f.Principal = ptr("User:bob") }, []Binding{wild}},
		{"host", func(f *Filter) { f.Host = ptr(hostA) }, []Binding{lit}},
		{"host star is exact", func(f *Filter) { f.Host = ptr("*") }, []Binding{pre, wild, grp}},
		{"operation", func(f *Filter) { f.Operation = OpWrite }, []Binding{wild}},
		{"permission", func(f *Filter) { f.Permission = PermissionAllow }, []Binding{lit, pre, grp}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := anyFilter
			tc.f(&f)
			if err := f.Validate(); err != nil {
				t.Fatal(err)
			}
			var got []Binding
			for _, b := range all {
				if f.Matches(b) {
					got = append(got, b)
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("matched %v\nwant %v", got, tc.want)
			}
		})
	}
	bad := anyFilter
	bad.Operation = OpUnknown
	if bad.Validate() == nil {
		t.Fatal("a filter with operation UNKNOWN must be refused")
	}
}

func TestParse(t *testing.T) {
	if rt, err := ParseResourceType("transactional-id"); err != nil || rt != ResourceTransactionalID {
		t.Fatalf("ParseResourceType = %v, %v", rt, err)
	}
	if op, err := ParseOperation("describe_configs"); err != nil || op != OpDescribeConfigs {
		t.Fatalf("ParseOperation = %v, %v", op, err)
	}
	if _, err := ParseOperation("UNKNOWN"); err == nil {
		t.Fatal("UNKNOWN must not parse")
	}
	su, err := ParseSuperUsers(" User:admin ;User:ops;; ")
	if err != nil || fmt.Sprint(su) != "[User:admin User:ops]" {
		t.Fatalf("ParseSuperUsers = %v, %v", su, err)
	}
	if _, err := ParseSuperUsers("admin"); err == nil {
		t.Fatal("a super user without a type must be refused")
	}
	p, err := ParsePrincipal("User:CN=a:b")
	if err != nil || p.Type != "User" || p.Name != "CN=a:b" {
		t.Fatalf("ParsePrincipal = %v, %v", p, err)
	}
}

func TestAuditMessage(t *testing.T) {
	b := deny(ResourceTopic, PatternLiteral, "foo", "User:alice", "*", OpRead)
	d := New([]Binding{b}, Config{}).Authorize(alice, hostA, OpRead, Resource{ResourceTopic, "foo"})
	got := AuditMessage(alice, hostA, OpRead, Resource{ResourceTopic, "foo"}, "Fetch", d)
	want := "Principal = User:alice is Denied operation = READ from host = 10.0.0.1 on resource = Topic:LITERAL:foo for request = Fetch based on rule MatchingAcl(acl=" + b.String() + ")"
	if got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	d = New(nil, Config{}).Authorize(alice, hostA, OpWrite, Resource{ResourceCluster, ClusterName})
	if got := AuditMessage(alice, hostA, OpWrite, Resource{ResourceCluster, ClusterName}, "Produce", d); !strings.HasSuffix(got, "Cluster:LITERAL:kafka-cluster for request = Produce based on rule DefaultDeny") {
		t.Fatal(got)
	}
}
