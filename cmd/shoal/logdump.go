package main

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"

	shoallog "github.com/shoalmq/shoal/log"
)

func logCommand() *cli.Command {
	return commandGroup("log", "inspect log segment files on disk",
		`shoal log dump /var/lib/shoal/orders-0
shoal log dump --records /var/lib/shoal/orders-0/00000000000000000000.log`,
		logDumpCommand(),
	)
}

func logDumpCommand() *cli.Command {
	return leaf(&cli.Command{
		Name:  "dump",
		Usage: "print and verify the record batches of segment files",
		UsageText: `shoal log dump [--records] PATH...

PATH is a segment file (NNNNNNNNNNNNNNNNNNNN.log) or a partition directory
(every segment in it, in offset order). Each batch is printed with its
offsets, size, file position, CRC check, compression, producer and
timestamps; --records adds every record. The dump verifies batch CRCs,
lengths, that offsets increase within and across segments, and, where a
.index or .timeindex file sits next to a segment, that each entry points at
a batch boundary with the right offset (and timestamp). It exits non-zero
if anything is corrupt. The files are only read; dumping the segments of a
running broker is safe, though its newest batches may not yet be indexed.

examples:
  shoal log dump shoal-data/orders-0
  shoal log dump --records shoal-data/orders-0/00000000000000000000.log
  shoal --output json log dump shoal-data/orders-0    (one JSON object per batch)`,
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "records", Aliases: []string{"r"}, Usage: "print every record of every batch"},
		},
		Action: logDump,
	})
}

// dumpProblem is one integrity failure.
type dumpProblem struct {
	File     string `json:"file"`
	Position int64  `json:"position"`
	Message  string `json:"message"`
}

func (p dumpProblem) String() string {
	return fmt.Sprintf("%s at position %d: %s", p.File, p.Position, p.Message)
}

// dumpBatch is one batch in the dump output.
type dumpBatch struct {
	File                 string       `json:"file"`
	Position             int64        `json:"position"`
	BaseOffset           int64        `json:"base_offset"`
	LastOffset           int64        `json:"last_offset"`
	Count                int32        `json:"count"`
	Size                 int          `json:"size"`
	CRC                  uint32       `json:"crc"`
	CRCValid             bool         `json:"crc_valid"`
	Magic                int8         `json:"magic"`
	Compression          string       `json:"compression"`
	TimestampType        string       `json:"timestamp_type"`
	Transactional        bool         `json:"transactional"`
	Control              bool         `json:"control"`
	PartitionLeaderEpoch int32        `json:"partition_leader_epoch"`
	ProducerID           int64        `json:"producer_id"`
	ProducerEpoch        int16        `json:"producer_epoch"`
	BaseSequence         int32        `json:"base_sequence"`
	BaseTimestamp        int64        `json:"base_timestamp"`
	MaxTimestamp         int64        `json:"max_timestamp"`
	Records              []recordJSON `json:"records,omitempty"`
}

// segmentFile is one .log file to dump, with the segment base offset its
// name gives (-1 when the name is not a base offset).
type segmentFile struct {
	path string
	base int64
}

func segmentBase(path string) int64 {
	name := strings.TrimSuffix(filepath.Base(path), ".log")
	if len(name) != 20 {
		return -1
	}
	n, err := strconv.ParseInt(name, 10, 64)
	if err != nil {
		return -1
	}
	return n
}

