package broker

// AlterUserScramCredentials (key 51), v0: sets or deletes users' SCRAM
// credentials in the metadata quorum. The client sends a salted password,
// never the password; this node derives the stored and server keys from
// it (the quorum stores only those), then the active controller decides
// with Kafka's rules (raftmeta's Decider.AlterScramCredentials: one
// alteration per user and request). A node that is not the active
// controller relays the request to it unchanged.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoalmq/shoal/raftmeta"
	"github.com/shoalmq/shoal/sasl"
)

func (s *Server) handleAlterUserScramCredentials(ctx context.Context, _ *reqCtx, req *kmsg.AlterUserSCRAMCredentialsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.AlterUserSCRAMCredentialsResponse)
	dels := make([]raftmeta.ScramDeletion, len(req.Deletions))
	for i, d := range req.Deletions {
		dels[i] = raftmeta.ScramDeletion{User: d.Name, Mechanism: d.Mechanism}
	}
	upserts := make([]raftmeta.ScramUpsertion, len(req.Upsertions))
	for i, u := range req.Upsertions {
		// A credential that cannot be derived still goes to the
		// controller, which reports why only after the checks Kafka makes
		// first, and only if this is the user's one alteration.
		up := raftmeta.ScramUpsertion{User: u.Name, Credential: raftmeta.ScramCredential{Mechanism: u.Mechanism, Salt: u.Salt, Iterations: u.Iterations}}
		cred, err := sasl.ScramCredentialFromSaltedPassword(sasl.ScramMechanism(u.Mechanism), u.Salt, u.SaltedPassword, int(u.Iterations))
		if err != nil {
			up.Invalid = err.Error()
		} else {
			up.Credential.StoredKey, up.Credential.ServerKey = cred.StoredKey, cred.ServerKey
		}
		upserts[i] = up
	}
	if len(dels)+len(upserts) == 0 {
		return resp, nil
	}
	for _, r := range s.ctrl.AlterScramCredentials(ctx, dels, upserts) {
		res := kmsg.NewAlterUserSCRAMCredentialsResponseResult()
		res.User, res.ErrorCode, res.ErrorMessage = r.User, errorCode(r.Err), errorMessage(r.Err)
		resp.Results = append(resp.Results, res)
	}
	return resp, nil
}
