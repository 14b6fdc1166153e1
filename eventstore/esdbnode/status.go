package esdbnode

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strconv"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/orderstore/orders/eventstore/esdbnode/auth"
	"github.com/orderstore/orders/eventstore/esdbnode/eventlog"
	"github.com/orderstore/orders/eventstore/esdbnode/internal/rpcerr"
)

// MaxAppendSize is the largest total of event data one append may carry
// (EventStoreDB's default MaxAppendSize).
const MaxAppendSize = 1024 * 1024

// Trailer keys and exception names of EventStoreDB (server Constants.cs).
const (
	trException            = "exception"
	trStreamName           = "stream-name"
	trExpectedVersion      = "expected-version"
	trActualVersion        = "actual-version"
	trMaxAppendSize        = "maximum-append-size"
	trRequiredMetadata     = "required-metadata-properties"
	excStreamDeleted       = "stream-deleted"
	excWrongExpected       = "wrong-expected-version"
	excMaxAppendSize       = "maximum-append-size-exceeded"
	excMissingRequiredMeta = "missing-required-metadata-property"
	excAccessDenied        = "access-denied"
)

// errShuttingDown ends calls (subscriptions) that the server's Close cut short.
var errShuttingDown = status.Error(codes.Unavailable, "server is shutting down")

// answer gives the node's own errors (the log's, request validation's) the
// status and trailers EventStoreDB sends with them; rpcerr, the one mapping
// from errors to statuses, does the rest (statuses, context errors, Unknown).
func answer(err error) error {
	var (
		wev *eventlog.WrongExpectedVersionError
		sd  *eventlog.StreamDeletedError
	)
	switch {
	case errors.As(err, &sd):
		return rpcerr.New(err, codes.FailedPrecondition, fmt.Sprintf("Event stream '%s' is deleted.", sd.Stream),
			trException, excStreamDeleted, trStreamName, sd.Stream)
	case errors.As(err, &wev):
		return rpcerr.New(err, codes.FailedPrecondition, wev.Error(),
			trException, excWrongExpected,
			trStreamName, wev.Stream,
			trExpectedVersion, strconv.FormatInt(expectedVersion(wev.Expected), 10),
			trActualVersion, strconv.FormatInt(wev.Current, 10))
	case errors.Is(err, auth.ErrAccessDenied):
		return rpcerr.New(err, codes.PermissionDenied, "Access Denied", trException, excAccessDenied)
	case errors.Is(err, ErrAppendTooLarge):
		return rpcerr.New(err, codes.InvalidArgument, fmt.Sprintf("Maximum Append Size of %d Exceeded.", MaxAppendSize),
			trException, excMaxAppendSize, trMaxAppendSize, strconv.Itoa(MaxAppendSize))
	case errors.Is(err, ErrMissingMetadata):
		return rpcerr.New(err, codes.InvalidArgument, "Required Metadata Properties Missing: type, content-type",
			trException, excMissingRequiredMeta, trRequiredMetadata, "type,content-type")
	case errors.Is(err, ErrInvalidRequest), errors.Is(err, eventlog.ErrInvalid):
		return rpcerr.New(err, codes.InvalidArgument, err.Error())
	case errors.Is(err, eventlog.ErrStreamNotFound):
		return rpcerr.New(err, codes.NotFound, err.Error())
	case errors.Is(err, eventlog.ErrClosed):
		return rpcerr.New(err, codes.Unavailable, "server is shutting down")
	}
	return err
}

// expectedVersion is EventStoreDB's long encoding of an expected version:
// -1 no stream, -2 any, -4 stream exists, else the revision.
func expectedVersion(e eventlog.Expected) int64 {
	switch e.Kind {
	case eventlog.ExpectNoStream:
		return -1
	case eventlog.ExpectAny:
		return -2
	case eventlog.ExpectStreamExists:
		return -4
	default:
		return int64(e.Revision)
	}
}

// unaryError turns err into the status error of a unary call, setting its trailers.
func unaryError(ctx context.Context, lg *slog.Logger, method string, err error) error {
	st, known := rpcerr.Unary(ctx, answer(err))
	if !known && !clientEnded(ctx, err) {
		lg.Error("esdbnode: call failed", "method", method, "err", err)
	}
	return st
}

// streamError turns err into the status error of a streaming call, setting its trailers.
func streamError(ss grpc.ServerStream, lg *slog.Logger, method string, err error) error {
	st, known := rpcerr.Stream(ss, answer(err))
	if !known && !clientEnded(ss.Context(), err) {
		lg.Error("esdbnode: call failed", "method", method, "err", err)
	}
	return st
}

// recoverUnary keeps a handler panic from reaching the client: it is logged
// and answered with status Unknown.
func recoverUnary(lg *slog.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
		defer func() {
			if r := recover(); r != nil {
				lg.Error("esdbnode: panic in handler", "method", info.FullMethod, "panic", r, "stack", string(debug.Stack()))
				resp, err = nil, status.Error(codes.Unknown, "internal error")
			}
		}()
		return handler(ctx, req)
	}
}

// recoverStream is recoverUnary for streaming calls.
func recoverStream(lg *slog.Logger) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) (err error) {
		defer func() {
			if r := recover(); r != nil {
				lg.Error("esdbnode: panic in handler", "method", info.FullMethod, "panic", r, "stack", string(debug.Stack()))
				err = status.Error(codes.Unknown, "internal error")
			}
		}()
		return handler(srv, ss)
	}
}

// psubReadMethod is the persistent-subscription consumer call, which lives
// until the client or the server ends it.
const psubReadMethod = "/event_store.client.persistent_subscriptions.PersistentSubscriptions/Read"

// endOnClose gives persistent-subscription consumer calls a context that is
// also cancelled when the server closes (base), so that Close's graceful
// stop does not wait its whole grace period for them. Other calls keep the
// client's context: in-flight reads and appends finish.
func endOnClose(base context.Context) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		if info.FullMethod != psubReadMethod {
			return handler(srv, ss)
		}
		ctx, cancel := context.WithCancel(ss.Context())
		defer cancel()
		stop := context.AfterFunc(base, cancel)
		defer stop()
		return handler(srv, &ctxStream{ServerStream: ss, ctx: ctx})
	}
}

type ctxStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *ctxStream) Context() context.Context { return s.ctx }

// clientEnded reports whether a call ended because its client cancelled it,
// let its deadline pass or went away: not an error of the node.
func clientEnded(ctx context.Context, err error) bool {
	if err == nil {
		return false
	}
	if ctx.Err() != nil {
		return true
	}
	switch status.Code(err) {
	case codes.Canceled, codes.DeadlineExceeded:
		return true
	}
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// logCancelUnary logs calls that their client ended at debug level, so that
// a client cannot write errors into the node's log by hanging up.
func logCancelUnary(lg *slog.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		resp, err := handler(ctx, req)
		if clientEnded(ctx, err) {
			lg.Debug("esdbnode: call ended by the client", "method", info.FullMethod, "err", err)
		}
		return resp, err
	}
}

// logCancelStream is logCancelUnary for streaming calls.
func logCancelStream(lg *slog.Logger) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		err := handler(srv, ss)
		if clientEnded(ss.Context(), err) {
			lg.Debug("esdbnode: call ended by the client", "method", info.FullMethod, "err", err)
		}
		return err
	}
}
