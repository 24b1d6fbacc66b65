package share

import (
	"context"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoalmq/shoal/coordinator"
	"github.com/shoalmq/shoal/queue"
)

// remoteTimeout bounds one share-state RPC to another node.
const remoteTimeout = 10 * time.Second

// remoteStore is the StateStore of the keys another node's share
// coordinator serves, reached with the share-state RPCs
// (ReadShareGroupState, WriteShareGroupState, ReadShareGroupStateSummary,
// InitializeShareGroupState, DeleteShareGroupState) over the peer client.
// A node that cannot be reached makes every key of the request
// COORDINATOR_NOT_AVAILABLE; a node that no longer leads (or still loads)
// the state partition answers NOT_COORDINATOR (COORDINATOR_LOAD_IN_PROGRESS):
// all retriable.
type remoteStore struct {
	ctx   context.Context // the node's lifetime, for queued writes
	node  int32
	peers Peers

	// mu guards writers. A key has a writer while states of it are queued
	// or being sent; the writer's goroutine removes it when none is left.
	mu      sync.Mutex
	writers map[coordinator.ShareKey]*keyWriter
}

// keyWriter sends one key's states one at a time, always the newest: a
// write that is durable makes every older state of the key moot.
type keyWriter struct {
	pending *coordinator.ShareState
	waiters []chan error
}

func newRemoteStore(ctx context.Context, node int32, peers Peers) *remoteStore {
	return &remoteStore{ctx: ctx, node: node, peers: peers, writers: map[coordinator.ShareKey]*keyWriter{}}
}

// request sends req to the node, bounded by remoteTimeout.
func (r *remoteStore) request(ctx context.Context, req kmsg.Request) (kmsg.Response, error) {
	ctx, cancel := context.WithTimeout(ctx, remoteTimeout)
	defer cancel()
	return r.peers.Request(ctx, r.node, req)
}

func (r *remoteStore) Read(ctx context.Context, key coordinator.ShareKey, leaderEpoch int32) (coordinator.ShareState, bool, *kerr.Error) {
	var st coordinator.ShareState
	req := kmsg.NewPtrReadShareGroupStateRequest()
	req.GroupID = key.Group
	rt := kmsg.NewReadShareGroupStateRequestTopic()
	rt.TopicID = key.TopicID
	rp := kmsg.NewReadShareGroupStateRequestTopicPartition()
	rp.Partition, rp.LeaderEpoch = key.Partition, leaderEpoch
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := r.request(ctx, req)
	if err != nil {
		return st, false, kerr.CoordinatorNotAvailable
	}
	rr := resp.(*kmsg.ReadShareGroupStateResponse)
	if len(rr.Topics) != 1 || len(rr.Topics[0].Partitions) != 1 {
		return st, false, kerr.CoordinatorNotAvailable
	}
	op := rr.Topics[0].Partitions[0]
	if kerrv := kerrOf(op.ErrorCode); kerrv != nil {
		return st, false, kerrv
	}
	st.StateEpoch, st.StartOffset = op.StateEpoch, op.StartOffset
	st.Producer = coordinator.DeadLetterProducerOf(&op.UnknownTags)
	for _, b := range op.StateBatches {
		st.Batches = append(st.Batches, queue.StateBatch{First: b.FirstOffset, Last: b.LastOffset, State: queue.State(b.DeliveryState), DeliveryCount: b.DeliveryCount})
	}
	return st, op.StartOffset >= 0, nil
}

