package broker

// Authorization of the transaction APIs, as KafkaApis makes it: the
// transactional id first (WRITE to act in a transaction, DESCRIBE to see
// one), then the group of an offset commit, then each topic.

import (
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoalmq/shoal/acl"
)

var txnIDDenied = kerr.TransactionalIDAuthorizationFailed.Code

func refuseEndTxn(c *conn, req kmsg.Request) kmsg.Response {
	if c.may(req, acl.OpWrite, acl.ResourceTransactionalID, req.(*kmsg.EndTxnRequest).TransactionalID) {
		return nil
	}
	return refusedResponse(req, txnIDDenied)
}

func refuseAddOffsetsToTxn(c *conn, req kmsg.Request) kmsg.Response {
	r := req.(*kmsg.AddOffsetsToTxnRequest)
	if !c.may(req, acl.OpWrite, acl.ResourceTransactionalID, r.TransactionalID) {
		return refusedResponse(req, txnIDDenied)
	}
	if !c.may(req, acl.OpRead, acl.ResourceGroup, r.Group) {
		return refusedResponse(req, kerr.GroupAuthorizationFailed.Code)
	}
	return nil
}

// refuseTxnOffsetCommit refuses the whole commit without WRITE on the
// transactional id or READ on the group, with the code on every partition
// (the response has no other place for it).
func refuseTxnOffsetCommit(c *conn, req kmsg.Request) kmsg.Response {
	r := req.(*kmsg.TxnOffsetCommitRequest)
	var code int16
	switch {
	case !c.may(req, acl.OpWrite, acl.ResourceTransactionalID, r.TransactionalID):
		code = txnIDDenied
	case !c.may(req, acl.OpRead, acl.ResourceGroup, r.Group):
		code = kerr.GroupAuthorizationFailed.Code
	default:
		return nil
	}
	resp := r.ResponseKind().(*kmsg.TxnOffsetCommitResponse)
	resp.SetVersion(r.Version)
	for _, t := range r.Topics {
		resp.Topics = append(resp.Topics, txnOffsetCommitRefusal(t, code))
	}
	return resp
}

func txnOffsetCommitRefusal(t kmsg.TxnOffsetCommitRequestTopic, code int16) kmsg.TxnOffsetCommitResponseTopic {
	rt := kmsg.NewTxnOffsetCommitResponseTopic()
	rt.Topic, rt.TopicID = t.Topic, t.TopicID
	for _, p := range t.Partitions {
		rp := kmsg.NewTxnOffsetCommitResponseTopicPartition()
		rp.Partition, rp.ErrorCode = p.Partition, code
		rt.Partitions = append(rt.Partitions, rp)
	}
	return rt
}

func gateTxnOffsetCommit(c *conn, req kmsg.Request) func(kmsg.Response) {
	r := req.(*kmsg.TxnOffsetCommitRequest)
	img := c.srv.meta.Image()
	return splitGate(&r.Topics, func(t kmsg.TxnOffsetCommitRequestTopic) bool {
		return c.mayTopic(req, img, acl.OpRead, t.Topic, t.TopicID)
	}, func(t kmsg.TxnOffsetCommitRequestTopic) kmsg.TxnOffsetCommitResponseTopic {
		return txnOffsetCommitRefusal(t, topicDenied)
	}, func(resp kmsg.Response) *[]kmsg.TxnOffsetCommitResponseTopic {
		return &resp.(*kmsg.TxnOffsetCommitResponse).Topics
	})
}

