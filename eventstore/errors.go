package eventstore

import (
	"context"
	"errors"
	"fmt"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/orderstore/orders/aggregate"
)

var (
	// ErrOrderNotFound: the order's stream does not exist (the repository's form of
	// ErrStreamNotFound). It is the aggregate's sentinel, so
	// errors.Is(err, aggregate.ErrOrderNotFound) holds whichever layer noticed.
	ErrOrderNotFound = aggregate.ErrOrderNotFound
	// ErrStreamNotFound: a read found no such stream (never written, or soft-deleted).
	ErrStreamNotFound = errors.New("eventstore: stream not found")
	// ErrUnavailable: the node cannot be reached, the client's connection is closed, or the
	// call ran out of time.
	ErrUnavailable = errors.New("eventstore: node unavailable")
	// ErrStreamDeleted: the stream was hard-deleted (tombstoned).
	ErrStreamDeleted = errors.New("eventstore: stream deleted")
	// ErrWrongExpectedVersion: an append found the stream at another revision than expected.
	// Returned wrapped in a *WrongExpectedVersionError.
	ErrWrongExpectedVersion = errors.New("eventstore: wrong expected version")
	// ErrConcurrency: concurrent writers kept winning; the repository gave up after its
	// configured number of attempts. Wraps the last *WrongExpectedVersionError.
	ErrConcurrency = errors.New("eventstore: too many concurrent modifications")
	// ErrMalformedEvent: a stored event cannot be decoded (not JSON, bad metadata, unknown
	// type). The aggregate's decoding error is wrapped as well.
	ErrMalformedEvent = errors.New("eventstore: malformed event")
	// ErrInvalidConnectionString: Connect was given a string the client cannot parse.
	ErrInvalidConnectionString = errors.New("eventstore: invalid connection string")
	// ErrInvalidConfig: a configuration value is out of range.
	ErrInvalidConfig = errors.New("eventstore: invalid configuration")
	// ErrEventStore: any other error reported by the node or the client.
	ErrEventStore = errors.New("eventstore: event store error")
)

// Revisions with a special meaning in WrongExpectedVersionError.
const (
	NoRevision      int64 = -1 // the stream does not exist
	RevisionUnknown int64 = -2 // not known
)

// WrongExpectedVersionError reports an append that expected Stream at revision Expected
// (NoRevision: the stream must not exist). The official client reports the actual revision
// only inside a message, so Actual is the revision found by the reload that followed, or
// RevisionUnknown.
type WrongExpectedVersionError struct {
	Stream   string
	Expected int64
	Actual   int64
}

func (e *WrongExpectedVersionError) Error() string {
	return fmt.Sprintf("eventstore: wrong expected version on %s: expected %s, found %s",
		e.Stream, revisionString(e.Expected), revisionString(e.Actual))
}

// Is makes errors.Is(err, ErrWrongExpectedVersion) hold.
func (e *WrongExpectedVersionError) Is(target error) bool { return target == ErrWrongExpectedVersion }

func revisionString(r int64) string {
	switch r {
	case NoRevision:
		return "no stream"
	case RevisionUnknown:
		return "unknown"
	}
	return fmt.Sprint(r)
}

// translate turns an error of the official client into one of this package's sentinels. It is
// the only place that looks at client error codes. The client's error is kept as text, not
// wrapped, so its type does not escape this package. ctx is the caller's context: when it is
// done, its error wins, since the client reports cancellation as an unknown error.
func translate(ctx context.Context, op string, err error) error {
	if err == nil {
		return nil
	}
	if ctxErr := ctx.Err(); ctxErr != nil {
		return fmt.Errorf("eventstore: %s: %w", op, ctxErr)
	}
	code, ok := clientCode(err)
	if !ok {
		// Some paths return the raw gRPC status (opening a read, dropped subscriptions).
		switch status.Code(err) {
		case codes.Unavailable, codes.DeadlineExceeded:
			return fmt.Errorf("%w: %s: %v", ErrUnavailable, op, err)
		}
		return fmt.Errorf("%w: %s: %v", ErrEventStore, op, err)
	}
	var sentinel error
	switch code {
	case esdb.ErrorCodeResourceNotFound:
		sentinel = ErrStreamNotFound
	case esdb.ErrorUnavailable, esdb.ErrorCodeConnectionClosed, esdb.ErrorCodeDeadlineExceeded:
		sentinel = ErrUnavailable
	case esdb.ErrorCodeStreamDeleted:
		sentinel = ErrStreamDeleted
	case esdb.ErrorCodeWrongExpectedVersion:
		sentinel = ErrWrongExpectedVersion
	default:
		sentinel = ErrEventStore
	}
	return fmt.Errorf("%w: %s: %v", sentinel, op, err)
}

// clientCode finds the client's *esdb.Error in err. esdb.FromError is not used for this: it
// returns false when there IS an error and uses a plain type assertion, so errors the client
// wraps with %w (Delete, Tombstone, some Append failures) would come back as "unknown".
// errors.As finds the innermost meaningful code in both the plain and the wrapped case.
func clientCode(err error) (esdb.ErrorCode, bool) {
	var esErr *esdb.Error
	if !errors.As(err, &esErr) {
		return 0, false
	}
	code := esErr.Code()
	// A wrapper with code Unknown may carry a more specific *esdb.Error inside.
	if code == esdb.ErrorCodeUnknown {
		if inner, ok := clientCode(esErr.Err()); ok {
			return inner, true
		}
	}
	return code, true
}

// Translate is translate for the packages that call the official client themselves (the
// projections' reads of $all): the client's error becomes one of this package's sentinels
// (ErrUnavailable, ErrStreamNotFound, ErrEventStore, ...) with the client's text, or ctx's
// error when ctx is done, so that no client error type escapes through them. op names
// the operation in the message. Translate(ctx, op, nil) is nil.
func Translate(ctx context.Context, op string, err error) error { return translate(ctx, op, err) }
