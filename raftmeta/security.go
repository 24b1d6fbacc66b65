package raftmeta

import (
	"maps"
	"slices"

	"github.com/shoalmq/shoal/acl"
	"github.com/twmb/franz-go/pkg/kerr"
)

// Security metadata: ACL bindings and SCRAM credentials, as Kafka's
// AccessControlEntryRecord / RemoveAccessControlEntryRecord and
// UserScramCredentialRecord / RemoveUserScramCredentialRecord keep them in
// the metadata log. A credential is stored salted (salt, stored key,
// server key, iterations; RFC 5802): never the password.

// CreateACL adds one ACL binding under a controller-chosen id.
type CreateACL struct {
	ID      [16]byte
	Binding acl.Binding
}

// DeleteACL removes the ACL with ID.
type DeleteACL struct {
	ID [16]byte
}

// UpsertScramCredential sets a user's credential for one mechanism.
type UpsertScramCredential struct {
	User       string
	Credential ScramCredential
}

// DeleteScramCredential removes a user's credential for one mechanism.
type DeleteScramCredential struct {
	User      string
	Mechanism int8
}

// ScramCredential is a stored SCRAM credential. Mechanism takes Kafka's
// ScramMechanism values: 1 SCRAM-SHA-256, 2 SCRAM-SHA-512.
type ScramCredential struct {
	Mechanism  int8
	Salt       []byte
	StoredKey  []byte
	ServerKey  []byte
	Iterations int32
}

// ScramKey identifies a credential in the image.
type ScramKey struct {
	User      string
	Mechanism int8
}

// Kafka's SCRAM mechanisms and iteration bounds (ScramMechanism).
const (
	ScramSHA256        int8 = 1
	ScramSHA512        int8 = 2
	MinScramIterations      = 4096
	MaxScramIterations      = 16384
)

func (*CreateACL) recordType() recordType             { return typeCreateACL }
func (*DeleteACL) recordType() recordType             { return typeDeleteACL }
func (*UpsertScramCredential) recordType() recordType { return typeUpsertScramCredential }
func (*DeleteScramCredential) recordType() recordType { return typeDeleteScramCredential }

func (r *CreateACL) encode(e *encoder) {
	e.uuid(r.ID)
	encodeBinding(e, r.Binding)
}

func (r *DeleteACL) encode(e *encoder) { e.uuid(r.ID) }

func (r *UpsertScramCredential) encode(e *encoder) {
	e.str(r.User)
	encodeScram(e, r.Credential)
}

func (r *DeleteScramCredential) encode(e *encoder) {
	e.str(r.User)
	e.i32(int32(r.Mechanism))
}

func encodeBinding(e *encoder, b acl.Binding) {
	e.i32(int32(b.Pattern.Type))
	e.str(b.Pattern.Name)
	e.i32(int32(b.Pattern.PatternType))
	e.str(b.Entry.Principal)
	e.str(b.Entry.Host)
	e.i32(int32(b.Entry.Operation))
	e.i32(int32(b.Entry.Permission))
}

func decodeBinding(d *decoder) acl.Binding {
	return acl.Binding{
		Pattern: acl.Pattern{Type: acl.ResourceType(d.i8()), Name: d.str(), PatternType: acl.PatternType(d.i8())},
		Entry:   acl.Entry{Principal: d.str(), Host: d.str(), Operation: acl.Operation(d.i8()), Permission: acl.Permission(d.i8())},
	}
}

func encodeScram(e *encoder, c ScramCredential) {
	e.i32(int32(c.Mechanism))
	e.str(string(c.Salt))
	e.str(string(c.StoredKey))
	e.str(string(c.ServerKey))
	e.i32(c.Iterations)
}

func decodeScram(d *decoder) ScramCredential {
	return ScramCredential{Mechanism: d.i8(), Salt: d.bytes(), StoredKey: d.bytes(), ServerKey: d.bytes(), Iterations: d.i32()}
}

// i8 reads a value written with i32 that must fit a Kafka int8 enum.
func (d *decoder) i8() int8 { return narrow[int8](d, d.i32()) }

func (d *decoder) bytes() []byte {
	s := d.str()
	if s == "" {
		return nil
	}
	return []byte(s)
}

