package broker

// AlterUserScramCredentials (key 51), v0: sets or deletes users' SCRAM
// credentials in the metadata quorum. The client sends a salted password,
// never the password; this node derives the stored and server keys from
// it (the quorum stores only those), then the active controller decides
// with Kafka's rules. A node that is not the active controller relays the
// request to it unchanged.

import (
	"context"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoalmq/shoal/raftmeta"
	"github.com/shoalmq/shoal/sasl"
)

func (s *Server) handleAlterUserScramCredentials(ctx context.Context, _ *reqCtx, req *kmsg.AlterUserSCRAMCredentialsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.AlterUserSCRAMCredentialsResponse)
	// A credential that cannot be derived fails its user before the
	// controller sees any of that user's alterations, as a user with any
	// failed alteration is altered not at all.
	failed := map[string]*raftmeta.Error{}
	var order []string
	seen := map[string]bool{}
	note := func(user string) {
		if !seen[user] {
			seen[user] = true
			order = append(order, user)
		}
	}
	var upserts []raftmeta.ScramUpsertion
	for _, u := range req.Upsertions {
		note(u.Name)
		cred, err := sasl.ScramCredentialFromSaltedPassword(sasl.ScramMechanism(u.Mechanism), u.Salt, u.SaltedPassword, int(u.Iterations))
		if err != nil {
			code := kerr.UnacceptableCredential
			if u.Mechanism != int8(sasl.ScramSHA256) && u.Mechanism != int8(sasl.ScramSHA512) {
				code = kerr.UnsupportedSaslMechanism
			}
			if failed[u.Name] == nil {
				failed[u.Name] = &raftmeta.Error{Code: code, Message: err.Error()}
			}
			continue
		}
		upserts = append(upserts, raftmeta.ScramUpsertion{User: u.Name, Credential: raftmeta.ScramCredential{
			Mechanism: u.Mechanism, Salt: cred.Salt, StoredKey: cred.StoredKey, ServerKey: cred.ServerKey, Iterations: cred.Iterations,
		}})
	}
	var dels []raftmeta.ScramDeletion
	for _, d := range req.Deletions {
		note(d.Name)
		dels = append(dels, raftmeta.ScramDeletion{User: d.Name, Mechanism: d.Mechanism})
	}
	dels = slices.DeleteFunc(dels, func(d raftmeta.ScramDeletion) bool { return failed[d.User] != nil })
	upserts = slices.DeleteFunc(upserts, func(u raftmeta.ScramUpsertion) bool { return failed[u.User] != nil })
	results := map[string]error{}
	if len(dels)+len(upserts) > 0 {
		for _, r := range s.ctrl.AlterScramCredentials(ctx, dels, upserts) {
			results[r.User] = r.Err
		}
	}
	for _, user := range order {
		var err error = results[user]
		if f := failed[user]; f != nil {
			err = f
		}
		res := kmsg.NewAlterUserSCRAMCredentialsResponseResult()
		res.User, res.ErrorCode, res.ErrorMessage = user, errorCode(err), errorMessage(err)
		resp.Results = append(resp.Results, res)
	}
	return resp, nil
}
