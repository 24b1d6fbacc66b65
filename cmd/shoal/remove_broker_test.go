package main

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// The controller lost its leadership while proposing the removal: the
// first answer is NOT_CONTROLLER, the new leader committed the entry
// anyway, so the retry finds the broker gone. The command has done what it
// was asked.
func TestUnregisterRetryFindsBrokerGone(t *testing.T) {
	codes := []int16{kerr.NotController.Code, kerr.BrokerIDNotRegistered.Code}
	var sent int
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := retryUnregister(ctx, 3, func(context.Context) (*kmsg.UnregisterBrokerResponse, error) {
		resp := kmsg.NewPtrUnregisterBrokerResponse()
		resp.ErrorCode = codes[min(sent, len(codes)-1)]
		sent++
		return resp, nil
	})
	if err != nil {
		t.Fatalf("retryUnregister: %v", err)
	}
	if sent != 2 {
		t.Fatalf("sent %d requests, want 2", sent)
	}
}

// A refusal that is not retriable is the command's failure.
func TestUnregisterRefused(t *testing.T) {
	var sent int
	err := retryUnregister(context.Background(), 3, func(context.Context) (*kmsg.UnregisterBrokerResponse, error) {
		sent++
		resp := kmsg.NewPtrUnregisterBrokerResponse()
		resp.ErrorCode = kerr.ClusterAuthorizationFailed.Code
		return resp, nil
	})
	if err == nil || sent != 1 {
		t.Fatalf("retryUnregister: err %v after %d requests, want a failure after 1", err, sent)
	}
}
