package broker

// Metadata (key 3), v0-v13 on every listener.
//
// Brokers with an endpoint on the listener asked through, topics and partition
// leaders from the latest metadata image, auto-creating missing topics when
// allowed. Deviation: at most ten topics are auto-created per request (see
// maxAutoCreatePerRequest).

import (
	"context"
	"errors"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoalmq/shoal/acl"
	"github.com/shoalmq/shoal/raftmeta"
)

func (s *Server) handleMetadata(ctx context.Context, rc *reqCtx, req *kmsg.MetadataRequest) (kmsg.Response, error) {
	resp := s.metadata(ctx, rc, req)
	if req.Topics != nil && s.multiNode() && s.controller.AwaitGoneLeaders(ctx, s.meta.Image(), resp) {
		resp = s.metadata(ctx, rc, req)
	}
	metadataAuthorizedOperations(rc.conn, req, resp)
	return resp, nil
}

// metadataAuthorizedOperations answers Metadata v8+ asking for the
// operations the client may perform on the cluster (v8-v10) or on each
// topic answered by name, as Kafka does.
func metadataAuthorizedOperations(c *conn, req *kmsg.MetadataRequest, r *kmsg.MetadataResponse) {
	if req.Version < 8 {
		return
	}
	if req.Version <= 10 && req.IncludeClusterAuthorizedOperations {
		r.AuthorizedOperations = c.clusterAuthorizedOperations("Metadata")
	}
	if !req.IncludeTopicAuthorizedOperations {
		return
	}
	for i := range r.Topics {
		if name := r.Topics[i].Topic; name != nil {
			r.Topics[i].AuthorizedOperations = c.authorizedOperations(acl.Resource{Type: acl.ResourceTopic, Name: *name}, "Metadata")
		}
	}
}

// maxAutoCreatePerRequest bounds the topics one Metadata request may
// auto-create. Kafka creates every missing topic a request names (bounded
// only by the controller mutation quota, off by default); one request naming
// thousands of names would then create thousands of topics. Here the first
// ten are created and the rest answer UNKNOWN_TOPIC_OR_PARTITION, which
// clients retry after their metadata backoff, so a producer starting on
// many new topics still gets all of them, ten per round trip, while the
// creation rate stays bounded. Auto-created topics also pass every
// CreateTopics limit (partitions per request and per broker).
const maxAutoCreatePerRequest = 10

// metadata answers a Metadata request from the latest image, creating
// missing topics first when allowed (see maxAutoCreatePerRequest).
func (s *Server) metadata(ctx context.Context, rc *reqCtx, req *kmsg.MetadataRequest) *kmsg.MetadataResponse {
	resp := req.ResponseKind().(*kmsg.MetadataResponse)
	img := s.meta.Image()
	all := req.Topics == nil || (req.Version == 0 && len(req.Topics) == 0)
	autoCreate := s.cfg.AutoCreateTopics && (req.Version < 4 || req.AllowAutoTopicCreation)

	if !all {
		// Create missing topics first, all in one controller round. An
		// internal topic is made by its coordinator, with the partitions
		// and compaction it needs, as Kafka's auto-creation does.
		var create []raftmeta.CreateTopicRequest
		createErrs := map[string]error{}
		for _, rt := range req.Topics {
			if !autoCreate || rt.Topic == nil || img.Topics[*rt.Topic] != nil || raftmeta.ValidateTopicName(*rt.Topic) != nil {
				continue
			}
			name := *rt.Topic
			if ensure := s.internalTopicCreator(name); ensure != nil {
				if err := ensure(ctx); err != nil {
					createErrs[name] = err
				}
				continue
			}
			if len(create) < maxAutoCreatePerRequest && !slices.ContainsFunc(create, func(c raftmeta.CreateTopicRequest) bool { return c.Name == name }) {
				create = append(create, raftmeta.CreateTopicRequest{Name: name, NumPartitions: -1, ReplicationFactor: -1})
			}
		}
		if len(create) > 0 {
			for _, r := range s.controller.CreateTopics(ctx, create) {
				if r.Err != nil && !errors.Is(r.Err, kerr.TopicAlreadyExists) {
					createErrs[r.Name] = r.Err
				}
			}
		}
		img = s.meta.Image()
		for _, rt := range req.Topics {
			var t *raftmeta.Topic
			if rt.Topic != nil {
				t = img.Topics[*rt.Topic]
			} else {
				t = img.TopicByID(rt.TopicID)
			}
			mt := kmsg.NewMetadataResponseTopic()
			mt.Topic, mt.TopicID = rt.Topic, rt.TopicID
			switch {
			case t != nil:
				s.describeTopic(&mt, t)
			case rt.Topic == nil:
				mt.ErrorCode = kerr.UnknownTopicID.Code
			case raftmeta.ValidateTopicName(*rt.Topic) != nil:
				// Whether or not auto-creation is on, as Kafka
				// answers: clients give up on this error at once,
				// where they retry an unknown topic.
				mt.ErrorCode = kerr.InvalidTopicException.Code
			case createErrs[*rt.Topic] != nil:
				mt.ErrorCode = errorCode(createErrs[*rt.Topic])
			default:
				mt.ErrorCode = kerr.UnknownTopicOrPartition.Code
			}
			resp.Topics = append(resp.Topics, mt)
		}
	} else {
		for _, t := range img.Topics {
			mt := kmsg.NewMetadataResponseTopic()
			s.describeTopic(&mt, t)
			resp.Topics = append(resp.Topics, mt)
		}
		sortBy(resp.Topics, func(t kmsg.MetadataResponseTopic) string { return *t.Topic })
	}

	resp.Brokers = s.brokerList(img, rc.conn.listener)
	cid := img.ClusterID
	resp.ClusterID = &cid
	resp.ControllerID = s.clientControllerID(img)
	return resp
}

