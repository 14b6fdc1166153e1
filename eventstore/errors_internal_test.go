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

// TestTranslateGroupErrors produces the persistent-subscription errors for real: a group
// created twice is ErrGroupExists, a missing one ErrGroupNotFound (on a stream and on $all),
// and neither wraps a type of the client.
func TestTranslateGroupErrors(t *testing.T) {
	srv := esdbnodetest.Start(t)
	client, err := Connect(srv.ConnectionString())
	require.NoError(t, err)
	t.Cleanup(func() { _ = client.Close() })
	ctx := t.Context()
	create := func() error {
		return client.CreatePersistentSubscription(ctx, "s1", "g", esdb.PersistentStreamSubscriptionOptions{})
	}
	require.NoError(t, create())
	tests := []struct {
		name string
		op   func() error
		want error
	}{
		{"create existing", create, ErrGroupExists},
		{"info of a missing stream group", func() error {
			_, err := client.GetPersistentSubscriptionInfo(ctx, "s1", "nope", esdb.GetPersistentSubscriptionOptions{})
			return err
		}, ErrGroupNotFound},
		{"info of a missing $all group", func() error {
			_, err := client.GetPersistentSubscriptionInfoToAll(ctx, "nope", esdb.GetPersistentSubscriptionOptions{})
			return err
		}, ErrGroupNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := TranslateGroupError(ctx, tt.name, tt.op())
			require.ErrorIs(t, err, tt.want)
			var esErr *esdb.Error
			require.False(t, errors.As(err, &esErr), "the client's error type escaped: %#v", err)
		})
	}
	require.NoError(t, TranslateGroupError(ctx, "nothing", nil))
}
