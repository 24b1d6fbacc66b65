package coordinator

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"
	"github.com/twmb/franz-go/pkg/kerr"
)

// What the datadriven scripts of the group state machines share
// (testdata/consumer, testdata/share, testdata/classic): argument parsing,
// a fake topic view, and the printing of heartbeat answers.

// scriptArg returns a command argument's values joined by commas, so that
// "subscribe=(a,b)" and "subscribe=a,b" read alike.
func scriptArg(d *datadriven.TestData, key string) (string, bool) {
	a, ok := d.Arg(key)
	if !ok {
		return "", false
	}
	return strings.Join(a.Vals, ","), true
}

// scriptDuration parses a duration argument, failing the test on a typo.
func scriptDuration(t *testing.T, v string) time.Duration {
	dur, err := time.ParseDuration(v)
	if err != nil {
		t.Fatal(err)
	}
	return dur
}

// setFromArgs sets the partition count of every topic named by an argument
// other than "at" ("orders=3").
func (f *fakeTopics) setFromArgs(t *testing.T, d *datadriven.TestData) {
	for _, a := range d.CmdArgs {
		if a.Key == "at" {
			continue
		}
		n, err := strconv.Atoi(strings.Join(a.Vals, ","))
		if err != nil {
			t.Fatal(err)
		}
		f.set(a.Key, int32(n))
	}
}

// deleteFromArgs deletes every topic named by an argument other than "at".
func (f *fakeTopics) deleteFromArgs(d *datadriven.TestData) {
	for _, a := range d.CmdArgs {
		if a.Key != "at" {
			f.del(a.Key)
		}
	}
}

// heartbeatLine prints a heartbeat answer of the consumer or share
// protocol: "error NAME: message" (nullMessage standing for a null
// message), or "MEMBER epoch=E interval=I assignment=A" where a nil
// assignment (the response's null) prints as "unchanged".
func (f *fakeTopics) heartbeatLine(code int16, message *string, nullMessage string, member *string, epoch, interval int32, assignment map[[16]byte][]int32) string {
	if code != 0 {
		msg := nullMessage
		if message != nil {
			msg = *message
		}
		return fmt.Sprintf("error %s: %s", kerr.ErrorForCode(code).(*kerr.Error).Message, msg)
	}
	id := "<null>"
	if member != nil {
		id = *member
	}
	s := fmt.Sprintf("%s epoch=%d interval=%d", id, epoch, interval)
	if assignment == nil {
		return s + " assignment=unchanged"
	}
	return s + " assignment=" + f.format(assignment)
}

// deadlineLine prints a group's next deadline relative to base, "none" if
// it has none.
func deadlineLine(dl, base time.Time) string {
	if dl.IsZero() {
		return "none"
	}
	return dl.Sub(base).String()
}

// fakeTopics is a TopicsView over a plain map. A topic id is a
// generation byte followed by the name, so a re-created topic gets a new id.
type fakeTopics struct {
	parts map[string]int32
	ids   map[string][16]byte
	gen   byte
}

func newFakeTopics() *fakeTopics {
	return &fakeTopics{parts: map[string]int32{}, ids: map[string][16]byte{}}
}

func (f *fakeTopics) set(name string, n int32) {
	if _, ok := f.ids[name]; !ok {
		f.gen++
		var id [16]byte
		id[0] = f.gen
		copy(id[1:], name)
		f.ids[name] = id
	}
	f.parts[name] = n
}

func (f *fakeTopics) del(name string) {
	delete(f.parts, name)
	delete(f.ids, name)
}

func (f *fakeTopics) TopicByName(name string) ([16]byte, int32, bool) {
	n, ok := f.parts[name]
	return f.ids[name], n, ok
}

func (f *fakeTopics) TopicByID(id [16]byte) (string, int32, bool) {
	for name, tid := range f.ids {
		if tid == id {
			return name, f.parts[name], true
		}
	}
	return "", 0, false
}

func (f *fakeTopics) TopicNames() []string {
	out := make([]string, 0, len(f.parts))
	for name := range f.parts {
		out = append(out, name)
	}
	sort.Strings(out)
	return out
}

// name names a topic id for printing, even a deleted one.
func (f *fakeTopics) name(id [16]byte) string {
	if name, _, ok := f.TopicByID(id); ok {
		return name
	}
	return "?" + strings.TrimRight(string(id[1:]), "\x00")
}

// format prints an assignment as sorted "topic:p,p" words, "[]" if empty.
func (f *fakeTopics) format(a map[[16]byte][]int32) string {
	var parts []string
	for id, ps := range a {
		if len(ps) == 0 {
			continue
		}
		var nums []string
		for _, p := range ps {
			nums = append(nums, strconv.Itoa(int(p)))
		}
		parts = append(parts, f.name(id)+":"+strings.Join(nums, ","))
	}
	if len(parts) == 0 {
		return "[]"
	}
	sort.Strings(parts)
	return strings.Join(parts, " ")
}
