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
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/orderstore/orders/eventstore/esdbnode/auth"
	"github.com/orderstore/orders/eventstore/esdbnode/eventlog"
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

// errorStatus is the one mapping from the node's errors (the log's, request
// validation's, context's) to a gRPC status and the trailers EventStoreDB
// sends with it. known is false for errors no rule covers (status Unknown);
// the caller logs those.
func errorStatus(err error) (st *status.Status, trailers metadata.MD, known bool) {
	var (
		wev *eventlog.WrongExpectedVersionError
		sd  *eventlog.StreamDeletedError
	)
	if s, ok := status.FromError(err); ok {
		return s, nil, true // already a status (e.g. errShuttingDown)
	}
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return status.FromContextError(err), nil, true
	case errors.As(err, &sd):
		return status.New(codes.FailedPrecondition, fmt.Sprintf("Event stream '%s' is deleted.", sd.Stream)),
			metadata.Pairs(trException, excStreamDeleted, trStreamName, sd.Stream), true
	case errors.As(err, &wev):
		return status.New(codes.FailedPrecondition, wev.Error()),
			metadata.Pairs(
				trException, excWrongExpected,
				trStreamName, wev.Stream,
				trExpectedVersion, strconv.FormatInt(expectedVersion(wev.Expected), 10),
				trActualVersion, strconv.FormatInt(wev.Current, 10),
			), true
	case errors.Is(err, auth.ErrAccessDenied):
		return status.New(codes.PermissionDenied, "Access Denied"), metadata.Pairs(trException, excAccessDenied), true
	case errors.Is(err, ErrAppendTooLarge):
		return status.New(codes.InvalidArgument, fmt.Sprintf("Maximum Append Size of %d Exceeded.", MaxAppendSize)),
			metadata.Pairs(trException, excMaxAppendSize, trMaxAppendSize, strconv.Itoa(MaxAppendSize)), true
	case errors.Is(err, ErrMissingMetadata):
		return status.New(codes.InvalidArgument, "Required Metadata Properties Missing: type, content-type"),
			metadata.Pairs(trException, excMissingRequiredMeta, trRequiredMetadata, "type,content-type"), true
	case errors.Is(err, ErrInvalidRequest), errors.Is(err, eventlog.ErrInvalid):
		return status.New(codes.InvalidArgument, err.Error()), nil, true
	case errors.Is(err, eventlog.ErrStreamNotFound):
		return status.New(codes.NotFound, err.Error()), nil, true
	case errors.Is(err, eventlog.ErrClosed):
		return status.New(codes.Unavailable, "server is shutting down"), nil, true
	default:
		return status.New(codes.Unknown, err.Error()), nil, false
	}
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
	st, md, known := errorStatus(err)
	if !known && !clientEnded(ctx, err) {
		lg.Error("esdbnode: call failed", "method", method, "err", err)
	}
	if md != nil {
		_ = grpc.SetTrailer(ctx, md)
	}
	return st.Err()
}

// streamError turns err into the status error of a streaming call, setting its trailers.
func streamError(ss grpc.ServerStream, lg *slog.Logger, method string, err error) error {
	st, md, known := errorStatus(err)
	if !known && !clientEnded(ss.Context(), err) {
		lg.Error("esdbnode: call failed", "method", method, "err", err)
	}
	if md != nil {
		ss.SetTrailer(md)
	}
	return st.Err()
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
