package esdbnode_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/shared"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/streams"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/orderstore/orders/eventstore/esdbnode"
	"github.com/orderstore/orders/eventstore/esdbnode/esdbnodetest"
)

// waitTimeout bounds every wait on the node in these tests.
const waitTimeout = 10 * time.Second

// recv returns the subscription's next message, failing the test if none
// arrives within waitTimeout.
func recv(t *testing.T, sub *esdb.Subscription) *esdb.SubscriptionEvent {
	t.Helper()
	ch := make(chan *esdb.SubscriptionEvent, 1)
	go func() { ch <- sub.Recv() }()
	select {
	case ev := <-ch:
		return ev
	case <-time.After(waitTimeout):
		t.Fatal("no subscription message within", waitTimeout)
		return nil
	}
}

// recvEvent skips caught-up and checkpoint messages and returns the next event.
func recvEvent(t *testing.T, sub *esdb.Subscription) *esdb.ResolvedEvent {
	t.Helper()
	for {
		ev := recv(t, sub)
		switch {
		case ev.EventAppeared != nil:
			return ev.EventAppeared
		case ev.SubscriptionDropped != nil:
			t.Fatalf("subscription dropped: %v", ev.SubscriptionDropped.Error)
		}
	}
}

func jsonEvent(typ string, n int) esdb.EventData {
	return esdb.EventData{
		EventID:     uuid.New(),
		EventType:   typ,
		ContentType: esdb.ContentTypeJson,
		Data:        fmt.Appendf(nil, `{"n":%d}`, n),
		Metadata:    []byte(`{"m":true}`),
	}
}

func TestLifecycle(t *testing.T) {
	srv, err := esdbnode.New(esdbnode.Config{Addr: "127.0.0.1:0", DataDir: t.TempDir()})
	require.NoError(t, err)
	require.Empty(t, srv.Addr(), "Addr before Start")
	require.Nil(t, srv.Log(), "Log before Start")

	require.NoError(t, srv.Start())
	t.Cleanup(func() { _ = srv.Close() })
	addr := srv.Addr()
	_, port, err := net.SplitHostPort(addr)
	require.NoError(t, err)
	require.NotEqual(t, "0", port)
	require.Equal(t, "esdb://"+addr+"?tls=false", srv.ConnectionString())
	require.NotNil(t, srv.Log())
	require.ErrorIs(t, srv.Start(), esdbnode.ErrStarted)
	require.ErrorIs(t, srv.Handle("GET /x", http.NotFoundHandler()), esdbnode.ErrStarted)

	require.NoError(t, srv.Close())
	require.NoError(t, srv.Close(), "second Close")
	require.ErrorIs(t, srv.Start(), esdbnode.ErrClosed)
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err == nil {
		conn.Close()
		t.Fatal("port still accepts connections after Close")
	}
}

func TestCloseWithoutStart(t *testing.T) {
	srv, err := esdbnode.New(esdbnode.Config{Addr: "127.0.0.1:0", DataDir: t.TempDir()})
	require.NoError(t, err)
	require.NoError(t, srv.Close())
	require.ErrorIs(t, srv.Start(), esdbnode.ErrClosed)
}

func TestRestartKeepsDataAndSeedsOnce(t *testing.T) {
	dir := t.TempDir()
	run := func() []string {
		srv, err := esdbnode.New(esdbnode.Config{Addr: "127.0.0.1:0", DataDir: dir})
		require.NoError(t, err)
		require.NoError(t, srv.Start())
		defer func() { require.NoError(t, srv.Close()) }()
		client := esdbnodetest.Client(t, srv)
		rs, err := client.ReadStream(t.Context(), "$users", esdb.ReadStreamOptions{}, 10)
		require.NoError(t, err)
		defer rs.Close()
		var logins []string
		for {
			ev, err := rs.Recv()
			if errors.Is(err, io.EOF) {
				return logins
			}
			require.NoError(t, err)
			require.Equal(t, "$User", ev.Event.EventType)
			var u struct {
				LoginName string `json:"loginName"`
			}
			require.NoError(t, json.Unmarshal(ev.Event.Data, &u))
			logins = append(logins, u.LoginName)
		}
	}
	require.Equal(t, []string{"ops", "admin"}, run())
	require.Equal(t, []string{"ops", "admin"}, run(), "after restart: seeded once")
}

