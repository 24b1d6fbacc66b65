package broker

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/shoalmq/shoal/log"
	"github.com/shoalmq/shoal/raftmeta"
)

// onDirOffline is the log manager's OnDirOffline: a log dir failed and its
// partitions answer KAFKA_STORAGE_ERROR. The replicas stop following their
// leaders (Reconcile skips offline partitions), and the controller is told
// (AssignReplicasToDirs to the LOST directory), so that it moves the
// leadership of those partitions to replicas on other brokers and takes
// this one out of their ISRs. It retries until the controller answers or
// the node stops; it runs on the log manager's goroutine.
func (s *Server) onDirOffline(f log.DirFailure) {
	select {
	case <-s.ready:
	case <-s.ctx.Done():
		return
	}
	if s.ctx.Err() != nil { // a write failed while shutting down
		return
	}
	s.applyImage()
	if len(f.Partitions) == 0 {
		return
	}
	parts := make([]raftmeta.TopicIDPartition, len(f.Partitions))
	names := make([]string, len(f.Partitions))
	for i, p := range f.Partitions {
		parts[i] = raftmeta.TopicIDPartition{TopicID: p.TopicID(), Partition: p.Index()}
		names[i] = fmt.Sprintf("%s-%d", p.Topic(), p.Index())
	}
	for {
		ctx, cancel := context.WithTimeout(s.ctx, 10*time.Second)
		errs, err := s.controller.ReplicasOffline(ctx, parts)
		cancel()
		if err == nil {
			s.log.Error(fmt.Sprintf("log directory %s is offline: %v; partitions moved: %s. Leadership and ISR membership went to their replicas on other brokers; free or replace the disk, then restart this broker to bring them back",
				f.Path, f.Cause, strings.Join(names, ", ")), "dir", f.Path, "errors", errors.Join(errs...))
			return
		}
		if s.ctx.Err() != nil {
			return
		}
		s.log.Warn("telling the controller of offline replicas failed; retrying", "dir", f.Path, "err", err)
		select {
		case <-s.ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
}
