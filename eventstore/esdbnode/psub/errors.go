package psub

import (
	"errors"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

var (
	// ErrNotFound: the group does not exist.
	ErrNotFound = errors.New("psub: persistent subscription does not exist")
	// ErrExists: a group with that key already exists.
	ErrExists = errors.New("psub: persistent subscription already exists")
	// ErrMaxSubscribers: the group already has max_subscriber_count consumers.
	ErrMaxSubscribers = errors.New("psub: maximum subscribers reached")
	// ErrInvalid: settings, start position or request the engine cannot take.
	ErrInvalid = errors.New("psub: invalid persistent subscription request")
	// ErrDropped: the server dropped the consumer (group updated, deleted,
	// subsystem restarted, engine closed, or the source stream deleted).
	ErrDropped = errors.New("psub: persistent subscription dropped")
	// ErrClosed: the engine is closed or not started.
	ErrClosed = errors.New("psub: closed")
)

// groupError carries the group identity and a reason with one of the sentinels.
type groupError struct {
	kind   error
	stream string
	group  string
	reason string
}

func (e *groupError) Error() string {
	if e.reason != "" {
		return fmt.Sprintf("%v: %s::%s: %s", e.kind, e.stream, e.group, e.reason)
	}
	return fmt.Sprintf("%v: %s::%s", e.kind, e.stream, e.group)
}

func (e *groupError) Unwrap() error { return e.kind }

func newGroupError(kind error, stream, group, reason string) error {
	return &groupError{kind: kind, stream: stream, group: group, reason: reason}
}

// toStatus maps an engine error to the gRPC status and trailers a real node
// sends (esdb-protocol.md 4.1). It is the only place that does so.
func toStatus(err error) (error, metadata.MD) {
	if err == nil {
		return nil, nil
	}
	var ge *groupError
	stream, group, reason := "", "", err.Error()
	if errors.As(err, &ge) {
		stream, group = ge.stream, ge.group
		if ge.reason != "" {
			reason = ge.reason
		}
	}
	pairs := func(exc string, extra ...string) metadata.MD {
		kv := append([]string{"exception", exc, "stream-name", stream, "group-name", group}, extra...)
		return metadata.Pairs(kv...)
	}
	switch {
	case errors.Is(err, ErrNotFound):
		return status.Errorf(codes.NotFound, "Subscription group '%s' on stream '%s' does not exist.", group, stream),
			pairs("persistent-subscription-does-not-exist")
	case errors.Is(err, ErrExists):
		return status.Errorf(codes.AlreadyExists, "Subscription group '%s' on stream '%s' exists.", group, stream),
			pairs("persistent-subscription-exists")
	case errors.Is(err, ErrMaxSubscribers):
		return status.Errorf(codes.FailedPrecondition, "Maximum subscriptions reached for subscription group '%s' on stream '%s.'", group, stream),
			pairs("maximum-subscribers-reached")
	case errors.Is(err, ErrDropped):
		return status.Errorf(codes.Canceled, "Subscription group '%s' on stream '%s' was dropped.", group, stream),
			pairs("persistent-subscription-dropped")
	case errors.Is(err, ErrInvalid), errors.Is(err, ErrClosed):
		return status.Errorf(codes.Internal, "Subscription group '%s' on stream '%s' failed: '%s'", group, stream, reason),
			pairs("persistent-subscription-failed", "reason", reason)
	default:
		return status.Errorf(codes.Internal, "Subscription group '%s' on stream '%s' failed: '%s'", group, stream, reason),
			pairs("persistent-subscription-failed", "reason", reason)
	}
}