func TestServerVersionSeenByClient(t *testing.T) {
	srv := esdbnodetest.Start(t)
	client := esdbnodetest.Client(t, srv)
	v, err := client.GetServerVersion()
	require.NoError(t, err)
	require.Equal(t, esdb.ServerVersion{Major: 24, Minor: 10, Patch: 0}, *v)
}

func TestHTTPOnTheGRPCPort(t *testing.T) {
	srv, err := esdbnode.New(esdbnode.Config{Addr: "127.0.0.1:0", DataDir: t.TempDir()})
	require.NoError(t, err)
	require.NoError(t, srv.Handle("GET /extra", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "extra route")
	})))
	require.NoError(t, srv.Start())
	t.Cleanup(func() { require.NoError(t, srv.Close()) })

	get := func(t *testing.T, path string) (*http.Response, []byte) {
		t.Helper()
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://"+srv.Addr()+path, nil)
		require.NoError(t, err)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp, body
	}
	t.Run("health live", func(t *testing.T) {
		resp, body := get(t, "/health/live")
		require.Equal(t, http.StatusNoContent, resp.StatusCode)
		require.Empty(t, body)
	})
	t.Run("info", func(t *testing.T) {
		resp, body := get(t, "/info")
		require.Equal(t, http.StatusOK, resp.StatusCode)
		require.Equal(t, "application/json", resp.Header.Get("Content-Type"))
		var info struct {
			ESVersion string          `json:"esVersion"`
			State     string          `json:"state"`
			Features  map[string]bool `json:"features"`
			Auth      struct {
				Type string `json:"type"`
			} `json:"authentication"`
		}
		require.NoError(t, json.Unmarshal(body, &info))
		require.Equal(t, "24.10.0", info.ESVersion)
		require.Equal(t, "leader", info.State)
		require.NotNil(t, info.Features)
		require.Equal(t, "insecure", info.Auth.Type)
	})
	t.Run("unknown path", func(t *testing.T) {
		resp, _ := get(t, "/nope")
		require.Equal(t, http.StatusNotFound, resp.StatusCode)
	})
	t.Run("extra route", func(t *testing.T) {
		resp, body := get(t, "/extra")
		require.Equal(t, http.StatusOK, resp.StatusCode)
		require.Equal(t, "extra route", string(body))
	})
	t.Run("short request then close", func(t *testing.T) {
		// Fewer bytes than the HTTP/2 preface, then EOF: still answered by HTTP.
		conn, err := net.DialTimeout("tcp", srv.Addr(), waitTimeout)
		require.NoError(t, err)
		defer conn.Close()
		require.NoError(t, conn.SetDeadline(time.Now().Add(waitTimeout)))
		_, err = io.WriteString(conn, "GET /nope HTTP/1.0\r\n\r\n")
		require.NoError(t, err)
		require.NoError(t, conn.(*net.TCPConn).CloseWrite())
		reply, err := io.ReadAll(conn)
		require.NoError(t, err)
		require.True(t, bytes.HasPrefix(reply, []byte("HTTP/1.0 404")), "reply %q", reply)
	})
	t.Run("grpc on the same port", func(t *testing.T) {
		client := esdbnodetest.Client(t, srv)
		v, err := client.GetServerVersion()
		require.NoError(t, err)
		require.Equal(t, 24, v.Major)
	})
}

