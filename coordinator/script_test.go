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

// scriptGroup is what the consumer and share scripts keep besides their
// group: the topic view the group sees and the script clock ("at=" moves
// it, relative to base).
type scriptGroup struct {
	topics *fakeTopics
	base   time.Time
	now    time.Time
}

func newScriptGroup() scriptGroup {
	base := time.Unix(1_700_000_000, 0)
	return scriptGroup{topics: newFakeTopics(), base: base, now: base}
}

// at moves the clock to the command's "at=" argument, if it has one.
func (s *scriptGroup) at(t *testing.T, d *datadriven.TestData) {
	if v, ok := scriptArg(d, "at"); ok {
		s.now = s.base.Add(scriptDuration(t, v))
	}
}

// scriptedGroup is what ConsumerGroup and ShareGroup both offer to the
// commands that mean the same for either.
type scriptedGroup interface {
	OnMetadata(now time.Time, topics TopicsView)
	Tick(now time.Time, topics TopicsView)
	NextDeadline() time.Time
}

// runShared runs a command that means the same for a consumer and a share
// group, answering with groupLine after it; ok is false for any other
// command. "topics", "add-partitions" and "create-topic" set partition
// counts and tell the group; "topics-quiet" does not tell it.
func (s *scriptGroup) runShared(t *testing.T, d *datadriven.TestData, g scriptedGroup, groupLine func() string) (out string, ok bool) {
	switch d.Cmd {
	case "topics", "add-partitions", "create-topic", "topics-quiet":
		s.topics.setFromArgs(t, d)
		if d.Cmd != "topics-quiet" {
			g.OnMetadata(s.now, s.topics)
		}
	case "delete-topic":
		s.topics.deleteFromArgs(d)
		g.OnMetadata(s.now, s.topics)
	case "tick":
		g.Tick(s.now, s.topics)
	case "deadline":
		return deadlineLine(g.NextDeadline(), s.base), true
	default:
		return "", false
	}
	return groupLine(), true
}

// scriptHeartbeat reads the arguments every heartbeat command takes: the
// group ("g" unless given), the member id, the epoch (0 unless given) and
// the subscribed topic names (null unless given).
func scriptHeartbeat(t *testing.T, d *datadriven.TestData) (group, member string, epoch int32, subscribe []string) {
	group = "g"
	if v, ok := scriptArg(d, "group"); ok {
		group = v
	}
	member, _ = scriptArg(d, "member")
	if v, ok := scriptArg(d, "epoch"); ok {
		n, err := strconv.Atoi(v)
		if err != nil {
			t.Fatal(err)
		}
		epoch = int32(n)
	}
	if v, ok := scriptArg(d, "subscribe"); ok {
		subscribe = []string{}
		if v != "" {
			subscribe = strings.Split(v, ",")
		}
	}
	return group, member, epoch, subscribe
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
	return sortedKeys(f.parts)
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
	var words []string
	for id, ps := range a {
		if len(ps) > 0 {
			words = append(words, partitionsWord(f.name(id), ps))
		}
	}
	sort.Strings(words)
	return assignmentWords(words)
}

// partitionsWord prints a topic's partitions as "topic:p,p".
func partitionsWord(topic string, ps []int32) string {
	nums := make([]string, len(ps))
	for i, p := range ps {
		nums[i] = strconv.Itoa(int(p))
	}
	return topic + ":" + strings.Join(nums, ",")
}

// assignmentWords joins partitionsWord words with spaces, "[]" for none.
func assignmentWords(words []string) string {
	if len(words) == 0 {
		return "[]"
	}
	return strings.Join(words, " ")
}
