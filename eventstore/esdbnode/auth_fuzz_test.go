package esdbnode_test

import (
	"context"
	"crypto/tls"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/protos/shared"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/streams"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/orderstore/orders/eventstore/esdbnode/esdbnodetest"
)

// FuzzAuthorizationHeader sends any authorization header to a secure node:
// the answer is a read (right credentials), Unauthenticated (Basic with wrong
// ones) or PermissionDenied (anything else is anonymous), never a panic or
// another error, and the node keeps serving.
func FuzzAuthorizationHeader(f *testing.F) {
	certs := esdbnodetest.NewCerts(f)
	srv := esdbnodetest.StartSecure(f, certs)
	conn, err := grpc.NewClient(srv.Addr(), grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{InsecureSkipVerify: true}))) //nolint:gosec // test CA
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = conn.Close() })
	client := streams.NewStreamsClient(conn)
	read := func(header string) error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		ctx = metadata.AppendToOutgoingContext(ctx, "authorization", header)
		call, err := client.Read(ctx, &streams.ReadReq{Options: &streams.ReadReq_Options{
			StreamOption: &streams.ReadReq_Options_Stream{Stream: &streams.ReadReq_Options_StreamOptions{
				StreamIdentifier: &shared.StreamIdentifier{StreamName: []byte("fuzz")},
				RevisionOption:   &streams.ReadReq_Options_StreamOptions_Start{Start: &shared.Empty{}},
			}},
			CountOption: &streams.ReadReq_Options_Count{Count: 1},
			UuidOption:  &streams.ReadReq_Options_UUIDOption{Content: &streams.ReadReq_Options_UUIDOption_String_{String_: &shared.Empty{}}},
		}})
		if err != nil {
			return err
		}
		for {
			if _, err := call.Recv(); err != nil {
				if err == io.EOF {
					return nil
				}
				return err
			}
		}
	}
	for _, seed := range []string{
		"Basic YWRtaW46Y2hhbmdlaXQ=", // admin:changeit
		"Basic YWRtaW46d3Jvbmc=",     // admin:wrong
		"Basic YWRtaW4=",             // no colon
		"Basic !!!", "Bearer x", "basic YWRtaW46Y2hhbmdlaXQ=", "", "Basic ", "Basic Og==",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, header string) {
		err := read(header)
		switch status.Code(err) {
		case codes.OK, codes.Unauthenticated, codes.PermissionDenied:
		case codes.Internal:
			// grpc-go refuses to send a header value that is not valid
			// HTTP/2 (the call never reaches the node).
			if s, _ := status.FromError(err); s != nil && !isClientSideHeaderError(s.Message()) {
				t.Fatalf("header %q: %v", header, err)
			}
		default:
			t.Fatalf("header %q: %v", header, err)
		}
		if err := read("Basic YWRtaW46Y2hhbmdlaXQ="); err != nil {
			t.Fatalf("after header %q the node no longer serves admin: %v", header, err)
		}
	})
}

func isClientSideHeaderError(msg string) bool {
	for _, s := range []string{"header field", "invalid", "non-printable"} {
		if strings.Contains(strings.ToLower(msg), s) {
			return true
		}
	}
	return false
}
