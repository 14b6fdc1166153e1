package contract

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/orderstore/orders/eventstore/esdbnode/esdbnodetest"
)

// envExternal names the environment variable that points the suite at an
// external node instead of an embedded one.
const envExternal = "ORDERS_TEST_ESDB"

// maxInt64 is EventStoreDB's long.MaxValue: the tombstone's revision and the
// "$tb" of a soft-deleted stream.
const maxInt64 = uint64(math.MaxInt64)

// target is the node under test as the official client reaches it.
type target struct {
	client   *esdb.Client
	connStr  string // connection string of the node
	external bool   // ORDERS_TEST_ESDB named an external node
}

// envSecure, set to 1, runs the suite against a secure embedded node (TLS
// with a CA and node certificate made by the test, admin:changeit).
// TestContractSecure sets it for a second run of the whole suite.
const envSecure = "ORDERS_TEST_SECURE"

// newTarget returns a client for the node under test: the external node named
// by ORDERS_TEST_ESDB, or a fresh embedded node, secure if ORDERS_TEST_SECURE
// is 1. Everything is closed by t.Cleanup.
func newTarget(t *testing.T) *target {
	t.Helper()
	if cs := os.Getenv(envExternal); cs != "" {
		return &target{client: dial(t, cs), connStr: cs, external: true}
	}
	if os.Getenv(envSecure) == "1" {
		certs := esdbnodetest.NewCerts(t)
		srv := esdbnodetest.StartSecure(t, certs)
		cs := esdbnodetest.SecureURL(srv, certs, "admin", "changeit")
		return &target{client: dial(t, cs), connStr: cs}
	}
	srv := esdbnodetest.Start(t)
	return &target{client: esdbnodetest.Client(t, srv), connStr: srv.ConnectionString()}
}

// dial opens an official client on a connection string.
func dial(t *testing.T, connStr string) *esdb.Client {
	t.Helper()
	return esdbnodetest.Dial(t, connStr)
}

// withParams appends query parameters to a connection string.
func withParams(connStr, params string) string {
	if strings.Contains(connStr, "?") {
		return connStr + "&" + params
	}
	return connStr + "?" + params
}

// streamName returns a stream name unique to this run, so that the suite can
// share an external node.
func streamName(label string) string {
	return "contract-" + label + "-" + strings.ReplaceAll(uuid.NewString(), "-", "")
}

// opCtx is a context for one client operation of a test.
func opCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// jsonEvent is a JSON event with a fresh id.
func jsonEvent(typ, data string) esdb.EventData {
	return esdb.EventData{EventID: uuid.New(), EventType: typ, ContentType: esdb.ContentTypeJson, Data: []byte(data)}
}

// events returns n JSON events of type typ with fresh ids.
func events(n int, typ string) []esdb.EventData {
	out := make([]esdb.EventData, n)
	for i := range out {
		out[i] = jsonEvent(typ, fmt.Sprintf(`{"i":%d}`, i))
	}
	return out
}

// appendOK appends and fails the test on error.
func appendOK(t *testing.T, c *esdb.Client, stream string, exp esdb.ExpectedRevision, evs ...esdb.EventData) *esdb.WriteResult {
	t.Helper()
	res, err := c.AppendToStream(opCtx(t), stream, esdb.AppendToStreamOptions{ExpectedRevision: exp}, evs...)
	require.NoError(t, err, "append to %s", stream)
	return res
}

// code returns the esdb error code carried by err, looking through wrapping
// (Delete and Tombstone wrap it), or -1 when err holds no *esdb.Error.
func code(err error) esdb.ErrorCode {
	var e *esdb.Error
	if errors.As(err, &e) {
		return e.Code()
	}
	return -1
}

// requireCode asserts that err carries the esdb error code want.
func requireCode(t *testing.T, err error, want esdb.ErrorCode) {
	t.Helper()
	require.Error(t, err)
	require.Equal(t, want, code(err), "error %v", err)
}

// drain reads a ReadStream to its end.
func drain(rs *esdb.ReadStream) ([]*esdb.ResolvedEvent, error) {
	defer rs.Close()
	var out []*esdb.ResolvedEvent
	for {
		ev, err := rs.Recv()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, ev)
	}
}

// readStream reads a stream and returns its events and the terminal error.
func readStream(t *testing.T, c *esdb.Client, stream string, opts esdb.ReadStreamOptions, count uint64) ([]*esdb.ResolvedEvent, error) {
	t.Helper()
	rs, err := c.ReadStream(opCtx(t), stream, opts, count)
	if err != nil {
		return nil, err
	}
	return drain(rs)
}

