package acl

import (
	"fmt"
	"testing"
)

// BenchmarkAuthorize measures one check against 10,000 bindings: literal
// ACLs for 5,000 topics, 4,000 prefixed ones of varied lengths, and a
// wildcard, the shape of a large multi-tenant cluster.
func BenchmarkAuthorize(b *testing.B) {
	var acls []Binding
	for i := range 5000 {
		acls = append(acls, allow(ResourceTopic, PatternLiteral, fmt.Sprintf("topic-%d", i), fmt.Sprintf("User:u%d", i%100), "*", OpRead))
	}
	for i := range 4000 {
		acls = append(acls, allow(ResourceTopic, PatternPrefixed, fmt.Sprintf("tenant-%d-", i), fmt.Sprintf("User:u%d", i%100), "*", OpWrite))
	}
	acls = append(acls, deny(ResourceTopic, PatternLiteral, "*", "User:blocked", "*", OpAll))
	a := New(acls, Config{})
	res := Resource{ResourceTopic, "tenant-1234-orders"}
	p := User("u34")
	b.ReportAllocs()
	for b.Loop() {
		if !a.Authorize(p, "10.0.0.1", OpWrite, res).Allowed {
			b.Fatal("denied")
		}
	}
}