func TestAppendReadSubscribe(t *testing.T) {
	srv := esdbnodetest.Start(t)
	client := esdbnodetest.Client(t, srv)
	ctx := t.Context()
	const stream = "order-1"

	sub, err := client.SubscribeToStream(ctx, stream, esdb.SubscribeToStreamOptions{From: esdb.Start{}})
	require.NoError(t, err)
	t.Cleanup(func() { _ = sub.Close() })
	allSub, err := client.SubscribeToAll(ctx, esdb.SubscribeToAllOptions{
		From:   esdb.Start{},
		Filter: &esdb.SubscriptionFilter{Type: esdb.StreamFilterType, Prefixes: []string{"order-"}},
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = allSub.Close() })

	events := []esdb.EventData{jsonEvent("OrderPlaced", 0), jsonEvent("OrderPaid", 1)}
	res, err := client.AppendToStream(ctx, stream, esdb.AppendToStreamOptions{ExpectedRevision: esdb.NoStream{}}, events...)
	require.NoError(t, err)
	require.Equal(t, uint64(1), res.NextExpectedVersion)
	require.Greater(t, res.CommitPosition, uint64(0))
	require.Equal(t, res.CommitPosition, res.PreparePosition)

	_, err = client.AppendToStream(ctx, stream, esdb.AppendToStreamOptions{ExpectedRevision: esdb.NoStream{}}, jsonEvent("OrderPaid", 9))
	esErr, ok := esdb.FromError(err)
	require.False(t, ok)
	require.Equal(t, esdb.ErrorCodeWrongExpectedVersion, esErr.Code())

	rs, err := client.ReadStream(ctx, stream, esdb.ReadStreamOptions{From: esdb.Start{}}, 10)
	require.NoError(t, err)
	defer rs.Close()
	for i, want := range events {
		got, err := rs.Recv()
		require.NoError(t, err)
		require.Equal(t, want.EventID, got.Event.EventID)
		require.Equal(t, want.EventType, got.Event.EventType)
		require.Equal(t, "application/json", got.Event.ContentType)
		require.Equal(t, want.Data, got.Event.Data)
		require.Equal(t, want.Metadata, got.Event.UserMetadata)
		require.Equal(t, uint64(i), got.Event.EventNumber)
		require.Equal(t, stream, got.Event.StreamID)
		require.WithinDuration(t, time.Now(), got.Event.CreatedDate, time.Minute)
	}
	_, err = rs.Recv()
	require.ErrorIs(t, err, io.EOF)

	_, err = client.ReadStream(ctx, "no-such-stream", esdb.ReadStreamOptions{}, 1)
	if err == nil {
		var rs2 *esdb.ReadStream
		rs2, err = client.ReadStream(ctx, "no-such-stream", esdb.ReadStreamOptions{}, 1)
		require.NoError(t, err)
		defer rs2.Close()
		_, err = rs2.Recv()
	}
	esErr, _ = esdb.FromError(err)
	require.Equal(t, esdb.ErrorCodeResourceNotFound, esErr.Code())

	// Catch-up then live, on both subscriptions.
	for i := range events {
		require.Equal(t, events[i].EventID, recvEvent(t, sub).Event.EventID)
		require.Equal(t, events[i].EventID, recvEvent(t, allSub).Event.EventID)
	}
	live := jsonEvent("OrderShipped", 2)
	_, err = client.AppendToStream(ctx, stream, esdb.AppendToStreamOptions{ExpectedRevision: esdb.Revision(1)}, live)
	require.NoError(t, err)
	_, err = client.AppendToStream(ctx, "customer-1", esdb.AppendToStreamOptions{}, jsonEvent("Other", 0))
	require.NoError(t, err)
	got := recvEvent(t, sub)
	require.Equal(t, live.EventID, got.Event.EventID)
	require.Equal(t, uint64(2), got.Event.EventNumber)
	require.Equal(t, live.EventID, recvEvent(t, allSub).Event.EventID)
}

func TestCloseEndsOpenSubscription(t *testing.T) {
	srv := esdbnodetest.Start(t)
	client := esdbnodetest.Client(t, srv)
	sub, err := client.SubscribeToAll(t.Context(), esdb.SubscribeToAllOptions{From: esdb.End{}})
	require.NoError(t, err)
	t.Cleanup(func() { _ = sub.Close() })
	require.NotNil(t, recv(t, sub).CaughtUp, "expected caught_up first")

	closed := make(chan error, 1)
	go func() { closed <- srv.Close() }()

	ev := recv(t, sub)
	require.NotNil(t, ev.SubscriptionDropped, "expected the subscription to end")
	require.Equal(t, codes.Unavailable, status.Code(ev.SubscriptionDropped.Error), "drop error %v", ev.SubscriptionDropped.Error)
	select {
	case err := <-closed:
		require.NoError(t, err)
	case <-time.After(waitTimeout):
		t.Fatal("Close did not return")
	}
}

