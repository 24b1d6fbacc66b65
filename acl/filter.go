package acl

import "fmt"

// Filter selects bindings for DescribeAcls and DeleteAcls with the
// semantics of Kafka's AclBindingFilter. A nil string field matches
// anything; ResourceAny, OpAny and PermissionAny match any value.
//
// The pattern type decides how Name is compared:
//   - PatternAny: any pattern type, name equal to Name;
//   - PatternLiteral or PatternPrefixed: that pattern type, name equal;
//   - PatternMatch: every binding that would apply to a resource named
//     Name: LITERAL with that name or the wildcard, and PREFIXED whose name
//     is a prefix of it.
type Filter struct {
	ResourceType ResourceType
	Name         *string
	PatternType  PatternType
	Principal    *string
	Host         *string
	Operation    Operation
	Permission   Permission
}

// Matches reports whether the filter selects b.
func (f Filter) Matches(b Binding) bool {
	return f.matchesPattern(b.Pattern) && f.matchesEntry(b.Entry)
}

func (f Filter) matchesPattern(p Pattern) bool {
	if f.ResourceType != ResourceAny && f.ResourceType != p.Type {
		return false
	}
	if f.PatternType != PatternAny && f.PatternType != PatternMatch && f.PatternType != p.PatternType {
		return false
	}
	if f.Name == nil {
		return true
	}
	name := *f.Name
	if f.PatternType == PatternAny || f.PatternType == p.PatternType {
		return name == p.Name
	}
	// PatternMatch.
	switch p.PatternType {
	case PatternLiteral:
		return name == p.Name || p.Name == Wildcard
	case PatternPrefixed:
		return len(name) >= len(p.Name) && name[:len(p.Name)] == p.Name
	}
	return false
}

func (f Filter) matchesEntry(e Entry) bool {
	return (f.Principal == nil || *f.Principal == e.Principal) &&
		(f.Host == nil || *f.Host == e.Host) &&
		(f.Operation == OpAny || f.Operation == e.Operation) &&
		(f.Permission == PermissionAny || f.Permission == e.Permission)
}

// Validate checks a filter as Kafka does before DescribeAcls or DeleteAcls
// use it: every enum must be known (UNKNOWN is refused), which keeps a
// client that sends a newer value from matching, or deleting, everything.
func (f Filter) Validate() error {
	if _, ok := resourceNames[f.ResourceType]; !ok || f.ResourceType == ResourceUnknown {
		return fmt.Errorf("invalid resourceType %s in filter", f.ResourceType)
	}
	if _, ok := patternNames[f.PatternType]; !ok || f.PatternType == PatternUnknown {
		return fmt.Errorf("invalid patternType %s in filter", f.PatternType)
	}
	if _, ok := operationNames[f.Operation]; !ok || f.Operation == OpUnknown {
		return fmt.Errorf("invalid operation %s in filter", f.Operation)
	}
	if _, ok := permissionNames[f.Permission]; !ok || f.Permission == PermissionUnknown {
		return fmt.Errorf("invalid permissionType %s in filter", f.Permission)
	}
	return nil
}