// refuseAddPartitionsToTxn: before v4 (sent by producers) the
// transactional id needs WRITE, and so does every topic; when one topic is
// refused Kafka adds none, answering the others OPERATION_NOT_ATTEMPTED.
// From v4 only brokers send it (CLUSTER_ACTION).
func refuseAddPartitionsToTxn(c *conn, req kmsg.Request) kmsg.Response {
	r := req.(*kmsg.AddPartitionsToTxnRequest)
	if r.Version >= 4 {
		if c.may(req, acl.OpClusterAction, acl.ResourceCluster, acl.ClusterName) {
			return nil
		}
		return refusedResponse(req, kerr.ClusterAuthorizationFailed.Code)
	}
	txnAllowed := c.may(req, acl.OpWrite, acl.ResourceTransactionalID, r.TransactionalID)
	topicAllowed := map[string]bool{}
	anyRefused := !txnAllowed
	for _, t := range r.Topics {
		if txnAllowed {
			topicAllowed[t.Topic] = c.may(req, acl.OpWrite, acl.ResourceTopic, t.Topic)
			anyRefused = anyRefused || !topicAllowed[t.Topic]
		}
	}
	if !anyRefused {
		return nil
	}
	resp := r.ResponseKind().(*kmsg.AddPartitionsToTxnResponse)
	resp.SetVersion(r.Version)
	for _, t := range r.Topics {
		code := kerr.OperationNotAttempted.Code
		switch {
		case !txnAllowed:
			code = txnIDDenied
		case !topicAllowed[t.Topic]:
			code = topicDenied
		}
		rt := kmsg.NewAddPartitionsToTxnResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rp := kmsg.NewAddPartitionsToTxnResponseTopicPartition()
			rp.Partition, rp.ErrorCode = p, code
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp
}

func gateDescribeProducers(c *conn, req kmsg.Request) func(kmsg.Response) {
	r := req.(*kmsg.DescribeProducersRequest)
	return splitGate(&r.Topics, func(t kmsg.DescribeProducersRequestTopic) bool {
		return c.may(req, acl.OpRead, acl.ResourceTopic, t.Topic)
	}, func(t kmsg.DescribeProducersRequestTopic) kmsg.DescribeProducersResponseTopic {
		rt := kmsg.NewDescribeProducersResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rp := kmsg.NewDescribeProducersResponseTopicPartition()
			rp.Partition, rp.ErrorCode, rp.ErrorMessage = p, topicDenied, authFailed
			rt.Partitions = append(rt.Partitions, rp)
		}
		return rt
	}, func(resp kmsg.Response) *[]kmsg.DescribeProducersResponseTopic {
		return &resp.(*kmsg.DescribeProducersResponse).Topics
	})
}

// gateDescribeTransactions answers the transactional ids the principal
// may not describe with TRANSACTIONAL_ID_AUTHORIZATION_FAILED and, as
// Kafka does, leaves out of the others the topics the principal may not
// describe: a transaction's partitions would otherwise name topics that
// Metadata hides.
func gateDescribeTransactions(c *conn, req kmsg.Request) func(kmsg.Response) {
	r := req.(*kmsg.DescribeTransactionsRequest)
	refused := describeTransactionsIDGate(c, req, r)
	return func(resp kmsg.Response) {
		states := resp.(*kmsg.DescribeTransactionsResponse).TransactionStates
		mayDescribe := map[string]bool{}
		for i := range states {
			states[i].Topics = slices.DeleteFunc(states[i].Topics, func(t kmsg.DescribeTransactionsResponseTransactionStateTopic) bool {
				ok, seen := mayDescribe[t.Topic]
				if !seen {
					ok = c.may(req, acl.OpDescribe, acl.ResourceTopic, t.Topic)
					mayDescribe[t.Topic] = ok
				}
				return !ok
			})
		}
		if refused != nil {
			refused(resp)
		}
	}
}

// describeTransactionsIDGate takes the transactional ids the principal may
// not describe out of r and returns what answers them.
func describeTransactionsIDGate(c *conn, req kmsg.Request, r *kmsg.DescribeTransactionsRequest) func(kmsg.Response) {
	return splitGate(&r.TransactionalIDs, func(id string) bool {
		return c.may(req, acl.OpDescribe, acl.ResourceTransactionalID, id)
	}, func(id string) kmsg.DescribeTransactionsResponseTransactionState {
		st := kmsg.NewDescribeTransactionsResponseTransactionState()
		st.TransactionalID, st.ErrorCode, st.ProducerID, st.ProducerEpoch = id, txnIDDenied, -1, -1
		return st
	}, func(resp kmsg.Response) *[]kmsg.DescribeTransactionsResponseTransactionState {
		return &resp.(*kmsg.DescribeTransactionsResponse).TransactionStates
	})
}

// gateListTransactions leaves out the transactions the principal may not
// describe, without an audit line, as Kafka does.
func gateListTransactions(c *conn, req kmsg.Request) func(kmsg.Response) {
	sec, api := c.srv.sec, kmsg.NameForKey(req.Key())
	return func(resp kmsg.Response) {
		x := resp.(*kmsg.ListTransactionsResponse)
		x.TransactionStates = slices.DeleteFunc(x.TransactionStates, func(st kmsg.ListTransactionsResponseTransactionState) bool {
			return !sec.decide(c.principal, c.host, acl.OpDescribe, acl.Resource{Type: acl.ResourceTransactionalID, Name: st.TransactionalID}, api, false)
		})
	}
}
