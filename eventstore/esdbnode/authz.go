package esdbnode

import (
	"context"
	"errors"
	"strings"

	"github.com/EventStore/EventStore-Client-Go/v4/protos/persistent"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/streams"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/orderstore/orders/eventstore/esdbnode/auth"
	"github.com/orderstore/orders/eventstore/esdbnode/internal/rpcerr"
)

// This file is the secure node's authentication and authorization of gRPC
// calls (docs/protocol.md, section 7, "The secure node"): every call but
// ServerFeatures is authenticated from its Basic credentials (wrong ones:
// Unauthenticated, before the handler runs; none: anonymous), then checked
// against KurrentDB's default policy. Stream calls are checked on their first
// message, before the handler sees it, so a denied append writes nothing.

const (
	svcServerFeatures = "/event_store.client.server_features.ServerFeatures/"
	svcStreams        = "/event_store.client.streams.Streams/"
	svcPersistent     = "/event_store.client.persistent_subscriptions.PersistentSubscriptions/"
)

// errUnauthenticated is what wrong credentials get, as from KurrentDB's
// authentication middleware.
var errUnauthenticated = status.Error(codes.Unauthenticated, "Unauthenticated")

// authenticate reads the call's credentials: anonymous without (or with
// credentials KurrentDB's Basic provider would not claim), the user's
// principal with right ones, errUnauthenticated with wrong ones.
func authenticate(ctx context.Context, users *auth.Users) (context.Context, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	vals := md.Get("authorization")
	if len(vals) != 1 {
		return auth.WithPrincipal(ctx, auth.Principal{}), nil
	}
	user, pass, ok := auth.ParseBasic(vals[0])
	if !ok {
		return auth.WithPrincipal(ctx, auth.Principal{}), nil
	}
	p, err := users.Authenticate(ctx, user, pass)
	switch {
	case errors.Is(err, auth.ErrUnauthenticated):
		return nil, errUnauthenticated
	case err != nil:
		if ctx.Err() != nil {
			return nil, status.FromContextError(ctx.Err()).Err()
		}
		return nil, status.Error(codes.Unknown, "Internal server error")
	}
	return auth.WithPrincipal(ctx, p), nil
}

// methodRule is the default policy of a method before its stream is known.
func methodAllowed(method string, p auth.Principal) bool {
	switch strings.TrimPrefix(method, svcPersistent) {
	case "Create", "Update", "Delete", "ReplayParked", "RestartSubsystem":
		return p.IsOpsOrAdmin()
	}
	return !p.Anonymous()
}

// authUnary authenticates and authorizes unary calls.
func authUnary(users *auth.Users) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if strings.HasPrefix(info.FullMethod, svcServerFeatures) {
			return handler(ctx, req)
		}
		ctx, err := authenticate(ctx, users)
		if err != nil {
			return nil, err
		}
		p := auth.FromContext(ctx)
		if !methodAllowed(info.FullMethod, p) {
			return nil, denyUnary(ctx)
		}
		var stream string
		switch r := req.(type) {
		case *streams.DeleteReq:
			stream = string(r.GetOptions().GetStreamIdentifier().GetStreamName())
		case *streams.TombstoneReq:
			stream = string(r.GetOptions().GetStreamIdentifier().GetStreamName())
		default:
			return handler(ctx, req)
		}
		if stream != "" { // else the handler rejects the request
			if err := users.CheckStream(ctx, p, auth.Delete, stream); err != nil {
				return nil, checkErrUnary(ctx, err)
			}
		}
		return handler(ctx, req)
	}
}

func denyUnary(ctx context.Context) error {
	return checkErrUnary(ctx, auth.ErrAccessDenied)
}

// checkErrUnary answers a unary call refused by an access check (auth.ErrAccessDenied, or
// the error of reading the stream's ACL) through the node's one error mapping.
func checkErrUnary(ctx context.Context, err error) error {
	st, _ := rpcerr.Unary(ctx, answer(err))
	return st
}

// authStream authenticates and authorizes streaming calls; stream ACLs are
// checked on the first message.
func authStream(users *auth.Users) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		if strings.HasPrefix(info.FullMethod, svcServerFeatures) {
			return handler(srv, ss)
		}
		isAppend := info.FullMethod == svcStreams+"Append"
		ctx, err := authenticate(ss.Context(), users)
		if err != nil {
			if isAppend {
				drainAppend(ss)
			}
			return err
		}
		p := auth.FromContext(ctx)
		if !methodAllowed(info.FullMethod, p) {
			if isAppend {
				drainAppend(ss)
			}
			st, _ := rpcerr.Stream(ss, answer(auth.ErrAccessDenied))
			return st
		}
		return handler(srv, &authedStream{ServerStream: ss, ctx: ctx, users: users, p: p, isAppend: isAppend})
	}
}

// authedStream carries the principal and checks the first message.
type authedStream struct {
	grpc.ServerStream
	ctx      context.Context
	users    *auth.Users
	p        auth.Principal
	checked  bool
	isAppend bool
}

func (s *authedStream) Context() context.Context { return s.ctx }

func (s *authedStream) RecvMsg(m any) error {
	if err := s.ServerStream.RecvMsg(m); err != nil || s.checked {
		return err
	}
	s.checked = true
	action, stream, ok := firstMessageTarget(m)
	if !ok {
		return nil // malformed: the handler rejects it
	}
	if err := s.users.CheckStream(s.ctx, s.p, action, stream); err != nil {
		if s.isAppend {
			drainAppend(s.ServerStream)
		}
		st, _ := rpcerr.Stream(s.ServerStream, answer(err))
		return st
	}
	return nil
}

// drainMax bounds what drainAppend reads: the largest append, and a message.
const drainMax = MaxAppendSize + MaxReceiveMessageSize

// drainAppend reads what is left of a refused append (up to drainMax bytes)
// before the refusal is sent. The official client sends every event before
// it reads the answer, and reports a stream the server already ended as an
// unknown error ("could not send append request") instead of the status;
// draining lets it read the status, as it does from a real node, whose
// answer reaches it after its sends.
func drainAppend(ss grpc.ServerStream) {
	total := 0
	for total < drainMax {
		var m streams.AppendReq
		if err := ss.RecvMsg(&m); err != nil {
			return
		}
		total += proto.Size(&m)
	}
}

// firstMessageTarget is the stream and action of a call's first message.
func firstMessageTarget(m any) (auth.Action, string, bool) {
	switch r := m.(type) {
	case *streams.ReadReq:
		o := r.GetOptions()
		if o == nil {
			return 0, "", false
		}
		if o.GetAll() != nil {
			return auth.Read, "$all", true
		}
		name := string(o.GetStream().GetStreamIdentifier().GetStreamName())
		return auth.Read, name, name != ""
	case *streams.AppendReq:
		name := string(r.GetOptions().GetStreamIdentifier().GetStreamName())
		return auth.Write, name, name != ""
	case *persistent.ReadReq:
		o := r.GetOptions()
		if o == nil {
			return 0, "", false
		}
		if id, ok := o.GetStreamOption().(*persistent.ReadReq_Options_StreamIdentifier); ok {
			name := string(id.StreamIdentifier.GetStreamName())
			return auth.Read, name, name != ""
		}
		return auth.Read, "$all", true
	}
	return 0, "", false
}
