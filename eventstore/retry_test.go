package eventstore_test

import (
	"context"
	"testing"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/orderstore/orders/aggregate"
	"github.com/orderstore/orders/eventstore"
	"github.com/orderstore/orders/eventstore/esdbnode/esdbnodetest"
	"github.com/orderstore/orders/eventstore/eventstoretest"
)

func TestCommandEventIDs(t *testing.T) {
	c := eventstore.Command{OrderID: "o1", Name: "cancel", Args: []string{"late"}}
	require.Equal(t, c.EventID(0), c.EventID(0), "deterministic")
	require.Equal(t, uuid.Version(5), c.EventID(0).Version())
	distinct := map[uuid.UUID]string{}
	for name, id := range map[string]uuid.UUID{
		"base":           c.EventID(0),
		"second event":   c.EventID(1),
		"other order":    eventstore.Command{OrderID: "o2", Name: "cancel", Args: []string{"late"}}.EventID(0),
		"other command":  eventstore.Command{OrderID: "o1", Name: "ship", Args: []string{"late"}}.EventID(0),
		"other argument": eventstore.Command{OrderID: "o1", Name: "cancel", Args: []string{"early"}}.EventID(0),
		"no argument":    eventstore.Command{OrderID: "o1", Name: "cancel"}.EventID(0),
		"empty argument": eventstore.Command{OrderID: "o1", Name: "cancel", Args: []string{""}}.EventID(0),
		"split argument": eventstore.Command{OrderID: "o1", Name: "cancel", Args: []string{"la", "te"}}.EventID(0),
		"shifted fields": eventstore.Command{OrderID: "o1cancel", Name: "", Args: []string{"late"}}.EventID(0),
	} {
		if other, dup := distinct[id]; dup {
			t.Errorf("%s and %s share an event id", name, other)
		}
		distinct[id] = name
	}
}

// proxied is a node, a repository whose client goes through a proxy, and a client straight to
// the node to see what it really holds.
type proxied struct {
	proxy  *eventstoretest.Proxy
	repo   *eventstore.Repository
	direct *esdb.Client
}

func newProxied(t *testing.T) *proxied {
	t.Helper()
	srv := esdbnodetest.Start(t)
	p := eventstoretest.NewProxy(t, srv.Addr())
	client, err := eventstore.Connect(p.ConnectionString())
	require.NoError(t, err)
	t.Cleanup(func() { _ = client.Close() })
	repo, err := eventstore.NewRepository(client, eventstore.RepositoryConfig{})
	require.NoError(t, err)
	return &proxied{proxy: p, repo: repo, direct: esdbnodetest.Client(t, srv)}
}

// types lists the event types of the order's stream as the node holds them.
func (p *proxied) types(ctx context.Context, id string) []string {
	types, err := eventstoretest.StreamTypes(ctx, p.direct, eventstore.StreamName(id))
	if err != nil {
		return []string{"error: " + err.Error()}
	}
	return types
}