// clientControllerID is the controller id to tell clients: the active
// controller when it is a broker they can reach, otherwise this node, which
// forwards admin requests to the controller (as Kafka brokers do when the
// controllers are a separate quorum).
func (s *Server) clientControllerID(img *raftmeta.Image) int32 {
	id := s.meta.LeaderID()
	if b := img.Brokers[id]; b != nil && !b.Fenced {
		return id
	}
	return s.cfg.NodeID
}

func (s *Server) describeTopic(mt *kmsg.MetadataResponseTopic, t *raftmeta.Topic) {
	name := t.Name
	mt.Topic = &name
	mt.TopicID = t.ID
	mt.IsInternal = raftmeta.IsInternalTopic(t.Name)
	for i, ps := range t.Partitions {
		mp := kmsg.NewMetadataResponseTopicPartition()
		mp.Partition = int32(i)
		mp.Leader = ps.Leader
		mp.LeaderEpoch = ps.LeaderEpoch
		mp.Replicas = ps.Replicas
		mp.ISR = ps.ISR
		if ps.Leader < 0 {
			mp.ErrorCode = kerr.LeaderNotAvailable.Code
		}
		mt.Partitions = append(mt.Partitions, mp)
	}
}

// brokerList returns the unfenced brokers with their endpoint on the named
// listener (clients must reach every broker through the listener they used).
func (s *Server) brokerList(img *raftmeta.Image, listener string) []kmsg.MetadataResponseBroker {
	out, _ := s.listBrokers(img, listener, false)
	return out
}

// listBrokers lists the brokers with an endpoint on listener, fenced ones
// too when includeFenced is set (DescribeCluster v2, KIP-1073); fenced
// holds the ids of those.
func (s *Server) listBrokers(img *raftmeta.Image, listener string, includeFenced bool) (out []kmsg.MetadataResponseBroker, fenced map[int32]bool) {
	fenced = map[int32]bool{}
	for _, b := range img.Brokers {
		if b.Fenced {
			if !includeFenced {
				continue
			}
			fenced[b.ID] = true
		}
		for _, ep := range b.Endpoints {
			if ep.Listener != listener {
				continue
			}
			mb := kmsg.NewMetadataResponseBroker()
			mb.NodeID, mb.Host, mb.Port = b.ID, ep.Host, ep.Port
			if b.Rack != "" {
				rack := b.Rack
				mb.Rack = &rack
			}
			out = append(out, mb)
		}
	}
	sortBy(out, func(b kmsg.MetadataResponseBroker) int32 { return b.NodeID })
	return out, fenced
}

func (s *Server) topicDefaults() raftmeta.Defaults {
	return raftmeta.Defaults{NumPartitions: s.cfg.NumPartitions, ReplicationFactor: s.cfg.DefaultReplication}
}

// requestTopic finds the topic a Produce or Fetch request names: by id from
// the version on which the request carries topic ids (v13 for both), else
// by name. nil: no such topic.
func requestTopic(img *raftmeta.Image, byID bool, name string, id [16]byte) *raftmeta.Topic {
	if byID {
		return img.TopicByID(id)
	}
	return img.Topics[name]
}
