package eventstore

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/orderstore/orders/eventstore/esdbnode/esdbnodetest"
)

// TestTranslateRealClientErrors produces each client error for real, against the embedded
// node, and checks the sentinel it becomes, including the cases the client wraps with %w
// (where esdb.FromError would say "unknown").
func TestTranslateRealClientErrors(t *testing.T) {
	srv := esdbnodetest.Start(t)
	client, err := Connect(srv.ConnectionString())
	require.NoError(t, err)
	t.Cleanup(func() { _ = client.Close() })
	ctx := t.Context()
	ev := func() esdb.EventData {
		return esdb.EventData{EventID: uuid.New(), EventType: "t", ContentType: esdb.ContentTypeJson, Data: []byte(`{}`)}
	}

	_, err = client.AppendToStream(ctx, "s1", esdb.AppendToStreamOptions{}, ev())
	require.NoError(t, err)
	_, err = client.TombstoneStream(ctx, "dead", esdb.TombstoneStreamOptions{})
	require.NoError(t, err)

	tests := []struct {
		name string
		op   func() error
		want error
	}{
		{"read missing stream", func() error {
			rs, err := client.ReadStream(ctx, "missing", esdb.ReadStreamOptions{}, 10)
			if err != nil {
				return err
			}
			defer rs.Close()
			_, err = rs.Recv()
			return err
		}, ErrStreamNotFound},
		{"append wrong expected version", func() error {
			_, err := client.AppendToStream(ctx, "s1", esdb.AppendToStreamOptions{ExpectedRevision: esdb.NoStream{}}, ev())
			return err
		}, ErrWrongExpectedVersion},
		{"append to tombstoned stream", func() error {
			_, err := client.AppendToStream(ctx, "dead", esdb.AppendToStreamOptions{}, ev())
			return err
		}, ErrStreamDeleted},
		{"tombstone again (wrapped by the client)", func() error {
			_, err := client.TombstoneStream(ctx, "dead", esdb.TombstoneStreamOptions{})
			return err
		}, ErrStreamDeleted},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.op()
			require.Error(t, err)
			got := translate(ctx, "op", err)
			require.ErrorIs(t, got, tc.want)
			_, leaked := errors.AsType[*esdb.Error](got)
			require.False(t, leaked, "client error type escaped: %v", got)
		})
	}
}

func TestTranslateWithoutNode(t *testing.T) {
	cancelled, cancel := context.WithCancel(t.Context())
	cancel()
	tests := []struct {
		name string
		ctx  context.Context
		err  error
		want error
	}{
		{"nil", t.Context(), nil, nil},
		{"raw unavailable status", t.Context(), status.Error(codes.Unavailable, "down"), ErrUnavailable},
		{"raw other status", t.Context(), status.Error(codes.Internal, "boom"), ErrEventStore},
		{"plain error", t.Context(), errors.New("boom"), ErrEventStore},
		{"unknown-code wrapper", t.Context(), func() error { e, _ := esdb.FromError(errors.New("x")); return fmt.Errorf("w: %w", e) }(), ErrEventStore},
		{"caller cancelled wins", cancelled, errors.New("rpc error: code = Canceled"), context.Canceled},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := translate(tc.ctx, "op", tc.err)
			if tc.want == nil {
				require.NoError(t, got)
				return
			}
			require.ErrorIs(t, got, tc.want)
		})
	}
}
