package coordinator

import (
	"sort"
	"strconv"
	"strings"
)

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