func TestCloseWaitsForInFlightRead(t *testing.T) {
	srv := esdbnodetest.Start(t)
	client := esdbnodetest.Client(t, srv)
	ctx := t.Context()
	const (
		stream   = "big"
		batches  = 8
		perBatch = 200
		size     = 4 << 10 // 8 × 200 × 4 KiB = 6.4 MB, far beyond gRPC's flow-control windows
	)
	payload := bytes.Repeat([]byte("x"), size)
	for range batches {
		evs := make([]esdb.EventData, perBatch)
		for i := range evs {
			evs[i] = esdb.EventData{EventID: uuid.New(), EventType: "Blob", ContentType: esdb.ContentTypeBinary, Data: payload}
		}
		_, err := client.AppendToStream(ctx, stream, esdb.AppendToStreamOptions{}, evs...)
		require.NoError(t, err)
	}

	rs, err := client.ReadStream(ctx, stream, esdb.ReadStreamOptions{}, batches*perBatch)
	require.NoError(t, err)
	defer rs.Close()
	_, err = rs.Recv()
	require.NoError(t, err)

	closed := make(chan error, 1)
	go func() { closed <- srv.Close() }()
	// Wait until Close has begun: the port stops accepting.
	deadline := time.Now().Add(waitTimeout)
	for {
		conn, err := net.DialTimeout("tcp", srv.Addr(), time.Second)
		if err != nil {
			break
		}
		conn.Close()
		require.True(t, time.Now().Before(deadline), "listener still open")
		time.Sleep(10 * time.Millisecond) // polling a condition with a deadline
	}
	select {
	case err := <-closed:
		t.Fatalf("Close returned (%v) while a read was still streaming", err)
	default:
	}

	n := 1
	for {
		ev, err := rs.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err, "read cut off after %d events", n)
		require.Equal(t, uint64(n), ev.Event.EventNumber)
		n++
	}
	require.Equal(t, batches*perBatch, n)
	select {
	case err := <-closed:
		require.NoError(t, err)
	case <-time.After(waitTimeout):
		t.Fatal("Close did not return after the read finished")
	}
}

// The server must keep running after a client cancels a call mid-stream.
func TestCancelledSubscriptionLeavesServerUsable(t *testing.T) {
	srv := esdbnodetest.Start(t)
	client := esdbnodetest.Client(t, srv)
	ctx, cancel := context.WithCancel(t.Context())
	sub, err := client.SubscribeToStream(ctx, "s", esdb.SubscribeToStreamOptions{})
	require.NoError(t, err)
	require.NotNil(t, recv(t, sub).CaughtUp)
	cancel()
	require.NotNil(t, recv(t, sub).SubscriptionDropped)
	_, err = client.AppendToStream(t.Context(), "s", esdb.AppendToStreamOptions{}, jsonEvent("E", 0))
	require.NoError(t, err)
}

