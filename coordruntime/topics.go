package coordruntime

import (
	"github.com/shoalmq/shoal/coordinator"
	"github.com/shoalmq/shoal/raftmeta"
)

// ImageTopics lets the group state machines see topics through a metadata
// image. A view is one pointer, so passing it as an interface does not
// allocate.
func ImageTopics(img *raftmeta.Image) coordinator.TopicsView { return imageTopics{img} }

type imageTopics struct{ img *raftmeta.Image }

func (v imageTopics) TopicByName(name string) ([16]byte, int32, bool) {
	t := v.img.Topics[name]
	if t == nil {
		return [16]byte{}, 0, false
	}
	return t.ID, int32(len(t.Partitions)), true
}

func (v imageTopics) TopicByID(id [16]byte) (string, int32, bool) {
	name, ok := v.img.TopicIDs[id]
	t := v.img.Topics[name]
	if !ok || t == nil {
		return "", 0, false
	}
	return t.Name, int32(len(t.Partitions)), true
}

// TopicNames lists every topic, internal ones included: Kafka matches a
// consumer group's regex subscription against all of them, so a pattern
// that names __consumer_offsets is assigned it.
func (v imageTopics) TopicNames() []string {
	out := make([]string, 0, len(v.img.Topics))
	for name := range v.img.Topics {
		out = append(out, name)
	}
	return out
}
