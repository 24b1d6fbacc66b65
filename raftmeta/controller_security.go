package raftmeta

import (
	"context"

	"github.com/shoalmq/shoal/acl"
)

// CreateACLs decides and proposes CreateAcls. A proposal failure fails
// every binding that had none.
func (c *Controller) CreateACLs(ctx context.Context, bindings []acl.Binding) []CreateACLsResult {
	return decideEach(ctx, c, len(bindings), false, func(img *Image) ([]Record, []CreateACLsResult) {
		return c.d.CreateACLs(img, bindings)
	}, func(r *CreateACLsResult) *error { return &r.Err })
}

// DeleteACLs decides and proposes DeleteAcls.
func (c *Controller) DeleteACLs(ctx context.Context, filters []acl.Filter) []DeleteACLsResult {
	img, err := c.begin(ctx)
	if err != nil {
		return failAll(len(filters), func(r *DeleteACLsResult) { r.Err = err })
	}
	defer c.mu.Unlock()
	recs, results := c.d.DeleteACLs(img, filters)
	c.proposeOr(ctx, img, recs, func(err error) {
		for i := range results {
			if results[i].Err == nil {
				results[i] = DeleteACLsResult{Err: err}
			}
		}
	})
	return results
}

// AlterScramCredentials decides and proposes AlterUserScramCredentials.
func (c *Controller) AlterScramCredentials(ctx context.Context, deletions []ScramDeletion, upsertions []ScramUpsertion) []ScramResult {
	img, err := c.begin(ctx)
	if err != nil {
		var results []ScramResult
		seen := map[string]bool{}
		for _, u := range append(deletionUsers(deletions), upsertionUsers(upsertions)...) {
			if !seen[u] {
				seen[u] = true
				results = append(results, ScramResult{User: u, Err: err})
			}
		}
		return results
	}
	defer c.mu.Unlock()
	recs, results := c.d.AlterScramCredentials(img, deletions, upsertions)
	proposeResults(ctx, c, img, recs, results, func(r *ScramResult) *error { return &r.Err })
	return results
}

func deletionUsers(ds []ScramDeletion) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.User
	}
	return out
}

func upsertionUsers(us []ScramUpsertion) []string {
	out := make([]string, len(us))
	for i, u := range us {
		out[i] = u.User
	}
	return out
}
