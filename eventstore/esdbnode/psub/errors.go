package psub

import (
	"errors"
	"fmt"

	"github.com/orderstore/orders/eventstore/esdbnode/internal/rpcerr"
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
	// ErrInvalidOptions: New was given Options out of range.
	ErrInvalidOptions = errors.New("psub: invalid options")
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

// GRPCStatus is the status a real node answers e with (docs/protocol.md,
// section 4); with Trailers, it makes e an rpcerr.Answer.
func (e *groupError) GRPCStatus() *status.Status {
	group, stream, reason := e.group, e.stream, e.reasonText()
	switch {
	case errors.Is(e.kind, ErrNotFound):
		return status.Newf(codes.NotFound, "Subscription group '%s' on stream '%s' does not exist.", group, stream)
	case errors.Is(e.kind, ErrExists):
		return status.Newf(codes.AlreadyExists, "Subscription group '%s' on stream '%s' exists.", group, stream)
	case errors.Is(e.kind, ErrMaxSubscribers):
		return status.Newf(codes.FailedPrecondition, "Maximum subscriptions reached for subscription group '%s' on stream '%s.'", group, stream)
	case errors.Is(e.kind, ErrDropped):
		return status.Newf(codes.Canceled, "Subscription group '%s' on stream '%s' was dropped.", group, stream)
	default: // ErrInvalid, ErrClosed, anything else
		return status.Newf(codes.Internal, "Subscription group '%s' on stream '%s' failed: '%s'", group, stream, reason)
	}
}

// Trailers are the trailers a real node sends with e's status.
func (e *groupError) Trailers() metadata.MD {
	pairs := func(exc string, extra ...string) metadata.MD {
		kv := append([]string{"exception", exc, "stream-name", e.stream, "group-name", e.group}, extra...)
		return metadata.Pairs(kv...)
	}
	switch {
	case errors.Is(e.kind, ErrNotFound):
		return pairs("persistent-subscription-does-not-exist")
	case errors.Is(e.kind, ErrExists):
		return pairs("persistent-subscription-exists")
	case errors.Is(e.kind, ErrMaxSubscribers):
		return pairs("maximum-subscribers-reached")
	case errors.Is(e.kind, ErrDropped):
		return pairs("persistent-subscription-dropped")
	default:
		return pairs("persistent-subscription-failed", "reason", e.reasonText())
	}
}

func (e *groupError) reasonText() string {
	if e.reason != "" {
		return e.reason
	}
	return e.Error()
}

var _ rpcerr.Answer = (*groupError)(nil)

// toStatus is the status error and trailers of an engine error, through
// rpcerr, the node's one mapping. An error without a group (a plain sentinel)
// is answered as a group error with no stream or group.
func toStatus(err error) (error, metadata.MD) {
	if err == nil {
		return nil, nil
	}
	var ge *groupError
	switch {
	case !errors.As(err, &ge):
		err = &groupError{kind: err, reason: err.Error()}
	case ge.reason == "":
		err = &groupError{kind: ge.kind, stream: ge.stream, group: ge.group, reason: err.Error()}
	}
	st, md, _ := rpcerr.Status(err)
	return st.Err(), md
}
