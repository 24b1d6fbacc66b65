package log

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Per-partition files besides segments. Every one of them is replaced
// atomically (temp file, fsync, rename, fsync of the directory), so a crash
// leaves either the old or the new content, never a torn file.
const (
	partitionMetadataFile = "partition.metadata"
	leaderEpochFile       = "leader-epoch-checkpoint"
	offsetsCheckpointFile = "offsets.checkpoint"
	cleanShutdownFile     = ".shoal-clean-shutdown"
	lockFile              = ".lock"
	tmpSuffix             = ".tmp"
	deleteDirSuffix       = "-delete"
)

// writeFileAtomic replaces path with data durably.
func writeFileAtomic(path string, data []byte) error {
	tmp := path + tmpSuffix
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	// A half-written temporary file would hold space on a full disk.
	fail := func(err error) error {
		_ = os.Remove(tmp)
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fail(err)
	}
	if err := f.Close(); err != nil {
		return fail(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fail(err)
	}
	return syncDir(filepath.Dir(path))
}

// syncDir makes creations, renames and removals in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// offsetsCheckpoint is the persisted partition state that is not derivable
// from the segments: where the log logically starts (DeleteRecords and
// retention), how far it is known durable (recovery skips segments wholly
// before it), and the last high watermark.
type offsetsCheckpoint struct {
	LogStartOffset int64
	RecoveryPoint  int64
	HighWatermark  int64
}

func (c offsetsCheckpoint) encode() []byte {
	return fmt.Appendf(nil, "0\nlog-start-offset %d\nrecovery-point %d\nhigh-watermark %d\n",
		c.LogStartOffset, c.RecoveryPoint, c.HighWatermark)
}

func readOffsetsCheckpoint(dir string) (offsetsCheckpoint, bool, error) {
	var c offsetsCheckpoint
	b, err := os.ReadFile(filepath.Join(dir, offsetsCheckpointFile))
	if os.IsNotExist(err) {
		return c, false, nil
	}
	if err != nil {
		return c, false, err
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 4 || lines[0] != "0" {
		return c, false, fmt.Errorf("malformed %s", offsetsCheckpointFile)
	}
	dst := []*int64{&c.LogStartOffset, &c.RecoveryPoint, &c.HighWatermark}
	names := []string{"log-start-offset", "recovery-point", "high-watermark"}
	for i, l := range lines[1:] {
		name, val, ok := strings.Cut(l, " ")
		if !ok || name != names[i] {
			return c, false, fmt.Errorf("malformed %s line %q", offsetsCheckpointFile, l)
		}
		if *dst[i], err = strconv.ParseInt(val, 10, 64); err != nil {
			return c, false, fmt.Errorf("malformed %s line %q", offsetsCheckpointFile, l)
		}
	}
	return c, true, nil
}

// EpochEntry says leader epoch Epoch started at offset Start.
type EpochEntry struct {
	Epoch int32
	Start int64
}

// Leader epoch checkpoint, in Kafka's text format: version, count, then
// "epoch startOffset" lines.
func encodeEpochs(es []EpochEntry) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "0\n%d\n", len(es))
	for _, e := range es {
		fmt.Fprintf(&b, "%d %d\n", e.Epoch, e.Start)
	}
	return b.Bytes()
}

func readEpochs(dir string) ([]EpochEntry, error) {
	b, err := os.ReadFile(filepath.Join(dir, leaderEpochFile))
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	var lines []string
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if len(lines) < 2 || lines[0] != "0" {
		return nil, fmt.Errorf("malformed %s", leaderEpochFile)
	}
	n, err := strconv.Atoi(lines[1])
	if err != nil || n != len(lines)-2 {
		return nil, fmt.Errorf("malformed %s count", leaderEpochFile)
	}
	es := make([]EpochEntry, 0, n)
	for _, l := range lines[2:] {
		var e EpochEntry
		if _, err := fmt.Sscanf(l, "%d %d", &e.Epoch, &e.Start); err != nil {
			return nil, fmt.Errorf("malformed %s line %q", leaderEpochFile, l)
		}
		if k := len(es); k > 0 && (e.Epoch <= es[k-1].Epoch || e.Start < es[k-1].Start) {
			return nil, fmt.Errorf("%s not increasing at %q", leaderEpochFile, l)
		}
		es = append(es, e)
	}
	return es, nil
}

// partition.metadata in Kafka's format; the topic id is base64url without
// padding, as Kafka prints Uuids.
func encodePartitionMetadata(topicID [16]byte) []byte {
	return fmt.Appendf(nil, "version: 0\ntopic_id: %s\n", base64.RawURLEncoding.EncodeToString(topicID[:]))
}

func readPartitionMetadata(dir string) ([16]byte, error) {
	var id [16]byte
	b, err := os.ReadFile(filepath.Join(dir, partitionMetadataFile))
	if os.IsNotExist(err) {
		return id, nil // a partition created before ids: zero id
	}
	if err != nil {
		return id, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "topic_id: "); ok {
			raw, err := base64.RawURLEncoding.DecodeString(strings.TrimSpace(v))
			if err != nil || len(raw) != 16 {
				return id, fmt.Errorf("malformed topic id in %s", partitionMetadataFile)
			}
			copy(id[:], raw)
			return id, nil
		}
	}
	return id, fmt.Errorf("no topic id in %s", partitionMetadataFile)
}
