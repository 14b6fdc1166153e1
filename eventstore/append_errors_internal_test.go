package eventstore

import (
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/orderstore/orders/eventstore/esdbnode/esdbnodetest"
	"github.com/orderstore/orders/eventstore/eventstoretest"
)

// streamLen reads how many events a stream has, directly from the node (-1: no stream).
func streamLen(ctx context.Context, client *esdb.Client, stream string) int {
	rs, err := client.ReadStream(ctx, stream, esdb.ReadStreamOptions{}, 1000)
	if err != nil {
		return -2
	}
	defer rs.Close()
	n := 0
	for {
		_, err := rs.Recv()
		if errors.Is(err, io.EOF) {
			return n
		}
		if err != nil {
			if e, ok := esdb.FromError(err); !ok && e.IsErrorCode(esdb.ErrorCodeResourceNotFound) {
				return -1
			}
			return -2
		}
		n++
	}
}

// TestTranslateAppendRealFailures produces each way an append can fail, for real, with the
// official client, and checks that "nothing was sent" and "sent, no answer" come out apart.
func TestTranslateAppendRealFailures(t *testing.T) {
	srv := esdbnodetest.Start(t)
	direct := esdbnodetest.Client(t, srv)
	ev := func() esdb.EventData {
		return esdb.EventData{EventID: uuid.New(), EventType: "t", ContentType: esdb.ContentTypeJson, Data: []byte(`{}`)}
	}
	appendVia := func(ctx context.Context, client *esdb.Client, stream string) error {
		_, err := client.AppendToStream(ctx, stream, esdb.AppendToStreamOptions{}, ev())
		return translateAppend(ctx, "append", err)
	}
	through := func(t *testing.T, p *eventstoretest.Proxy) *esdb.Client {
		c, err := Connect(p.ConnectionString())
		require.NoError(t, err)
		t.Cleanup(func() { _ = c.Close() })
		return c
	}

	t.Run("connection refused", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		addr := ln.Addr().String()
		require.NoError(t, ln.Close())
		c, err := Connect("esdb://" + addr + "?tls=false")
		require.NoError(t, err)
		t.Cleanup(func() { _ = c.Close() })
		err = appendVia(t.Context(), c, "refused")
		require.ErrorIs(t, err, ErrNotAppended)
		require.ErrorIs(t, err, ErrUnavailable)
		require.NotErrorIs(t, err, ErrOutcomeUnknown)
	})
	t.Run("client closed", func(t *testing.T) {
		c, err := Connect(srv.ConnectionString())
		require.NoError(t, err)
		require.NoError(t, c.Close())
		err = appendVia(t.Context(), c, "closed")
		require.ErrorIs(t, err, ErrNotAppended)
		require.NotErrorIs(t, err, ErrOutcomeUnknown)
	})
	t.Run("connection cut after the request", func(t *testing.T) {
		p := eventstoretest.NewProxy(t, srv.Addr())
		c := through(t, p)
		require.NoError(t, appendVia(t.Context(), c, "warm-up")) // connected
		p.CutRepliesWhen(func() bool { return streamLen(t.Context(), direct, "cut") > 0 })
		err := appendVia(t.Context(), c, "cut")
		require.ErrorIs(t, err, ErrOutcomeUnknown)
		require.NotErrorIs(t, err, ErrNotAppended)
		require.Equal(t, 1, p.Fired())
		require.Equal(t, 1, streamLen(t.Context(), direct, "cut"), "the node did write it")
		_, leaked := errors.AsType[*esdb.Error](err)
		require.False(t, leaked)
	})
	t.Run("reply dropped until the deadline", func(t *testing.T) {
		p := eventstoretest.NewProxy(t, srv.Addr())
		c := through(t, p)
		require.NoError(t, appendVia(t.Context(), c, "warm-up-2"))
		p.DropRepliesWhen(func() bool { return streamLen(t.Context(), direct, "dropped") > 0 })
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		err := appendVia(ctx, c, "dropped")
		require.ErrorIs(t, err, ErrOutcomeUnknown)
		require.Equal(t, 1, p.Fired())
		require.Equal(t, 1, streamLen(t.Context(), direct, "dropped"))
	})
	t.Run("the node's answers are decisions", func(t *testing.T) {
		_, err := direct.TombstoneStream(t.Context(), "gone", esdb.TombstoneStreamOptions{})
		require.NoError(t, err)
		err = appendVia(t.Context(), direct, "gone")
		require.ErrorIs(t, err, ErrStreamDeleted)
		require.NotErrorIs(t, err, ErrOutcomeUnknown)

		_, err = direct.AppendToStream(t.Context(), "exists", esdb.AppendToStreamOptions{}, ev())
		require.NoError(t, err)
		_, err = direct.AppendToStream(t.Context(), "exists", esdb.AppendToStreamOptions{ExpectedRevision: esdb.NoStream{}}, ev())
		err = translateAppend(t.Context(), "append", err)
		require.ErrorIs(t, err, ErrWrongExpectedVersion)
		require.NotErrorIs(t, err, ErrOutcomeUnknown)
	})
}