// decodeSecurityRecord decodes the security record types; ok is false for
// any other type.
func decodeSecurityRecord(typ recordType, bd *decoder) (Record, bool) {
	switch typ {
	case typeCreateACL:
		return &CreateACL{ID: bd.uuid(), Binding: decodeBinding(bd)}, true
	case typeDeleteACL:
		return &DeleteACL{ID: bd.uuid()}, true
	case typeUpsertScramCredential:
		return &UpsertScramCredential{User: bd.str(), Credential: decodeScram(bd)}, true
	case typeDeleteScramCredential:
		return &DeleteScramCredential{User: bd.str(), Mechanism: bd.i8()}, true
	}
	return nil, false
}

// applySecurity applies a security record to the image being built; ok is
// false for any other record.
func (b *imageBuilder) applySecurity(r Record) (ok bool, err error) {
	switch r := r.(type) {
	case *CreateACL:
		if r.ID == ([16]byte{}) {
			return true, errorf(kerr.InvalidRequest, "ACL has the zero id")
		}
		if _, dup := b.next.ACLs[r.ID]; dup {
			return true, errorf(kerr.InvalidRequest, "ACL id %x is in use", r.ID)
		}
		if err := r.Binding.Validate(); err != nil {
			return true, errorf(kerr.InvalidRequest, "%v", err)
		}
		b.acls()[r.ID] = r.Binding
	case *DeleteACL:
		if _, found := b.next.ACLs[r.ID]; !found {
			return true, errorf(kerr.ResourceNotFound, "no ACL with id %x", r.ID)
		}
		delete(b.acls(), r.ID)
	case *UpsertScramCredential:
		if err := validScram(r.User, r.Credential); err != nil {
			return true, err
		}
		c := r.Credential
		c.Salt, c.StoredKey, c.ServerKey = slices.Clone(c.Salt), slices.Clone(c.StoredKey), slices.Clone(c.ServerKey)
		b.scram()[ScramKey{r.User, c.Mechanism}] = c
	case *DeleteScramCredential:
		k := ScramKey{r.User, r.Mechanism}
		if _, found := b.next.Scram[k]; !found {
			return true, errorf(kerr.ResourceNotFound, "Attempt to delete a user credential that does not exist")
		}
		delete(b.scram(), k)
	default:
		return false, nil
	}
	return true, nil
}

func (b *imageBuilder) acls() map[[16]byte]acl.Binding {
	return own(&b.next.ACLs, &b.ownACLs)
}

func (b *imageBuilder) scram() map[ScramKey]ScramCredential {
	return own(&b.next.Scram, &b.ownScram)
}

// validScram checks a credential as Kafka's ScramControlManager does.
func validScram(user string, c ScramCredential) *Error {
	if err := validScramAlteration(user, c.Mechanism, c.Iterations); err != nil {
		return err
	}
	switch {
	case len(c.Salt) == 0:
		return errorf(kerr.UnacceptableCredential, "Salt must not be empty")
	case len(c.StoredKey) == 0 || len(c.ServerKey) == 0:
		return errorf(kerr.UnacceptableCredential, "Stored key and server key must not be empty")
	}
	return nil
}

// validScramUser checks the user name and mechanism of an alteration,
// with Kafka's messages (clients show them).
func validScramUser(user string, mechanism int8) *Error {
	switch {
	case user == "":
		return errorf(kerr.UnacceptableCredential, "Username must not be empty")
	case mechanism != ScramSHA256 && mechanism != ScramSHA512:
		return errorf(kerr.UnsupportedSaslMechanism, "Unknown SCRAM mechanism")
	}
	return nil
}

// validScramAlteration is validScramUser and the iteration bounds, the
// checks Kafka makes of an upsertion before it derives the credential.
func validScramAlteration(user string, mechanism int8, iterations int32) *Error {
	if err := validScramUser(user, mechanism); err != nil {
		return err
	}
	switch {
	case iterations < MinScramIterations:
		return errorf(kerr.UnacceptableCredential, "Too few iterations")
	case iterations > MaxScramIterations:
		return errorf(kerr.UnacceptableCredential, "Too many iterations")
	}
	return nil
}

