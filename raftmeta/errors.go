package raftmeta

import (
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
)

// Error is a failure with a Kafka error code and a human-readable message.
// The broker puts Code into the response's error code and Message into its
// ErrorMessage field. errors.Is(err, kerr.X) works through Unwrap.
type Error struct {
	Code    *kerr.Error
	Message string
}

func (e *Error) Error() string {
	if e.Message == "" {
		return e.Code.Message
	}
	return e.Code.Message + ": " + e.Message
}

func (e *Error) Unwrap() error { return e.Code }

func errorf(code *kerr.Error, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// KafkaError splits err into a Kafka error code and message for a response.
// nil maps to (nil, ""); an error without a Kafka code maps to
// UNKNOWN_SERVER_ERROR.
func KafkaError(err error) (*kerr.Error, string) {
	if err == nil {
		return nil, ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code, e.Message
	}
	var k *kerr.Error
	if errors.As(err, &k) {
		return k, ""
	}
	return kerr.UnknownServerError, err.Error()
}

var (
	// ErrNotController is returned by Propose (and the Controller) on a node
	// that is not the raft leader. Kafka clients retry NOT_CONTROLLER.
	ErrNotController = &Error{Code: kerr.NotController, Message: "this node is not the active controller"}
	// ErrClosed is returned for work submitted to, or pending in, a closed
	// node. It carries NOT_CONTROLLER so clients retry elsewhere.
	ErrClosed = &Error{Code: kerr.NotController, Message: "metadata node is closed"}
	// ErrLeadershipLost is returned to proposals pending when the node stops
	// being leader. The outcome is unknown: the entry may still commit under
	// the next leader.
	ErrLeadershipLost = &Error{Code: kerr.NotController, Message: "leadership changed while the proposal was pending; its outcome is unknown"}
)
