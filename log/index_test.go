package log

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// TestLoadIndexFiles checks that the index loaders decode well-formed files
// and refuse a file of partial entries, an entry out of order and an entry
// past what it indexes, naming the problem.
func TestLoadIndexFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	offsets := func(es ...offsetEntry) []byte {
		var b []byte
		for _, e := range es {
			b = binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(b, e.rel), e.pos)
		}
		return b
	}
	times := func(es ...timeEntry) []byte {
		var b []byte
		for _, e := range es {
			b = binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint64(b, uint64(e.ts)), e.rel)
		}
		return b
	}

	good := []offsetEntry{{0, 0}, {5, 100}, {9, 300}}
	if es, err := loadOffsetIndex(write("good.index", offsets(good...)), 400); err != nil || !reflect.DeepEqual(es, good) {
		t.Fatalf("offset index: %v, %v; want %v", es, err, good)
	}
	goodTimes := []timeEntry{{1000, 0}, {1001, 0}, {2000, 7}}
	if es, err := loadTimeIndex(write("good.timeindex", times(goodTimes...)), 7); err != nil || !reflect.DeepEqual(es, goodTimes) {
		t.Fatalf("time index: %v, %v; want %v", es, err, goodTimes)
	}

	for _, tc := range []struct {
		name, want string
		b          []byte
	}{
		{"offset-partial", "not a multiple of 8", offsets(good...)[:20]},
		{"offset-past-log", "entry 2 points at 300 past log size 350", offsets(good...)},
		{"offset-same-rel", "entry 1 not increasing", offsets(offsetEntry{0, 0}, offsetEntry{0, 100})},
		{"offset-same-pos", "entry 2 not increasing", offsets(offsetEntry{0, 0}, offsetEntry{1, 100}, offsetEntry{2, 100})},
		{"time-partial", "not a multiple of 12", times(goodTimes...)[:13]},
		{"time-beyond-segment", "entry 2 beyond the segment", times(goodTimes...)},
		{"time-same-ts", "entry 1 not increasing", times(timeEntry{1000, 0}, timeEntry{1000, 1})},
		{"time-rel-back", "entry 1 not increasing", times(timeEntry{1000, 3}, timeEntry{1001, 2})},
	} {
		path := write(tc.name, tc.b)
		var err error
		if strings.HasPrefix(tc.name, "offset") {
			_, err = loadOffsetIndex(path, 350)
		} else {
			_, err = loadTimeIndex(path, 6)
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one with %q", tc.name, err, tc.want)
		}
	}
}
