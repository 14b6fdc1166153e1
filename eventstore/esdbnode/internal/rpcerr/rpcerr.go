// Package rpcerr is the node's one way from an error to the gRPC status and
// trailers a real EventStoreDB answers with, shared by the Streams service
// (package esdbnode) and the persistent-subscription service (package psub).
//
// Contract: an error that knows its answer implements Answer (New builds
// one; psub's group errors implement it themselves); Status finds it with
// errors.As. An error that is already a gRPC status is answered as it is, a
// context error with its status (Canceled, DeadlineExceeded). Anything else
// is Unknown, and Status reports it as not known, so the caller logs it.
// Unary and Stream set the trailers on the call and return the status error.
package rpcerr

import (
	"context"
	"errors"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// Answer is an error that knows the status and trailers it is answered with.
type Answer interface {
	error
	GRPCStatus() *status.Status
	Trailers() metadata.MD
}

// answer is the Answer New builds.
type answer struct {
	st    *status.Status
	md    metadata.MD
	cause error
}

func (a *answer) Error() string              { return a.cause.Error() }
func (a *answer) Unwrap() error              { return a.cause }
func (a *answer) GRPCStatus() *status.Status { return a.st }
func (a *answer) Trailers() metadata.MD      { return a.md }

// New answers cause with code, msg and the trailers given as key, value pairs.
func New(cause error, code codes.Code, msg string, trailers ...string) Answer {
	var md metadata.MD
	if len(trailers) > 0 {
		md = metadata.Pairs(trailers...)
	}
	return &answer{st: status.New(code, msg), md: md, cause: cause}
}

// Status is the answer to err; known is false for an error no rule covers
// (answered Unknown with its text).
func Status(err error) (st *status.Status, trailers metadata.MD, known bool) {
	var a Answer
	if errors.As(err, &a) {
		return a.GRPCStatus(), a.Trailers(), true
	}
	if s, ok := status.FromError(err); ok {
		return s, nil, true // already a status (nil included: OK)
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return status.FromContextError(err), nil, true
	}
	return status.New(codes.Unknown, err.Error()), nil, false
}

// Unary is the status error of a unary call failing with err; it sets the
// trailers. known is as for Status.
func Unary(ctx context.Context, err error) (_ error, known bool) {
	st, md, known := Status(err)
	if md != nil {
		_ = grpc.SetTrailer(ctx, md)
	}
	return st.Err(), known
}

// Stream is Unary for a streaming call.
func Stream(ss grpc.ServerStream, err error) (_ error, known bool) {
	st, md, known := Status(err)
	if md != nil {
		ss.SetTrailer(md)
	}
	return st.Err(), known
}
