package broker

// The topic admin APIs, on every listener: CreateTopics (key 19) v2-v7,
// DeleteTopics (key 20) v1-v6, CreatePartitions (key 37) v0-v3.
//
// A node that is not the active controller relays the request to it
// unchanged (cluster.ControllerClient.ForwardAdmin), as Kafka brokers
// forward admin requests; the controller validates and commits through
// raft.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoalmq/shoal/raftmeta"
)

func (s *Server) handleCreateTopics(ctx context.Context, _ *reqCtx, req *kmsg.CreateTopicsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.CreateTopicsResponse)
	reqs := make([]raftmeta.CreateTopicRequest, 0, len(req.Topics))
	for _, rt := range req.Topics {
		ct := raftmeta.CreateTopicRequest{Name: rt.Topic, NumPartitions: rt.NumPartitions, ReplicationFactor: rt.ReplicationFactor}
		for _, a := range rt.ReplicaAssignment {
			ct.Assignments = append(ct.Assignments, raftmeta.PartitionAssignment{Partition: a.Partition, Replicas: a.Replicas})
		}
		if len(rt.Configs) > 0 {
			ct.Configs = make(map[string]*string, len(rt.Configs))
			for _, c := range rt.Configs {
				ct.Configs[c.Name] = c.Value
			}
		}
		reqs = append(reqs, ct)
	}
	results := s.ctrl.CreateTopics(ctx, reqs, s.topicDefaults(), req.ValidateOnly)
	for _, r := range results {
		rt := kmsg.NewCreateTopicsResponseTopic()
		rt.Topic = r.Name
		if r.Err != nil {
			rt.ErrorCode = errorCode(r.Err)
			rt.ErrorMessage = errorMessage(r.Err)
			rt.NumPartitions, rt.ReplicationFactor = -1, -1
			// Kafka answers a failed topic with an empty config
			// list, never null.
			rt.Configs = []kmsg.CreateTopicsResponseTopicConfig{}
		} else {
			rt.TopicID = r.ID
			rt.NumPartitions, rt.ReplicationFactor = r.NumPartitions, r.ReplicationFactor
			overrides := map[string]string{}
			for name, v := range reqs[indexOfTopic(reqs, r.Name)].Configs {
				if v != nil {
					overrides[name] = *v
				}
			}
			for _, e := range s.cfg.EffectiveTopicConfig(overrides).Sorted() {
				c := kmsg.NewCreateTopicsResponseTopicConfig()
				c.Name = e.Name
				v := e.Value
				c.Value = &v
				c.Source = int8(e.Source)
				rt.Configs = append(rt.Configs, c)
			}
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp, nil
}

func indexOfTopic(reqs []raftmeta.CreateTopicRequest, name string) int {
	for i, r := range reqs {
		if r.Name == name {
			return i
		}
	}
	return 0
}

func (s *Server) handleDeleteTopics(ctx context.Context, _ *reqCtx, req *kmsg.DeleteTopicsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.DeleteTopicsResponse)
	var names []string
	var ids [][16]byte
	if req.Version >= 6 {
		for _, t := range req.Topics {
			switch {
			case t.Topic != nil && t.TopicID != [16]byte{}:
				resp.Topics = append(resp.Topics, deleteTopicAnswer(t.Topic, t.TopicID, kerr.InvalidRequest.Code, kmsg.StringPtr("You may not specify both topic name and topic id.")))
			case t.Topic != nil:
				names = append(names, *t.Topic)
			case t.TopicID == [16]byte{}:
				resp.Topics = append(resp.Topics, deleteTopicAnswer(nil, t.TopicID, kerr.InvalidRequest.Code, kmsg.StringPtr("Neither topic name nor id were specified.")))
			default:
				ids = append(ids, t.TopicID)
			}
		}
	} else {
		names = req.TopicNames
	}
	if !s.cfg.DeleteTopicEnable {
		// Kafka refuses the whole request, every topic it names; versions
		// before 3 have no TOPIC_DELETION_DISABLED.
		code := kerr.TopicDeletionDisabled.Code
		if req.Version < 3 {
			code = kerr.InvalidRequest.Code
		}
		resp.Topics = resp.Topics[:0]
		for _, n := range req.TopicNames {
			resp.Topics = append(resp.Topics, deleteTopicAnswer(kmsg.StringPtr(n), [16]byte{}, code, nil))
		}
		for _, t := range req.Topics {
			resp.Topics = append(resp.Topics, deleteTopicAnswer(t.Topic, t.TopicID, code, nil))
		}
		return resp, nil
	}
	for _, r := range s.ctrl.DeleteTopics(ctx, names, ids) {
		var name *string
		if r.Name != "" {
			name = kmsg.StringPtr(r.Name)
		}
		resp.Topics = append(resp.Topics, deleteTopicAnswer(name, r.ID, errorCode(r.Err), errorMessage(r.Err)))
	}
	return resp, nil
}

// deleteTopicAnswer is one topic's answer to DeleteTopics: a topic named
// by name or (v6+) by id.
func deleteTopicAnswer(name *string, id [16]byte, code int16, message *string) kmsg.DeleteTopicsResponseTopic {
	rt := kmsg.NewDeleteTopicsResponseTopic()
	rt.Topic, rt.TopicID, rt.ErrorCode, rt.ErrorMessage = name, id, code, message
	return rt
}

func (s *Server) handleCreatePartitions(ctx context.Context, _ *reqCtx, req *kmsg.CreatePartitionsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.CreatePartitionsResponse)
	reqs := make([]raftmeta.CreatePartitionsRequest, 0, len(req.Topics))
	for _, rt := range req.Topics {
		cp := raftmeta.CreatePartitionsRequest{Topic: rt.Topic, Count: rt.Count}
		for _, a := range rt.Assignment {
			cp.Assignments = append(cp.Assignments, a.Replicas)
		}
		reqs = append(reqs, cp)
	}
	errs := s.ctrl.CreatePartitions(ctx, reqs, req.ValidateOnly)
	for i, rt := range req.Topics {
		r := kmsg.NewCreatePartitionsResponseTopic()
		r.Topic = rt.Topic
		r.ErrorCode = errorCode(errs[i])
		r.ErrorMessage = errorMessage(errs[i])
		resp.Topics = append(resp.Topics, r)
	}
	return resp, nil
}
