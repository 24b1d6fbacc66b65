package broker

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"
)

// deleteTopics sends a DeleteTopics request of version to s, naming topics
// by name and id, and returns its answers by the name or id they carry.
func deleteTopics(t *testing.T, s *Server, version int16, topics ...kmsg.DeleteTopicsRequestTopic) map[any]kmsg.DeleteTopicsResponseTopic {
	t.Helper()
	req := kmsg.NewPtrDeleteTopicsRequest()
	req.SetVersion(version)
	req.TimeoutMillis = 10000
	for _, rt := range topics {
		if version >= 6 {
			req.Topics = append(req.Topics, rt)
		} else {
			req.TopicNames = append(req.TopicNames, *rt.Topic)
		}
	}
	versions := kversion.Stable()
	versions.SetMaxKeyVersion(req.Key(), version)
	resp, err := req.RequestWith(testContext(t, 10*time.Second), testClient(t, s, kgo.MaxVersions(versions)))
	if err != nil {
		t.Fatal(err)
	}
	out := map[any]kmsg.DeleteTopicsResponseTopic{}
	for _, r := range resp.Topics {
		if r.Topic != nil {
			out[*r.Topic] = r
		} else {
			out[r.TopicID] = r
		}
	}
	return out
}

func deleteByName(name string) kmsg.DeleteTopicsRequestTopic {
	rt := kmsg.NewDeleteTopicsRequestTopic()
	rt.Topic = kmsg.StringPtr(name)
	return rt
}

func deleteByID(id [16]byte) kmsg.DeleteTopicsRequestTopic {
	rt := kmsg.NewDeleteTopicsRequestTopic()
	rt.TopicID = id
	return rt
}

// A DeleteTopics v6 topic naming both a name and an id, or neither, is
// INVALID_REQUEST with Kafka's messages, and the others are deleted; the
// topic named with its id too was deleted by name before.
func TestDeleteTopicsNameAndID(t *testing.T) {
	s := startTestServer(t)
	ctx := testContext(t, 20*time.Second)
	adm := kadm.NewClient(testClient(t, s))
	both := createTopic(t, ctx, adm, 1, "both", nil)
	createTopic(t, ctx, adm, 1, "plain", nil)
	named := deleteByName("both")
	named.TopicID = both
	got := deleteTopics(t, s, 6, named, deleteByID([16]byte{}), deleteByName("plain"))
	for _, c := range []struct {
		key  any
		code int16
		msg  string
	}{
		{"both", kerr.InvalidRequest.Code, "You may not specify both topic name and topic id."},
		{[16]byte{}, kerr.InvalidRequest.Code, "Neither topic name nor id were specified."},
		{"plain", 0, ""},
	} {
		if r := got[c.key]; r.ErrorCode != c.code || deref(r.ErrorMessage) != c.msg {
			t.Errorf("%v: code %d %q, want %d %q", c.key, r.ErrorCode, deref(r.ErrorMessage), c.code, c.msg)
		}
	}
	if s.meta.Image().Topics["both"] == nil {
		t.Fatal("topic both was deleted by a request naming it by name and id")
	}
}

// With topic deletion disabled every topic of the request is refused, by
// name or id, with TOPIC_DELETION_DISABLED, or INVALID_REQUEST before
// version 3 as in Kafka.
func TestDeleteTopicsDisabled(t *testing.T) {
	s := startTestServer(t, "delete.topic.enable=false")
	ctx := testContext(t, 20*time.Second)
	id := createTopic(t, ctx, kadm.NewClient(testClient(t, s)), 1, "t", nil)
	for _, c := range []struct {
		version int16
		topic   kmsg.DeleteTopicsRequestTopic
		key     any
		code    int16
	}{
		{2, deleteByName("t"), "t", kerr.InvalidRequest.Code},
		{5, deleteByName("t"), "t", kerr.TopicDeletionDisabled.Code},
		{6, deleteByID(id), id, kerr.TopicDeletionDisabled.Code},
		{6, deleteByID([16]byte{}), [16]byte{}, kerr.TopicDeletionDisabled.Code},
	} {
		got := deleteTopics(t, s, c.version, c.topic)
		if r, ok := got[c.key]; len(got) != 1 || !ok || r.ErrorCode != c.code {
			t.Errorf("v%d %v: answered %+v, want code %d", c.version, c.key, got, c.code)
		}
	}
}