func (r *remoteStore) Write(ctx context.Context, key coordinator.ShareKey, st *coordinator.ShareState) error {
	req := kmsg.NewPtrWriteShareGroupStateRequest()
	req.GroupID = key.Group
	rt := kmsg.NewWriteShareGroupStateRequestTopic()
	rt.TopicID = key.TopicID
	rp := kmsg.NewWriteShareGroupStateRequestTopicPartition()
	rp.Partition = key.Partition
	rp.StateEpoch, rp.LeaderEpoch, rp.StartOffset = st.StateEpoch, st.LeaderEpoch, st.StartOffset
	for _, b := range st.Batches {
		sb := kmsg.NewWriteShareGroupStateRequestTopicPartitionStateBatch()
		sb.FirstOffset, sb.LastOffset, sb.DeliveryState, sb.DeliveryCount = b.First, b.Last, int8(b.State), b.DeliveryCount
		rp.StateBatches = append(rp.StateBatches, sb)
	}
	coordinator.SetDeadLetterProducer(&rp.UnknownTags, st.Producer)
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := r.request(ctx, req)
	if err != nil {
		return kerr.CoordinatorNotAvailable
	}
	wr := resp.(*kmsg.WriteShareGroupStateResponse)
	if len(wr.Topics) != 1 || len(wr.Topics[0].Partitions) != 1 {
		return kerr.CoordinatorNotAvailable
	}
	return kerr.ErrorForCode(wr.Topics[0].Partitions[0].ErrorCode)
}

// Enqueue makes st the key's next state to send; the key's writer goroutine
// is started when the key has none.
func (r *remoteStore) Enqueue(key coordinator.ShareKey, st *coordinator.ShareState) <-chan error {
	done := make(chan error, 1)
	r.mu.Lock()
	defer r.mu.Unlock()
	w := r.writers[key]
	if w == nil {
		w = &keyWriter{}
		r.writers[key] = w
		go r.writeLoop(key, w)
	}
	w.pending = st
	w.waiters = append(w.waiters, done)
	return done
}

// writeLoop writes key's newest pending state until none is left. The
// writer is retired before the last waiters hear their outcome, so a caller
// that saw every write it queued answered finds the key idle.
func (r *remoteStore) writeLoop(key coordinator.ShareKey, w *keyWriter) {
	r.mu.Lock()
	for {
		st, waiters := w.pending, w.waiters
		w.pending, w.waiters = nil, nil
		r.mu.Unlock()
		err := r.Write(r.ctx, key, st)
		r.mu.Lock()
		idle := w.pending == nil
		if idle {
			delete(r.writers, key)
		}
		r.mu.Unlock()
		for _, done := range waiters {
			done <- err
		}
		if idle {
			return
		}
		r.mu.Lock()
	}
}

func (r *remoteStore) Summaries(ctx context.Context, group string, keys []coordinator.ShareKey) map[coordinator.ShareKey]Summary {
	req := kmsg.NewPtrReadShareGroupStateSummaryRequest()
	req.GroupID = group
	byTopic(keys, func(tid [16]byte, parts []int32) {
		rt := kmsg.NewReadShareGroupStateSummaryRequestTopic()
		rt.TopicID = tid
		for _, p := range parts {
			rp := kmsg.NewReadShareGroupStateSummaryRequestTopicPartition()
			rp.Partition = p
			rt.Partitions = append(rt.Partitions, rp)
		}
		req.Topics = append(req.Topics, rt)
	})
	missing := Summary{StartOffset: -1, Complete: -1, Err: kerr.CoordinatorNotAvailable}
	return keyAnswers(ctx, r, keys, req, missing, func(resp kmsg.Response, answer func([16]byte, int32, Summary)) {
		for _, rt := range resp.(*kmsg.ReadShareGroupStateSummaryResponse).Topics {
			for _, rp := range rt.Partitions {
				// A state initialized without a start offset (-1)
				// still has a leader epoch of 0 or more.
				answer(rt.TopicID, rp.Partition, Summary{
					Found:       rp.ErrorCode == 0 && (rp.StartOffset >= 0 || rp.LeaderEpoch >= 0),
					StartOffset: rp.StartOffset, StateEpoch: rp.StateEpoch,
					Complete: rp.DeliveryCompleteCount, Err: kerrOf(rp.ErrorCode),
				})
			}
		}
	})
}

