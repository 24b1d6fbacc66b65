package broker

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/shoalmq/shoal/log"
)

// A new leader whose high watermark has not caught up answers
// OFFSET_NOT_AVAILABLE from v5 on and LEADER_NOT_AVAILABLE before, the
// codes each client version retries; other errors keep their codes.
func TestListOffsetsCodeByVersion(t *testing.T) {
	for _, c := range []struct {
		err     error
		version int16
		want    int16
	}{
		{nil, 1, 0},
		{kerr.OffsetNotAvailable, 1, kerr.LeaderNotAvailable.Code},
		{kerr.OffsetNotAvailable, 4, kerr.LeaderNotAvailable.Code},
		{kerr.OffsetNotAvailable, 5, kerr.OffsetNotAvailable.Code},
		{kerr.OffsetNotAvailable, 11, kerr.OffsetNotAvailable.Code},
		{log.ErrStorage, 1, kerr.KafkaStorageError.Code},
	} {
		if got := listOffsetsCode(c.err, c.version); got != c.want {
			t.Errorf("%v at v%d: code %d, want %d", c.err, c.version, got, c.want)
		}
	}
}