// readStreamOK reads a stream and fails the test on error.
func readStreamOK(t *testing.T, c *esdb.Client, stream string, opts esdb.ReadStreamOptions, count uint64) []*esdb.ResolvedEvent {
	t.Helper()
	evs, err := readStream(t, c, stream, opts, count)
	require.NoError(t, err, "read %s", stream)
	return evs
}

// readAllOK reads $all and fails the test on error.
func readAllOK(t *testing.T, c *esdb.Client, opts esdb.ReadAllOptions, count uint64) []*esdb.ResolvedEvent {
	t.Helper()
	rs, err := c.ReadAll(opCtx(t), opts, count)
	require.NoError(t, err)
	evs, err := drain(rs)
	require.NoError(t, err)
	return evs
}

// revisions lists the original events' revisions.
func revisions(evs []*esdb.ResolvedEvent) []uint64 {
	out := make([]uint64, len(evs))
	for i, e := range evs {
		out[i] = e.OriginalEvent().EventNumber
	}
	return out
}

// ids lists the original events' ids.
func ids(evs []*esdb.ResolvedEvent) []uuid.UUID {
	out := make([]uuid.UUID, len(evs))
	for i, e := range evs {
		out[i] = e.OriginalEvent().EventID
	}
	return out
}

// dataIDs lists the ids of proposed events.
func dataIDs(evs []esdb.EventData) []uuid.UUID {
	out := make([]uuid.UUID, len(evs))
	for i, e := range evs {
		out[i] = e.EventID
	}
	return out
}

// ofStream keeps the events of one stream.
func ofStream(evs []*esdb.ResolvedEvent, stream string) []*esdb.ResolvedEvent {
	var out []*esdb.ResolvedEvent
	for _, e := range evs {
		if e.OriginalEvent().StreamID == stream {
			out = append(out, e)
		}
	}
	return out
}

// lastPosition is the position of the newest event in $all.
func lastPosition(t *testing.T, c *esdb.Client) esdb.Position {
	t.Helper()
	evs := readAllOK(t, c, esdb.ReadAllOptions{Direction: esdb.Backwards, From: esdb.End{}}, 1)
	require.Len(t, evs, 1, "$all is not empty on any node (it holds at least the seeded $users)")
	return evs[0].OriginalEvent().Position
}

// subEvent is what a subscription delivered, with a terminal error if any.
type subEvent = esdb.SubscriptionEvent

// subReader pumps a subscription into a channel so that tests can wait on it
// with deadlines.
type subReader struct {
	sub *esdb.Subscription
	ch  chan *subEvent
}

// pump starts reading sub; the subscription is closed by t.Cleanup.
func pump(t *testing.T, sub *esdb.Subscription) *subReader {
	r := &subReader{sub: sub, ch: make(chan *subEvent, 1024)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(r.ch)
		for {
			ev := sub.Recv()
			r.ch <- ev
			if ev.SubscriptionDropped != nil {
				return
			}
		}
	}()
	t.Cleanup(func() {
		_ = sub.Close()
		for range r.ch {
			// drain until the pump exits
		}
		<-done
	})
	return r
}

// next waits for the next subscription message.
func (r *subReader) next(t *testing.T, within time.Duration) *subEvent {
	t.Helper()
	select {
	case ev, ok := <-r.ch:
		require.True(t, ok, "subscription channel closed")
		return ev
	case <-time.After(within):
		t.Fatalf("no subscription message within %v", within)
		return nil
	}
}

// nextEvent waits for the next event, skipping checkpoints and caught-up
// markers; a drop fails the test.
func (r *subReader) nextEvent(t *testing.T, within time.Duration) *esdb.ResolvedEvent {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		ev := r.next(t, time.Until(deadline))
		if ev.SubscriptionDropped != nil {
			t.Fatalf("subscription dropped: %v", ev.SubscriptionDropped.Error)
		}
		if ev.EventAppeared != nil {
			return ev.EventAppeared
		}
	}
}

// untilCaughtUp collects events until the CaughtUp marker.
func (r *subReader) untilCaughtUp(t *testing.T, within time.Duration) []*esdb.ResolvedEvent {
	t.Helper()
	deadline := time.Now().Add(within)
	var out []*esdb.ResolvedEvent
	for {
		ev := r.next(t, time.Until(deadline))
		switch {
		case ev.SubscriptionDropped != nil:
			t.Fatalf("subscription dropped before caught-up: %v", ev.SubscriptionDropped.Error)
		case ev.EventAppeared != nil:
			out = append(out, ev.EventAppeared)
		case ev.CaughtUp != nil:
			return out
		}
	}
}