// collectSegments expands the PATH arguments into groups of segments;
// the segments of one directory are checked for offset order together.
func collectSegments(paths []string) ([][]segmentFile, error) {
	var groups [][]segmentFile
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			return nil, failure("log dump: %v", err)
		}
		if !st.IsDir() {
			if !st.Mode().IsRegular() {
				return nil, failure("log dump: %s is not a regular file", p)
			}
			groups = append(groups, []segmentFile{{path: p, base: segmentBase(p)}})
			continue
		}
		matches, err := filepath.Glob(filepath.Join(p, "*.log"))
		if err != nil {
			return nil, failure("log dump: %v", err)
		}
		if len(matches) == 0 {
			return nil, failure("log dump: no .log segment files in %s (expected a partition directory such as <log.dirs>/orders-0)", p)
		}
		var segs []segmentFile
		for _, m := range matches {
			segs = append(segs, segmentFile{path: m, base: segmentBase(m)})
		}
		sort.Slice(segs, func(i, j int) bool {
			if segs[i].base != segs[j].base {
				return segs[i].base < segs[j].base
			}
			return segs[i].path < segs[j].path
		})
		groups = append(groups, segs)
	}
	return groups, nil
}

func logDump(c *cli.Context) error {
	paths, err := someArgs(c, "PATH")
	if err != nil {
		return err
	}
	out, err := outputMode(c)
	if err != nil {
		return err
	}
	groups, err := collectSegments(paths)
	if err != nil {
		return err
	}
	d := &dumper{w: c.App.Writer, json: out == outputJSON, records: c.Bool("records")}
	for _, segs := range groups {
		d.prevLast = -1
		d.prevFile = ""
		for _, s := range segs {
			if err := d.dumpSegment(s); err != nil {
				return err
			}
		}
	}
	if d.json {
		if err := d.emitJSON(struct {
			Summary  bool          `json:"summary"`
			Files    int           `json:"total_files"`
			Batches  int64         `json:"total_batches"`
			Records  int64         `json:"total_records"`
			Problems []dumpProblem `json:"problems"`
		}{true, d.files, d.batches, d.recordCount, append([]dumpProblem{}, d.problems...)}); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(d.w, "\n%d file(s), %d batch(es), %d record(s), %d problem(s)\n", d.files, d.batches, d.recordCount, len(d.problems))
	}
	if n := len(d.problems); n > 0 {
		more := ""
		if n > 1 {
			more = fmt.Sprintf(" (and %d more problem(s), listed above)", n-1)
		}
		return failure("log dump: corrupt: %s%s", d.problems[0], more)
	}
	return nil
}

type dumper struct {
	w       io.Writer
	json    bool
	records bool

	files       int
	batches     int64
	recordCount int64
	problems    []dumpProblem

	prevLast int64 // last offset of the previous batch in this partition
	prevFile string
}

func (d *dumper) problem(file string, pos int64, format string, args ...any) {
	p := dumpProblem{File: file, Position: pos, Message: fmt.Sprintf(format, args...)}
	d.problems = append(d.problems, p)
	if !d.json {
		fmt.Fprintf(d.w, "CORRUPT %s\n", p)
	}
}

func (d *dumper) emitJSON(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return failure("log dump: %v", err)
	}
	b = append(b, '\n')
	if _, err := d.w.Write(b); err != nil {
		return failure("writing output: %v", err)
	}
	return nil
}

// batchPos is a batch boundary found while scanning a segment.
type batchPos struct {
	pos          int64
	base         int64
	maxTimestamp int64
}

