package broker

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestDescribeLogDirsSizeUnknown: a log dir whose file system cannot be
// asked for its size (here, the dir was removed under the broker) is
// answered with an error and no sizes, as Kafka answers the exception
// reading its file store, not as a dir with no space at all.
func TestDescribeLogDirsSizeUnknown(t *testing.T) {
	gone := filepath.Join(t.TempDir(), "gone")
	s := startTestServer(t, "log.dirs="+t.TempDir()+","+gone)
	if err := os.RemoveAll(gone); err != nil {
		t.Fatal(err)
	}
	// Straight to the broker: the client's merging of answers from many
	// brokers would drop the sizes.
	kr, err := testClient(t, s).Broker(int(s.cfg.NodeID)).Request(testContext(t, 10*time.Second), kmsg.NewPtrDescribeLogDirsRequest())
	if err != nil {
		t.Fatal(err)
	}
	resp := kr.(*kmsg.DescribeLogDirsResponse)
	if len(resp.Dirs) != 2 {
		t.Fatalf("dirs: %+v", resp.Dirs)
	}
	for _, d := range resp.Dirs {
		if d.Dir != gone {
			if d.ErrorCode != 0 || d.TotalBytes <= 0 {
				t.Errorf("%s: %+v", d.Dir, d)
			}
			continue
		}
		if d.ErrorCode != kerr.UnknownServerError.Code || d.TotalBytes != -1 || d.UsableBytes != -1 || len(d.Topics) != 0 {
			t.Errorf("removed dir %s: %+v", d.Dir, d)
		}
	}
}
