package cluster

import (
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"maps"
	"slices"
)

// VotersClusterID derives a cluster id from controller.quorum.voters.
// Every voter formats its own metadata log, so voters started from the same
// configuration must agree on the id without talking.
func VotersClusterID(voters map[int32]string) string {
	h := sha256.New()
	for _, id := range slices.Sorted(maps.Keys(voters)) {
		fmt.Fprintf(h, "%d@%s,", id, voters[id])
	}
	return base64.RawURLEncoding.EncodeToString(h.Sum(nil)[:16])
}