func (r *remoteStore) Initialize(ctx context.Context, group string, states map[coordinator.ShareKey]coordinator.ShareState) map[coordinator.ShareKey]*kerr.Error {
	keys := slices.Collect(maps.Keys(states))
	req := kmsg.NewPtrInitializeShareGroupStateRequest()
	req.GroupID = group
	byTopic(keys, func(tid [16]byte, parts []int32) {
		rt := kmsg.NewInitializeShareGroupStateRequestTopic()
		rt.TopicID = tid
		for _, p := range parts {
			st := states[coordinator.ShareKey{Group: group, TopicID: tid, Partition: p}]
			rp := kmsg.NewInitializeShareGroupStateRequestTopicPartition()
			rp.Partition, rp.StateEpoch, rp.StartOffset = p, st.StateEpoch, st.StartOffset
			rt.Partitions = append(rt.Partitions, rp)
		}
		req.Topics = append(req.Topics, rt)
	})
	return keyAnswers(ctx, r, keys, req, kerr.CoordinatorNotAvailable, func(resp kmsg.Response, answer func([16]byte, int32, *kerr.Error)) {
		for _, rt := range resp.(*kmsg.InitializeShareGroupStateResponse).Topics {
			for _, rp := range rt.Partitions {
				answer(rt.TopicID, rp.Partition, kerrOf(rp.ErrorCode))
			}
		}
	})
}

func (r *remoteStore) Delete(ctx context.Context, group string, keys []coordinator.ShareKey) map[coordinator.ShareKey]*kerr.Error {
	req := kmsg.NewPtrDeleteShareGroupStateRequest()
	req.GroupID = group
	byTopic(keys, func(tid [16]byte, parts []int32) {
		rt := kmsg.NewDeleteShareGroupStateRequestTopic()
		rt.TopicID = tid
		for _, p := range parts {
			rp := kmsg.NewDeleteShareGroupStateRequestTopicPartition()
			rp.Partition = p
			rt.Partitions = append(rt.Partitions, rp)
		}
		req.Topics = append(req.Topics, rt)
	})
	return keyAnswers(ctx, r, keys, req, kerr.CoordinatorNotAvailable, func(resp kmsg.Response, answer func([16]byte, int32, *kerr.Error)) {
		for _, rt := range resp.(*kmsg.DeleteShareGroupStateResponse).Topics {
			for _, rp := range rt.Partitions {
				answer(rt.TopicID, rp.Partition, kerrOf(rp.ErrorCode))
			}
		}
	})
}

// kerrOf is the *kerr.Error of a response error code (nil for 0).
func kerrOf(code int16) *kerr.Error {
	if code == 0 {
		return nil
	}
	if e, ok := kerr.ErrorForCode(code).(*kerr.Error); ok {
		return e
	}
	return kerr.UnknownServerError
}

// byTopic lists keys' partitions per topic id, in first-seen order.
func byTopic(keys []coordinator.ShareKey, fn func(id [16]byte, parts []int32)) {
	var order [][16]byte
	parts := map[[16]byte][]int32{}
	for _, k := range keys {
		if _, ok := parts[k.TopicID]; !ok {
			order = append(order, k.TopicID)
		}
		parts[k.TopicID] = append(parts[k.TopicID], k.Partition)
	}
	for _, id := range order {
		fn(id, parts[id])
	}
}

// keyAnswers sends req, which names keys, and maps each key to what its
// partition was answered (read from the response by answers); a key
// without an answer (the node could not be asked, or left it out) gets
// missing.
func keyAnswers[V any](ctx context.Context, r *remoteStore, keys []coordinator.ShareKey, req kmsg.Request, missing V, answers func(resp kmsg.Response, answer func(topic [16]byte, partition int32, v V))) map[coordinator.ShareKey]V {
	got := map[TopicPart]V{}
	if resp, err := r.request(ctx, req); err == nil {
		answers(resp, func(topic [16]byte, partition int32, v V) { got[TopicPart{topic, partition}] = v })
	}
	out := make(map[coordinator.ShareKey]V, len(keys))
	for _, k := range keys {
		v, ok := got[TopicPart{k.TopicID, k.Partition}]
		if !ok {
			v = missing
		}
		out[k] = v
	}
	return out
}