// ACLBindings returns the bindings that filter selects, ordered by id so
// answers are stable.
func (img *Image) ACLBindings(f acl.Filter) []ACLEntry {
	var out []ACLEntry
	for _, id := range slices.SortedFunc(maps.Keys(img.ACLs), compareIDs) {
		if b := img.ACLs[id]; f.Matches(b) {
			out = append(out, ACLEntry{ID: id, Binding: b})
		}
	}
	return out
}

func compareIDs(a, b [16]byte) int { return slices.Compare(a[:], b[:]) }

// Authorizer returns an authorizer over the image's ACLs.
func (img *Image) Authorizer(cfg acl.Config) *acl.Authorizer {
	return acl.New(slices.Collect(maps.Values(img.ACLs)), cfg)
}

// ScramCredential returns a user's credential for mechanism.
func (img *Image) ScramCredential(user string, mechanism int8) (ScramCredential, bool) {
	c, ok := img.Scram[ScramKey{user, mechanism}]
	return c, ok
}

// ScramUsers returns, per user with at least one credential, the
// credentials' mechanisms and iterations in mechanism order, as
// DescribeUserScramCredentials answers.
func (img *Image) ScramUsers() map[string][]ScramCredential {
	out := map[string][]ScramCredential{}
	for k, c := range img.Scram {
		out[k.User] = append(out[k.User], ScramCredential{Mechanism: c.Mechanism, Iterations: c.Iterations})
	}
	for _, cs := range out {
		slices.SortFunc(cs, func(a, b ScramCredential) int { return int(a.Mechanism) - int(b.Mechanism) })
	}
	return out
}

// ACLEntry is a binding with its id.
type ACLEntry struct {
	ID      [16]byte
	Binding acl.Binding
}

// CreateACLsResult is the outcome of one binding of CreateAcls.
type CreateACLsResult struct {
	Err error
}

// CreateACLs decides CreateAcls. Each binding is validated on its own; a
// binding equal to one that exists (or to an earlier one in the request)
// succeeds without a record, as Kafka's AclControlManager does.
func (d *Decider) CreateACLs(img *Image, bindings []acl.Binding) ([]Record, []CreateACLsResult) {
	existing := map[acl.Binding]bool{}
	for _, b := range img.ACLs {
		existing[b] = true
	}
	used := map[[16]byte]bool{}
	var recs []Record
	results := make([]CreateACLsResult, len(bindings))
	for i, b := range bindings {
		if err := b.Validate(); err != nil {
			results[i].Err = errorf(kerr.InvalidRequest, "%v", err)
			continue
		}
		if existing[b] {
			continue
		}
		existing[b] = true
		id := d.newACLID()
		for id == ([16]byte{}) || used[id] || img.ACLs[id] != (acl.Binding{}) {
			id = d.newACLID()
		}
		used[id] = true
		recs = append(recs, &CreateACL{ID: id, Binding: b})
	}
	return recs, results
}

func (d *Decider) newACLID() [16]byte {
	if d.NewACLID != nil {
		return d.NewACLID()
	}
	return d.NewTopicID()
}

// DeleteACLsResult is the outcome of one filter of DeleteAcls: the
// bindings it matched (all deleted), or an error.
type DeleteACLsResult struct {
	Matched []ACLEntry
	Err     error
}

// DeleteACLs decides DeleteAcls. A binding matched by several filters is
// deleted once but reported under each.
func (d *Decider) DeleteACLs(img *Image, filters []acl.Filter) ([]Record, []DeleteACLsResult) {
	deleted := map[[16]byte]bool{}
	var recs []Record
	results := make([]DeleteACLsResult, len(filters))
	for i, f := range filters {
		if err := f.Validate(); err != nil {
			results[i].Err = errorf(kerr.InvalidRequest, "%v", err)
			continue
		}
		results[i].Matched = img.ACLBindings(f)
		for _, e := range results[i].Matched {
			if !deleted[e.ID] {
				deleted[e.ID] = true
				recs = append(recs, &DeleteACL{ID: e.ID})
			}
		}
	}
	return recs, results
}

// ScramDeletion names one credential to delete.
type ScramDeletion struct {
	User      string
	Mechanism int8
}