// dumpSegment scans one segment file batch by batch, reading one batch at
// a time so segments of any size can be dumped. Only I/O errors abort;
// corruption is recorded and, when the batch length is usable, scanning
// continues after the damaged batch.
func (d *dumper) dumpSegment(s segmentFile) error {
	f, err := os.Open(s.path)
	if err != nil {
		return failure("log dump: %v", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return failure("log dump: %v", err)
	}
	size := st.Size()
	d.files++
	if !d.json {
		fmt.Fprintf(d.w, "Dumping %s (%d bytes)\n", s.path, size)
	}
	if s.base >= 0 && d.prevLast >= s.base {
		d.problem(s.path, 0, "segment base offset %d is not above the last offset %d of the previous segment %s", s.base, d.prevLast, filepath.Base(d.prevFile))
	}

	var (
		boundaries []batchPos
		hdr        = make([]byte, shoallog.BatchHeaderSize)
		buf        []byte
		pos        int64
		lastInSeg  = int64(-1)
	)
	for pos < size {
		if size-pos < shoallog.BatchHeaderSize {
			d.problem(s.path, pos, "truncated batch: %d trailing bytes, less than a batch header (%d bytes)", size-pos, shoallog.BatchHeaderSize)
			break
		}
		if _, err := f.ReadAt(hdr, pos); err != nil {
			return failure("log dump: reading %s: %v", s.path, err)
		}
		h, err := shoallog.ParseBatchHeader(hdr)
		if err != nil {
			d.problem(s.path, pos, "unreadable batch header: %v", err)
			break
		}
		bsize := int64(h.Size())
		if bsize > size-pos {
			d.problem(s.path, pos, "truncated batch at offset %d: length says %d bytes, only %d left in the file", h.BaseOffset, bsize, size-pos)
			break
		}
		if int64(cap(buf)) < bsize {
			buf = make([]byte, bsize)
		}
		buf = buf[:bsize]
		if _, err := f.ReadAt(buf, pos); err != nil {
			return failure("log dump: reading %s: %v", s.path, err)
		}
		b := dumpBatch{
			File:                 s.path,
			Position:             pos,
			BaseOffset:           h.BaseOffset,
			LastOffset:           h.LastOffset(),
			Count:                h.NumRecords,
			Size:                 h.Size(),
			CRC:                  h.CRC,
			CRCValid:             shoallog.VerifyBatchCRC(buf),
			Magic:                h.Magic,
			Compression:          compressionName(h.Compression()),
			TimestampType:        shoallog.TimestampCreateTime,
			Transactional:        h.Transactional(),
			Control:              h.Control(),
			PartitionLeaderEpoch: h.PartitionLeaderEpoch,
			ProducerID:           h.ProducerID,
			ProducerEpoch:        h.ProducerEpoch,
			BaseSequence:         h.BaseSequence,
			BaseTimestamp:        h.BaseTimestamp,
			MaxTimestamp:         h.MaxTimestamp,
		}
		if h.LogAppendTime() {
			b.TimestampType = shoallog.TimestampLogAppendTime
		}
		d.batches++
		d.recordCount += int64(h.NumRecords)
		if !d.json {
			d.printBatch(b)
		}

		if h.Magic != 2 {
			d.problem(s.path, pos, "batch at offset %d: magic %d, expected 2", h.BaseOffset, h.Magic)
		}
		if !b.CRCValid {
			d.problem(s.path, pos, "batch at offset %d: CRC mismatch (stored 0x%08x)", h.BaseOffset, h.CRC)
		}
		if h.LastOffsetDelta < 0 || h.NumRecords < 0 || h.NumRecords > h.LastOffsetDelta+1 {
			d.problem(s.path, pos, "batch at offset %d: %d records do not fit offsets %d..%d", h.BaseOffset, h.NumRecords, h.BaseOffset, h.LastOffset())
		}
		if s.base >= 0 && len(boundaries) == 0 && h.BaseOffset < s.base {
			d.problem(s.path, pos, "first batch offset %d is below the segment base offset %d", h.BaseOffset, s.base)
		}
		if d.prevLast >= 0 && h.BaseOffset <= d.prevLast {
			d.problem(s.path, pos, "batch offsets do not increase: base offset %d after last offset %d", h.BaseOffset, d.prevLast)
		}

		// Decode the records of a batch whose bytes are intact: that checks
		// that they parse and that their offsets stay inside the batch.
		if b.CRCValid && h.Magic == 2 {
			_, recs, err := shoallog.DecodeRecords(buf)
			if err != nil {
				d.problem(s.path, pos, "batch at offset %d: records do not decode: %v", h.BaseOffset, err)
			} else {
				if int32(len(recs)) != h.NumRecords {
					d.problem(s.path, pos, "batch at offset %d: header says %d records, %d decoded", h.BaseOffset, h.NumRecords, len(recs))
				}
				prev := h.BaseOffset - 1
				for _, r := range recs {
					if r.Offset <= prev || r.Offset > h.LastOffset() {
						d.problem(s.path, pos, "batch at offset %d: record offset %d out of order or outside %d..%d", h.BaseOffset, r.Offset, h.BaseOffset, h.LastOffset())
						break
					}
					prev = r.Offset
				}
				if d.records {
					b.Records = d.printRecords(recs)
				}
			}
		}

		if d.json {
			if err := d.emitJSON(b); err != nil {
				return err
			}
		}

		if h.LastOffset() > d.prevLast {
			d.prevLast = h.LastOffset()
		}
		lastInSeg = max(lastInSeg, h.LastOffset())
		boundaries = append(boundaries, batchPos{pos: pos, base: h.BaseOffset, maxTimestamp: h.MaxTimestamp})
		pos += bsize
	}
	d.prevFile = s.path

	if s.base >= 0 {
		d.checkOffsetIndex(strings.TrimSuffix(s.path, ".log")+".index", s.base, boundaries)
		d.checkTimeIndex(strings.TrimSuffix(s.path, ".log")+".timeindex", s.base, boundaries)
	}
	return nil
}

func (d *dumper) printBatch(b dumpBatch) {
	crc := "ok"
	if !b.CRCValid {
		crc = "BAD"
	}
	fmt.Fprintf(d.w, "baseOffset: %d lastOffset: %d count: %d position: %d size: %d crc: 0x%08x (%s) magic: %d compression: %s producerId: %d producerEpoch: %d baseSequence: %d leaderEpoch: %d isTransactional: %t isControl: %t timestampType: %s baseTimestamp: %d maxTimestamp: %d\n",
		b.BaseOffset, b.LastOffset, b.Count, b.Position, b.Size, b.CRC, crc, b.Magic, b.Compression,
		b.ProducerID, b.ProducerEpoch, b.BaseSequence, b.PartitionLeaderEpoch, b.Transactional, b.Control,
		b.TimestampType, b.BaseTimestamp, b.MaxTimestamp)
}

// printRecords prints a batch's records (text), or returns them to be
// emitted with their batch (JSON).
func (d *dumper) printRecords(recs []shoallog.Record) []recordJSON {
	if !d.json {
		for _, r := range recs {
			var hs []string
			for _, h := range r.Headers {
				hs = append(hs, printable([]byte(h.Key))+"="+printable(h.Value))
			}
			fmt.Fprintf(d.w, "| offset: %d timestamp: %d keySize: %d valueSize: %d key: %s value: %s headers: [%s]\n",
				r.Offset, r.Timestamp, nullableLen(r.Key), nullableLen(r.Value), printable(r.Key), printable(r.Value), strings.Join(hs, ", "))
		}
		return nil
	}
	out := make([]recordJSON, 0, len(recs))
	for _, r := range recs {
		dr := recordJSON{Offset: r.Offset, Timestamp: r.Timestamp, Key: nullableString(r.Key), Value: nullableString(r.Value), Headers: []headerJSON{}}
		for _, h := range r.Headers {
			dr.Headers = append(dr.Headers, headerJSON{Key: h.Key, Value: nullableString(h.Value)})
		}
		out = append(out, dr)
	}
	return out
}

func nullableLen(b []byte) int {
	if b == nil {
		return -1
	}
	return len(b)
}

func nullableString(b []byte) *string {
	if b == nil {
		return nil
	}
	s := string(b)
	return &s
}

func compressionName(c int8) string {
	switch c {
	case shoallog.CompressionNone:
		return "none"
	case shoallog.CompressionGzip:
		return "gzip"
	case shoallog.CompressionSnappy:
		return "snappy"
	case shoallog.CompressionLZ4:
		return "lz4"
	case shoallog.CompressionZstd:
		return "zstd"
	default:
		return fmt.Sprintf("unknown(%d)", c)
	}
}

// Index entry layouts, as the log package writes them: the offset index
// holds (relative offset uint32, file position uint32) pairs, the time
// index (timestamp int64, relative offset uint32) triples, big endian.
const (
	offsetIndexEntrySize = 8
	timeIndexEntrySize   = 12
)

// eachIndexEntry reads the index file at path, whose entries are
// entrySize bytes, hands check each entry with its number and position,
// and says how many it checked. A missing file leaves nothing to check
// and is no problem; an unreadable file and a size that leaves a partial
// entry are problems.
func (d *dumper) eachIndexEntry(path, kind string, entrySize int, check func(i int, at int64, e []byte)) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return
	}
	if err != nil {
		d.problem(path, 0, "cannot read %s: %v", kind, err)
		return
	}
	if len(data)%entrySize != 0 {
		d.problem(path, int64(len(data)), "%s size %d is not a multiple of %d", kind, len(data), entrySize)
	}
	n := len(data) / entrySize
	for i := 0; i < n; i++ {
		check(i, int64(i*entrySize), data[i*entrySize:])
	}
	if !d.json {
		fmt.Fprintf(d.w, "%s %s: %d entries checked\n", kind, path, n)
	}
}