func TestFilteredSubscriptionCheckpoints(t *testing.T) {
	srv := esdbnodetest.Start(t)
	client := esdbnodetest.Client(t, srv)
	ctx := t.Context()
	_, err := client.AppendToStream(ctx, "a", esdb.AppendToStreamOptions{}, jsonEvent("E", 0), jsonEvent("E", 1))
	require.NoError(t, err)
	last, err := client.ReadAll(ctx, esdb.ReadAllOptions{Direction: esdb.Backwards, From: esdb.End{}}, 1)
	require.NoError(t, err)
	head, err := last.Recv()
	require.NoError(t, err)
	last.Close()

	// Nothing matches; a window of 1 × multiplier 1 checkpoints after every record.
	sub, err := client.SubscribeToAll(ctx, esdb.SubscribeToAllOptions{
		From:               esdb.Start{},
		MaxSearchWindow:    1,
		CheckpointInterval: 1,
		Filter:             &esdb.SubscriptionFilter{Type: esdb.EventFilterType, Prefixes: []string{"no-such-type"}},
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = sub.Close() })

	var prev uint64
	next := func() (checkpoint uint64, caughtUp bool) {
		ev := recv(t, sub)
		switch {
		case ev.EventAppeared != nil:
			t.Fatalf("filtered-out event delivered: %s", ev.EventAppeared.Event.EventType)
		case ev.SubscriptionDropped != nil:
			t.Fatalf("dropped: %v", ev.SubscriptionDropped.Error)
		case ev.CaughtUp != nil:
			return 0, true
		}
		require.NotNil(t, ev.CheckPointReached)
		p := ev.CheckPointReached.Commit
		require.Greater(t, p, prev, "checkpoints must increase")
		require.Equal(t, p, ev.CheckPointReached.Prepare)
		prev = p
		return p, false
	}
	n := 0
	for {
		_, caughtUp := next()
		if caughtUp {
			break
		}
		n++
	}
	require.GreaterOrEqual(t, n, 2, "one checkpoint per scanned record")
	require.Equal(t, head.OriginalEvent().Position.Commit, prev, "last catch-up checkpoint is the head")

	res, err := client.AppendToStream(ctx, "b", esdb.AppendToStreamOptions{}, jsonEvent("E", 2), jsonEvent("E", 3))
	require.NoError(t, err)
	for prev < res.CommitPosition {
		if _, caughtUp := next(); caughtUp {
			t.Fatal("caught_up sent twice")
		}
	}
	require.Equal(t, res.CommitPosition, prev)
}

func TestSubscriptionRejectsZeroMultiplier(t *testing.T) {
	srv := esdbnodetest.Start(t)
	conn, err := grpc.NewClient(srv.Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	rs, err := streams.NewStreamsClient(conn).Read(t.Context(), &streams.ReadReq{Options: &streams.ReadReq_Options{
		StreamOption: &streams.ReadReq_Options_All{All: &streams.ReadReq_Options_AllOptions{
			AllOption: &streams.ReadReq_Options_AllOptions_Start{Start: &shared.Empty{}},
		}},
		CountOption: &streams.ReadReq_Options_Subscription{Subscription: &streams.ReadReq_Options_SubscriptionOptions{}},
		FilterOption: &streams.ReadReq_Options_Filter{Filter: &streams.ReadReq_Options_FilterOptions{
			Filter: &streams.ReadReq_Options_FilterOptions_EventType{EventType: &streams.ReadReq_Options_FilterOptions_Expression{Prefix: []string{"x"}}},
			Window: &streams.ReadReq_Options_FilterOptions_Max{Max: 32},
		}},
		UuidOption: &streams.ReadReq_Options_UUIDOption{Content: &streams.ReadReq_Options_UUIDOption_Structured{Structured: &shared.Empty{}}},
	}})
	require.NoError(t, err)
	_, err = rs.Recv()
	require.Equal(t, codes.InvalidArgument, status.Code(err), "got %v", err)
}

func TestCloseEndsPersistentSubscriptionConsumer(t *testing.T) {
	srv := esdbnodetest.Start(t)
	client := esdbnodetest.Client(t, srv)
	require.NoError(t, client.CreatePersistentSubscription(t.Context(), "s", "g", esdb.PersistentStreamSubscriptionOptions{}))
	sub, err := client.SubscribeToPersistentSubscription(t.Context(), "s", "g", esdb.SubscribeToPersistentSubscriptionOptions{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = sub.Close() })

	closed := make(chan error, 1)
	go func() { closed <- srv.Close() }()
	dropped := make(chan *esdb.PersistentSubscriptionEvent, 1)
	go func() { dropped <- sub.Recv() }()
	// Well within Close's 5 s grace: the consumer is ended, not waited for.
	const limit = 3 * time.Second
	select {
	case err := <-closed:
		require.NoError(t, err)
	case <-time.After(limit):
		t.Fatal("Close waited for a connected persistent-subscription consumer")
	}
	select {
	case ev := <-dropped:
		require.NotNil(t, ev.SubscriptionDropped)
	case <-time.After(waitTimeout):
		t.Fatal("consumer not dropped")
	}
}
