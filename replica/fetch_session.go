package replica

// The follower's side of an incremental fetch session (KIP-227) with its
// leader, as Kafka's FetchSessionHandler keeps it: the first fetch names
// every partition and makes a session; later fetches name only the
// partitions whose fetch position changed (those that got records, or
// were truncated, or moved to a new leader epoch) and forget those no
// longer fetched, and the leader answers with only the partitions that
// have something new. A follower of many idle partitions then sends and
// receives almost nothing per fetch.

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// sessionPart is what the leader's session was last told of a partition.
type sessionPart struct {
	topicID     [16]byte
	epoch       int32
	fetchOffset int64
	logStart    int64
}

// leaderSession is a fetcher's session with its leader. Only the
// fetcher's goroutine touches it.
type leaderSession struct {
	// id is the leader's session id, 0 for none.
	id int32
	// epoch is the next fetch's session epoch; 0 makes a new session
	// (closing id, if set).
	epoch int32
	// parts are the partitions the leader's session holds.
	parts map[fetchKey]sessionPart
}

// fill puts the session fields and the partitions to name into req:
// every partition of want in a full fetch, else those added or changed,
// and the ones dropped as forgotten.
func (s *leaderSession) fill(req *kmsg.FetchRequest, want map[fetchKey]sessionPart, partMax int32) {
	req.SessionID, req.SessionEpoch = s.id, s.epoch
	full := s.epoch == 0
	byTopic := map[string]int{}
	for k, w := range want {
		if !full && s.parts[k] == w {
			continue
		}
		i := topicEntry(&req.Topics, byTopic, k.topic, func() kmsg.FetchRequestTopic {
			rt := kmsg.NewFetchRequestTopic()
			rt.Topic, rt.TopicID = k.topic, w.topicID
			return rt
		})
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition, rp.CurrentLeaderEpoch = k.idx, w.epoch
		rp.FetchOffset, rp.LogStartOffset = w.fetchOffset, w.logStart
		rp.LastFetchedEpoch = -1
		rp.PartitionMaxBytes = partMax
		req.Topics[i].Partitions = append(req.Topics[i].Partitions, rp)
	}
	if full {
		return
	}
	forgotten := map[string]int{}
	for k, old := range s.parts {
		if _, ok := want[k]; ok {
			continue
		}
		i := topicEntry(&req.ForgottenTopics, forgotten, k.topic, func() kmsg.FetchRequestForgottenTopic {
			ft := kmsg.NewFetchRequestForgottenTopic()
			ft.Topic, ft.TopicID = k.topic, old.topicID
			return ft
		})
		req.ForgottenTopics[i].Partitions = append(req.ForgottenTopics[i].Partitions, k.idx)
	}
}

// topicEntry is the index in *list of topic's entry, which index maps; an
// entry made by add is appended the first time topic is asked for.
func topicEntry[T any](list *[]T, index map[string]int, topic string, add func() T) int {
	i, ok := index[topic]
	if !ok {
		*list = append(*list, add())
		i = len(*list) - 1
		index[topic] = i
	}
	return i
}

// answered records a successful response to a fetch that asked for want.
func (s *leaderSession) answered(req *kmsg.FetchRequest, resp *kmsg.FetchResponse, want map[fetchKey]sessionPart) {
	switch {
	case resp.SessionID == 0:
		// The leader keeps no session for this fetcher (no slot, or
		// sessions off): every fetch is a full one.
		s.id, s.epoch, s.parts = 0, 0, nil
	case req.SessionEpoch == 0 || resp.SessionID == s.id:
		s.id, s.epoch, s.parts = resp.SessionID, nextSessionEpoch(req.SessionEpoch), want
	default:
		s.restart()
	}
}

// failed records a failed fetch: a session the leader does not know is
// forgotten; after any other error the next fetch is a full one that
// closes the session and makes a new one.
func (s *leaderSession) failed(code int16) {
	if code == kerr.FetchSessionIDNotFound.Code {
		s.id = 0
	}
	s.restart()
}

func (s *leaderSession) restart() { s.epoch, s.parts = 0, nil }

// isSessionError reports whether a response's error is about the session
// only, so a full fetch may follow at once.
func isSessionError(code int16) bool {
	switch code {
	case kerr.FetchSessionIDNotFound.Code, kerr.InvalidFetchSessionEpoch.Code, kerr.FetchSessionTopicIDError.Code:
		return true
	}
	return false
}

// nextSessionEpoch is the epoch after e, wrapping to 1.
func nextSessionEpoch(e int32) int32 {
	if e == 1<<31-1 {
		return 1
	}
	return e + 1
}
