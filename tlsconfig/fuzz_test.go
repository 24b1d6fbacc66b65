package tlsconfig

import "testing"

func FuzzParseMappingRules(f *testing.F) {
	for _, s := range []string{
		`RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/L, DEFAULT`, `DEFAULT`, `RULE:a\/b/c\$d$1/U`, `RULE:(/x/`, `RULE:x/y/,`,
	} {
		f.Add(s, "CN=alice,OU=ServiceUsers,O=Acme")
	}
	f.Fuzz(func(t *testing.T, rules, dn string) {
		rs, err := ParseMappingRules(rules)
		if err != nil {
			return
		}
		if len(rs) == 0 {
			t.Fatal("no error and no rules")
		}
		rs.Apply(dn)
	})
}
