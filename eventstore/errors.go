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
	// ErrNotAppended: an append failed before its request was complete (connection refused,
	// connection closed, the stream could not be opened or a message could not be sent), so
	// the node cannot have written it: nothing was appended. Returned together with
	// ErrUnavailable (errors.Is holds for both).
	ErrNotAppended = errors.New("eventstore: not appended")
	// ErrOutcomeUnknown: an append's request was sent in full but no answer came (the
	// connection broke, or the time ran out, while waiting for the reply). The node may or may
	// not have written the events; reading the stream, or retrying the same command (see
	// Command), tells which.
	ErrOutcomeUnknown = errors.New("eventstore: outcome unknown")
	// ErrGroupNotFound: the persistent subscription group does not exist.
	ErrGroupNotFound = errors.New("eventstore: persistent subscription group not found")
	// ErrGroupExists: the persistent subscription group to create exists already.
	ErrGroupExists = errors.New("eventstore: persistent subscription group exists")
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

// translateAppend is translate for the error of one AppendToStream, telling "nothing was
// sent" from "sent, no answer". It relies on how the official client (v4) builds the error:
//
//   - before the request is complete (no connection: discovery failed or the client is
//     closed; the gRPC stream could not be opened; a message could not be sent), the node
//     cannot have written anything. The client then returns its *esdb.Error either wrapped
//     by fmt.Errorf ("could not construct append operation", "could not send append
//     request...") or directly with code ConnectionClosed, or with the discovery error
//     (which wraps the last gRPC error instead of being one).
//   - after the request was sent in full (CloseAndRecv), it returns the *esdb.Error
//     directly, around the gRPC status of the call. A status with trailers or a code the
//     node itself answers with (wrong expected version, stream deleted, invalid argument,
//     ...) is a decision: nothing was appended. Unavailable (the connection broke: EOF,
//     reset), DeadlineExceeded, Canceled and the client's Unknown around a non-status error
//     mean the reply was lost: the outcome is unknown.
//
// This is the only place that looks at that structure.
func translateAppend(ctx context.Context, op string, err error) error {
	if err == nil {
		return nil
	}
	esErr, direct := err.(*esdb.Error)
	if !direct {
		// Wrapped by the client: the request was never complete.
		return fmt.Errorf("%w: %w: %s: %v", ErrNotAppended, ErrUnavailable, op, clientText(ctx, err))
	}
	if esErr.Code() == esdb.ErrorCodeConnectionClosed {
		return fmt.Errorf("%w: %w: %s: %v", ErrNotAppended, ErrUnavailable, op, clientText(ctx, err))
	}
	st, isStatus := esErr.Err().(interface{ GRPCStatus() *status.Status })
	if !isStatus {
		// The discovery error wraps the last gRPC error: there was no connection to send on.
		if esErr.Code() == esdb.ErrorUnavailable || esErr.Code() == esdb.ErrorCodeDeadlineExceeded {
			return fmt.Errorf("%w: %w: %s: %v", ErrNotAppended, ErrUnavailable, op, clientText(ctx, err))
		}
		// The node's own answers without a status (wrong expected version, stream deleted
		// from the trailers) are decisions.
		return translate(ctx, op, err)
	}
	switch st.GRPCStatus().Code() {
	case codes.Unavailable, codes.DeadlineExceeded, codes.Canceled:
		return fmt.Errorf("%w: %s: %v", ErrOutcomeUnknown, op, clientText(ctx, err))
	}
	return translate(ctx, op, err)
}

// TranslateGroupError translates an error of the client's persistent-subscription calls
// (create, info, replay parked, subscribe), for the packages that make them with the client
// directly: the consumer loop and the CLI's subscriptions commands. A missing group is
// ErrGroupNotFound, an existing one ErrGroupExists; the rest is translated as for streams.
// op names the call, for the message. Like every error of this package, the result wraps no
// type of the client.
func TranslateGroupError(ctx context.Context, op string, err error) error {
	if err == nil || ctx.Err() != nil {
		return translate(ctx, op, err)
	}
	code, ok := clientCode(err)
	switch {
	case ok && code == esdb.ErrorCodeResourceNotFound, !ok && status.Code(err) == codes.NotFound:
		return fmt.Errorf("%w: %s: %v", ErrGroupNotFound, op, err)
	case ok && code == esdb.ErrorCodeResourceAlreadyExists, !ok && status.Code(err) == codes.AlreadyExists:
		return fmt.Errorf("%w: %s: %v", ErrGroupExists, op, err)
	}
	return translate(ctx, op, err)
}

// clientText is the client's error as text, with the caller's context error when that is
// what ended the call (the client reports it as an unknown or a deadline error).
func clientText(ctx context.Context, err error) string {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return ctxErr.Error() + " (" + err.Error() + ")"
	}
	return err.Error()
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