// checkOffsetIndex verifies that every entry of a segment's offset index
// names a batch boundary and that batch's base offset.
func (d *dumper) checkOffsetIndex(path string, base int64, batches []batchPos) {
	byPos := make(map[int64]int64, len(batches))
	for _, b := range batches {
		byPos[b.pos] = b.base
	}
	var prevRel, prevPos int64 = -1, -1
	d.eachIndexEntry(path, "offset index", offsetIndexEntrySize, func(i int, at int64, e []byte) {
		rel := int64(binary.BigEndian.Uint32(e))
		fpos := int64(binary.BigEndian.Uint32(e[4:]))
		if rel <= prevRel || fpos <= prevPos {
			d.problem(path, at, "offset index entry %d (offset %d -> position %d) does not increase", i, base+rel, fpos)
		}
		prevRel, prevPos = rel, fpos
		got, ok := byPos[fpos]
		switch {
		case !ok:
			d.problem(path, at, "offset index entry %d: position %d (offset %d) is not a batch boundary of the segment", i, fpos, base+rel)
		case got != base+rel:
			d.problem(path, at, "offset index entry %d: position %d holds the batch at offset %d, the index says %d", i, fpos, got, base+rel)
		}
	})
}

// checkTimeIndex verifies that every entry of a segment's time index
// names a batch that starts at that offset and whose max timestamp is the
// entry's timestamp.
func (d *dumper) checkTimeIndex(path string, base int64, batches []batchPos) {
	byBase := make(map[int64]int64, len(batches))
	for _, b := range batches {
		byBase[b.base] = b.maxTimestamp
	}
	var prevTs, prevRel int64 = -1 << 63, -1
	d.eachIndexEntry(path, "time index", timeIndexEntrySize, func(i int, at int64, e []byte) {
		ts := int64(binary.BigEndian.Uint64(e))
		rel := int64(binary.BigEndian.Uint32(e[8:]))
		if ts <= prevTs || rel < prevRel {
			d.problem(path, at, "time index entry %d (timestamp %d -> offset %d) does not increase", i, ts, base+rel)
		}
		prevTs, prevRel = ts, rel
		maxTs, ok := byBase[base+rel]
		switch {
		case !ok:
			d.problem(path, at, "time index entry %d: offset %d is not the start of a batch in the segment", i, base+rel)
		case maxTs != ts:
			d.problem(path, at, "time index entry %d: the batch at offset %d has max timestamp %d, the index says %d", i, base+rel, maxTs, ts)
		}
	})
}