// ScramUpsertion is one credential to set, already derived from the salted
// password the client sent (the front end does the derivation; see
// sasl.ScramCredentialFromSaltedPassword).
type ScramUpsertion struct {
	User       string
	Credential ScramCredential
	// Invalid is why the front end could not derive the credential
	// (Credential then holds only the mechanism, iterations and salt). It
	// fails the upsertion with UNACCEPTABLE_CREDENTIAL once the user name,
	// mechanism and iterations have passed, the order Kafka checks in.
	Invalid string
}

func (up ScramUpsertion) check() *Error {
	c := up.Credential
	if err := validScramAlteration(up.User, c.Mechanism, c.Iterations); err != nil {
		return err
	}
	if up.Invalid != "" {
		return errorf(kerr.UnacceptableCredential, "%s", up.Invalid)
	}
	return validScram(up.User, c)
}

// ScramResult is the outcome for one user of AlterUserScramCredentials.
type ScramResult struct {
	User string
	Err  error
}

// AlterScramCredentials decides AlterUserScramCredentials with the rules
// of Kafka's ScramControlManager: a request alters each user at most once.
// The alterations are taken in order, deletions first; a user's first one
// is checked (UNACCEPTABLE_CREDENTIAL, UNSUPPORTED_SASL_MECHANISM, or
// RESOURCE_NOT_FOUND for a deletion of a credential that does not exist)
// and a later one for the same user, whatever its mechanism, fails that
// user with DUPLICATE_RESOURCE, unless the first had already failed it.
// A failed user gets no record. Results come one per user, in order of
// first appearance.
func (d *Decider) AlterScramCredentials(img *Image, deletions []ScramDeletion, upsertions []ScramUpsertion) ([]Record, []ScramResult) {
	var order []string
	errs := map[string]*Error{}
	alteration := map[string]Record{}
	alter := func(user string, check func() *Error, rec Record) {
		if err, seen := errs[user]; seen {
			if err == nil {
				errs[user] = errorf(kerr.DuplicateResource, "A user credential cannot be altered twice in the same request")
			}
			return
		}
		order = append(order, user)
		errs[user] = check()
		alteration[user] = rec
	}
	for _, del := range deletions {
		alter(del.User, func() *Error {
			if err := validScramUser(del.User, del.Mechanism); err != nil {
				return err
			}
			if _, ok := img.ScramCredential(del.User, del.Mechanism); !ok {
				return errorf(kerr.ResourceNotFound, "Attempt to delete a user credential that does not exist")
			}
			return nil
		}, &DeleteScramCredential{User: del.User, Mechanism: del.Mechanism})
	}
	for _, up := range upsertions {
		alter(up.User, up.check, &UpsertScramCredential{User: up.User, Credential: up.Credential})
	}
	var recs []Record
	results := make([]ScramResult, len(order))
	for i, u := range order {
		results[i].User = u
		if err := errs[u]; err != nil {
			results[i].Err = err
			continue
		}
		recs = append(recs, alteration[u])
	}
	return recs, results
}

// encodeSecurity writes the ACLs (by id) and credentials (by user, then
// mechanism) of a snapshot.
func encodeSecurity(e *encoder, img *Image) {
	encodeList(e, slices.SortedFunc(maps.Keys(img.ACLs), compareIDs), func(e *encoder, id [16]byte) {
		e.uuid(id)
		encodeBinding(e, img.ACLs[id])
	})
	keys := slices.SortedFunc(maps.Keys(img.Scram), func(a, b ScramKey) int {
		if a.User != b.User {
			if a.User < b.User {
				return -1
			}
			return 1
		}
		return int(a.Mechanism) - int(b.Mechanism)
	})
	encodeList(e, keys, func(e *encoder, k ScramKey) {
		e.str(k.User)
		encodeScram(e, img.Scram[k])
	})
}

func decodeSecurity(d *decoder, img *Image) {
	for range d.count() {
		id := d.uuid()
		img.ACLs[id] = decodeBinding(d)
	}
	for range d.count() {
		user := d.str()
		c := decodeScram(d)
		img.Scram[ScramKey{user, c.Mechanism}] = c
	}
}