// TestRetryAfterLostReply cuts the connection after each command's append has reached the
// node and before its answer reaches the client, then retries the same command: the first
// run reports ErrOutcomeUnknown, the retry reports AlreadyRecorded, and the stream holds each
// event once. A retry with other arguments is refused by the aggregate.
func TestRetryAfterLostReply(t *testing.T) {
	p := newProxied(t)
	ctx := t.Context()
	shipped, cancelled := uuid.NewString(), uuid.NewString()
	place := func(id string) (eventstore.Command, func(*aggregate.Order) error) {
		return eventstore.Command{OrderID: id, Name: "place", Args: []string{"ada@example.com", "EUR", "BOOK-1:2:1250", "PEN:1:300"}},
			func(o *aggregate.Order) error { return o.Place(placeCmd, t0) }
	}
	steps := []struct {
		name     string
		id       string
		cmd      func() (eventstore.Command, func(*aggregate.Order) error)
		want     []string
		conflict func() (eventstore.Command, func(*aggregate.Order) error) // same command, other arguments
		wantErr  error
	}{
		{"place", shipped, func() (eventstore.Command, func(*aggregate.Order) error) { return place(shipped) },
			[]string{aggregate.TypeOrderPlaced},
			func() (eventstore.Command, func(*aggregate.Order) error) {
				other := placeCmd
				other.Currency = "USD"
				return eventstore.Command{OrderID: shipped, Name: "place", Args: []string{"ada@example.com", "USD", "BOOK-1:2:1250", "PEN:1:300"}},
					func(o *aggregate.Order) error { return o.Place(other, t0) }
			}, aggregate.ErrOrderExists},
		{"pay", shipped, func() (eventstore.Command, func(*aggregate.Order) error) {
			return eventstore.Command{OrderID: shipped, Name: "pay", Args: []string{"ref-1", ""}},
				func(o *aggregate.Order) error { return o.Pay("ref-1", o.Total(), t0) }
		}, []string{aggregate.TypeOrderPlaced, aggregate.TypeOrderPaid},
			func() (eventstore.Command, func(*aggregate.Order) error) {
				return eventstore.Command{OrderID: shipped, Name: "pay", Args: []string{"ref-2", ""}},
					func(o *aggregate.Order) error { return o.Pay("ref-2", o.Total(), t0) }
			}, aggregate.ErrAlreadyPaid},
		{"ship", shipped, func() (eventstore.Command, func(*aggregate.Order) error) {
			return eventstore.Command{OrderID: shipped, Name: "ship"}, func(o *aggregate.Order) error { return o.Ship(t0) }
		}, []string{aggregate.TypeOrderPlaced, aggregate.TypeOrderPaid, aggregate.TypeOrderShipped}, nil, nil},
		{"place another", cancelled, func() (eventstore.Command, func(*aggregate.Order) error) { return place(cancelled) },
			[]string{aggregate.TypeOrderPlaced}, nil, nil},
		{"cancel", cancelled, func() (eventstore.Command, func(*aggregate.Order) error) {
			return eventstore.Command{OrderID: cancelled, Name: "cancel", Args: []string{"late"}},
				func(o *aggregate.Order) error { return o.Cancel("late", t0) }
		}, []string{aggregate.TypeOrderPlaced, aggregate.TypeOrderCancelled},
			func() (eventstore.Command, func(*aggregate.Order) error) {
				return eventstore.Command{OrderID: cancelled, Name: "cancel", Args: []string{"changed my mind"}},
					func(o *aggregate.Order) error { return o.Cancel("changed my mind", t0) }
			}, aggregate.ErrAlreadyCancelled},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			before := len(p.types(ctx, st.id))
			p.proxy.CutRepliesWhen(func() bool { return len(p.types(ctx, st.id)) > before })
			c, decide := st.cmd()
			_, err := p.repo.ExecuteCommand(ctx, c, eventstore.Metadata{}, decide)
			require.ErrorIs(t, err, eventstore.ErrOutcomeUnknown)
			require.Equal(t, st.want, p.types(ctx, st.id), "the node recorded it once")

			for retry := range 2 {
				c, decide := st.cmd()
				res, err := p.repo.ExecuteCommand(ctx, c, eventstore.Metadata{}, decide)
				require.NoError(t, err, "retry %d", retry)
				require.True(t, res.AlreadyRecorded, "retry %d", retry)
				require.Zero(t, res.Appended)
				require.EqualValues(t, len(st.want)-1, res.Revision)
				require.Equal(t, st.want, p.types(ctx, st.id))
			}
			if st.conflict != nil {
				c, decide := st.conflict()
				_, err := p.repo.ExecuteCommand(ctx, c, eventstore.Metadata{}, decide)
				require.ErrorIs(t, err, st.wantErr)
				require.Equal(t, st.want, p.types(ctx, st.id))
			}
		})
	}
}

// TestRacingIdenticalCommands appends the same command after the same revision twice: the
// node's idempotency writes it once and answers both with success.
func TestRacingIdenticalCommands(t *testing.T) {
	f := newFixture(t, eventstore.RepositoryConfig{})
	id := f.place(t)
	c := eventstore.Command{OrderID: id, Name: "ship"}
	_, err := f.repo.ExecuteCommand(t.Context(), eventstore.Command{OrderID: id, Name: "pay", Args: []string{"r", ""}},
		eventstore.Metadata{}, func(o *aggregate.Order) error { return o.Pay("r", o.Total(), t0) })
	require.NoError(t, err)
	// The second run decides on the state loaded before the first appended: its append
	// meets the first's event at the same expected revision.
	var loaded int
	decide := func(o *aggregate.Order) error {
		loaded++
		if loaded == 1 {
			_, err := f.repo.ExecuteCommand(t.Context(), c, eventstore.Metadata{}, func(o *aggregate.Order) error { return o.Ship(t0) })
			require.NoError(t, err)
		}
		return o.Ship(t0)
	}
	res, err := f.repo.ExecuteCommand(t.Context(), c, eventstore.Metadata{}, decide)
	require.NoError(t, err)
	require.Equal(t, 1, res.Attempts, "no conflict: the node took it as the same append")
	require.EqualValues(t, 2, res.Revision)
	require.Equal(t, 1, count(f.rawTypes(t, eventstore.StreamName(id)), aggregate.TypeOrderShipped))
}
