package eventstore_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/orderstore/orders/aggregate"
	"github.com/orderstore/orders/eventstore"
	"github.com/orderstore/orders/eventstore/esdbnode/esdbnodetest"
	"github.com/orderstore/orders/eventstore/eventstoretest"
)

// fixture is a real node, a client of the official library connected through Connect, and a
// repository on it.
type fixture struct {
	client *esdb.Client
	repo   *eventstore.Repository
}

func newFixture(t *testing.T, cfg eventstore.RepositoryConfig) *fixture {
	t.Helper()
	srv := esdbnodetest.Start(t)
	client, err := eventstore.Connect(srv.ConnectionString())
	require.NoError(t, err)
	t.Cleanup(func() { _ = client.Close() })
	repo, err := eventstore.NewRepository(client, cfg)
	require.NoError(t, err)
	return &fixture{client: client, repo: repo}
}

var placeCmd = aggregate.PlaceOrder{
	Customer: "ada@example.com",
	Lines:    []aggregate.Line{{SKU: "BOOK-1", Quantity: 2, UnitPrice: 1250}, {SKU: "PEN", Quantity: 1, UnitPrice: 300}},
	Currency: "EUR",
}

func (f *fixture) place(t *testing.T) string {
	t.Helper()
	id := uuid.NewString()
	res, err := f.repo.Execute(t.Context(), id, eventstore.CommandMetadata(uuid.NewString(), "test"),
		func(o *aggregate.Order) error { return o.Place(placeCmd, t0) })
	require.NoError(t, err)
	require.Equal(t, 1, res.Appended)
	require.EqualValues(t, 0, res.Revision)
	return id
}

// rawTypes reads a stream through the client, bypassing the repository.
func (f *fixture) rawTypes(t *testing.T, stream string) []string {
	t.Helper()
	types, err := eventstoretest.StreamTypes(t.Context(), f.client, stream)
	require.NoError(t, err)
	return types
}

func count(types []string, typ string) int {
	n := 0
	for _, s := range types {
		if s == typ {
			n++
		}
	}
	return n
}

func TestPlacePayLoad(t *testing.T) {
	f := newFixture(t, eventstore.RepositoryConfig{})
	id := f.place(t)

	md := eventstore.CommandMetadata("pay-cmd", "test")
	res, err := f.repo.Execute(t.Context(), id, md, func(o *aggregate.Order) error { return o.Pay("ref-1", 2800, t0) })
	require.NoError(t, err)
	require.Equal(t, 1, res.Appended)
	require.EqualValues(t, 1, res.Revision)
	require.NotZero(t, res.Position)
	require.Equal(t, 1, res.Attempts)
	require.Equal(t, aggregate.StatusPaid, res.Order.Status())
	require.EqualValues(t, 1, res.Order.Version())
	require.Empty(t, res.Order.Changes())

	o, h, err := f.repo.Load(t.Context(), id)
	require.NoError(t, err)
	require.Equal(t, aggregate.StatusPaid, o.Status())
	require.EqualValues(t, 2800, o.Total())
	require.Equal(t, "ref-1", o.PaymentRef())
	require.EqualValues(t, 1, o.Version())
	require.Len(t, h, 2)
	for i, want := range []string{aggregate.TypeOrderPlaced, aggregate.TypeOrderPaid} {
		require.EqualValues(t, i, h[i].Revision)
		require.Equal(t, want, h[i].Type)
		require.Equal(t, eventstore.StreamName(id), h[i].Stream)
		require.False(t, h[i].Created.IsZero())
		require.NotEqual(t, uuid.Nil, h[i].EventID)
	}
	require.Less(t, h[0].Position, h[1].Position)
	require.Equal(t, md, h[1].Metadata)
	require.Equal(t, res.Position, h[1].Position)
}

func TestLoadUnknownOrder(t *testing.T) {
	f := newFixture(t, eventstore.RepositoryConfig{})
	_, _, err := f.repo.Load(t.Context(), uuid.NewString())
	require.ErrorIs(t, err, eventstore.ErrOrderNotFound)
	require.ErrorIs(t, err, aggregate.ErrOrderNotFound)
}

func TestDecideErrorAppendsNothing(t *testing.T) {
	f := newFixture(t, eventstore.RepositoryConfig{})
	unknown := uuid.NewString()
	_, err := f.repo.Execute(t.Context(), unknown, eventstore.Metadata{}, func(o *aggregate.Order) error { return o.Pay("r", 1, t0) })
	require.ErrorIs(t, err, aggregate.ErrOrderNotFound)
	require.Nil(t, f.rawTypes(t, eventstore.StreamName(unknown)))

	id := f.place(t)
	_, err = f.repo.Execute(t.Context(), id, eventstore.Metadata{}, func(o *aggregate.Order) error { return o.Pay("r", 1, t0) })
	require.ErrorIs(t, err, aggregate.ErrAmountMismatch)
	require.Equal(t, []string{aggregate.TypeOrderPlaced}, f.rawTypes(t, eventstore.StreamName(id)))
}

func TestPaySameReferenceTwiceAppendsOnce(t *testing.T) {
	f := newFixture(t, eventstore.RepositoryConfig{})
	id := f.place(t)
	pay := func(o *aggregate.Order) error { return o.Pay("ref-1", 2800, t0) }
	first, err := f.repo.Execute(t.Context(), id, eventstore.Metadata{}, pay)
	require.NoError(t, err)
	second, err := f.repo.Execute(t.Context(), id, eventstore.Metadata{}, pay)
	require.NoError(t, err)
	require.Equal(t, 0, second.Appended)
	require.Equal(t, first.Revision, second.Revision)
	require.Zero(t, second.Position)
	require.Equal(t, 1, count(f.rawTypes(t, eventstore.StreamName(id)), aggregate.TypeOrderPaid))
}

func TestConcurrentPayers(t *testing.T) {
	const payers = 8
	tests := []struct {
		name    string
		ref     func(i int) string
		wantErr error // for all but the winner; nil: everybody succeeds
	}{
		{"different references", func(i int) string { return fmt.Sprintf("ref-%d", i) }, aggregate.ErrAlreadyPaid},
		{"same reference", func(int) string { return "ref-same" }, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, eventstore.RepositoryConfig{})
			id := f.place(t)
			// Load first everywhere, so that the appends really race.
			start := make(chan struct{})
			errs := make([]error, payers)
			results := make([]eventstore.Result, payers)
			var wg sync.WaitGroup
			for i := range payers {
				wg.Go(func() {
					<-start
					results[i], errs[i] = f.repo.Execute(t.Context(), id, eventstore.Metadata{},
						func(o *aggregate.Order) error { return o.Pay(tc.ref(i), 2800, t0) })
				})
			}
			close(start)
			wg.Wait()

			appended, ok := 0, 0
			for i, err := range errs {
				if err == nil {
					ok++
					appended += results[i].Appended
					continue
				}
				require.ErrorIs(t, err, tc.wantErr, "payer %d", i)
			}
			require.Equal(t, 1, appended, "exactly one append")
			if tc.wantErr != nil {
				require.Equal(t, 1, ok, "exactly one winner")
			} else {
				require.Equal(t, payers, ok, "everybody succeeds with the same reference")
			}
			require.Equal(t, 1, count(f.rawTypes(t, eventstore.StreamName(id)), aggregate.TypeOrderPaid))
		})
	}
}

// interpose makes decide pay the order through another repository the first time it is
// called, so the append that follows conflicts.
func interpose(t *testing.T, other *eventstore.Repository, id string, then func(*aggregate.Order) error) (func(*aggregate.Order) error, *int) {
	calls := 0
	return func(o *aggregate.Order) error {
		calls++
		if calls == 1 {
			_, err := other.Execute(t.Context(), id, eventstore.Metadata{}, func(o *aggregate.Order) error { return o.Pay("other", 2800, t0) })
			require.NoError(t, err)
		}
		return then(o)
	}, &calls
}

func TestConflictRetriesAndRedecides(t *testing.T) {
	f := newFixture(t, eventstore.RepositoryConfig{MaxAttempts: 2})
	id := f.place(t)
	decide, calls := interpose(t, f.repo, id, func(o *aggregate.Order) error { return o.Cancel("too slow", t0) })
	res, err := f.repo.Execute(t.Context(), id, eventstore.Metadata{}, decide)
	require.NoError(t, err)
	require.Equal(t, 2, res.Attempts)
	require.Equal(t, 2, *calls)
	require.EqualValues(t, 2, res.Revision)
	require.Equal(t, []string{aggregate.TypeOrderPlaced, aggregate.TypeOrderPaid, aggregate.TypeOrderCancelled},
		f.rawTypes(t, eventstore.StreamName(id)))
}

func TestConflictGivesUpAfterMaxAttempts(t *testing.T) {
	f := newFixture(t, eventstore.RepositoryConfig{MaxAttempts: 1})
	id := f.place(t)
	decide, _ := interpose(t, f.repo, id, func(o *aggregate.Order) error { return o.Cancel("", t0) })
	_, err := f.repo.Execute(t.Context(), id, eventstore.Metadata{}, decide)
	require.ErrorIs(t, err, eventstore.ErrConcurrency)
	require.ErrorIs(t, err, eventstore.ErrWrongExpectedVersion)
	wev, ok := errors.AsType[*eventstore.WrongExpectedVersionError](err)
	require.True(t, ok)
	require.Equal(t, eventstore.StreamName(id), wev.Stream)
	require.EqualValues(t, 0, wev.Expected)
	require.Equal(t, []string{aggregate.TypeOrderPlaced, aggregate.TypeOrderPaid}, f.rawTypes(t, eventstore.StreamName(id)))
}

func TestLoadRejectsBadStreams(t *testing.T) {
	f := newFixture(t, eventstore.RepositoryConfig{})
	tests := []struct {
		name   string
		events func(id string) []esdb.EventData
		want   error
	}{
		{"history the aggregate refuses", func(id string) []esdb.EventData {
			d, err := eventstore.Encode(uuid.New(), aggregate.OrderShipped{OrderID: id, ShippedAt: t0}, eventstore.Metadata{})
			require.NoError(t, err)
			return []esdb.EventData{d}
		}, aggregate.ErrCorruptHistory},
		{"binary event", func(string) []esdb.EventData {
			return []esdb.EventData{{EventID: uuid.New(), EventType: aggregate.TypeOrderPlaced, ContentType: esdb.ContentTypeBinary, Data: []byte{1, 2}}}
		}, eventstore.ErrMalformedEvent},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			id := uuid.NewString()
			_, err := f.client.AppendToStream(t.Context(), eventstore.StreamName(id), esdb.AppendToStreamOptions{}, tc.events(id)...)
			require.NoError(t, err)
			_, _, err = f.repo.Load(t.Context(), id)
			require.ErrorIs(t, err, tc.want)
			_, err = f.repo.Execute(t.Context(), id, eventstore.Metadata{}, func(o *aggregate.Order) error { return o.Cancel("", t0) })
			require.ErrorIs(t, err, tc.want)
		})
	}
}

func TestLoadPagesThroughLongStreams(t *testing.T) {
	f := newFixture(t, eventstore.RepositoryConfig{PageSize: 1})
	id := f.place(t)
	_, err := f.repo.Execute(t.Context(), id, eventstore.Metadata{}, func(o *aggregate.Order) error { return o.Pay("r", 2800, t0) })
	require.NoError(t, err)
	_, err = f.repo.Execute(t.Context(), id, eventstore.Metadata{}, func(o *aggregate.Order) error { return o.Ship(t0) })
	require.NoError(t, err)
	o, h, err := f.repo.Load(t.Context(), id)
	require.NoError(t, err)
	require.Len(t, h, 3)
	require.Equal(t, aggregate.StatusShipped, o.Status())
}

func TestStreamDeleted(t *testing.T) {
	f := newFixture(t, eventstore.RepositoryConfig{})
	id := f.place(t)
	_, err := f.client.TombstoneStream(t.Context(), eventstore.StreamName(id), esdb.TombstoneStreamOptions{})
	require.NoError(t, err)
	_, _, err = f.repo.Load(t.Context(), id)
	require.ErrorIs(t, err, eventstore.ErrStreamDeleted)
	_, err = f.repo.Execute(t.Context(), id, eventstore.Metadata{}, func(o *aggregate.Order) error { return o.Cancel("", t0) })
	require.ErrorIs(t, err, eventstore.ErrStreamDeleted)
}

// closedAddr returns a loopback address nobody listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

func TestUnreachableNode(t *testing.T) {
	client, err := eventstore.Connect("esdb://" + closedAddr(t) + "?tls=false")
	require.NoError(t, err)
	t.Cleanup(func() { _ = client.Close() })
	repo, err := eventstore.NewRepository(client, eventstore.RepositoryConfig{})
	require.NoError(t, err)

	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	_, _, err = repo.Load(ctx, uuid.NewString())
	require.ErrorIs(t, err, eventstore.ErrUnavailable)
	// The client is now closed for good: later calls fail the same way, at once.
	_, err = repo.Execute(ctx, uuid.NewString(), eventstore.Metadata{}, func(o *aggregate.Order) error { return o.Place(placeCmd, t0) })
	require.ErrorIs(t, err, eventstore.ErrUnavailable)
}

func TestNewRepositoryValidates(t *testing.T) {
	_, err := eventstore.NewRepository(nil, eventstore.RepositoryConfig{})
	require.ErrorIs(t, err, eventstore.ErrInvalidConfig)
	client, err := eventstore.Connect(eventstore.DefaultConnectionString)
	require.NoError(t, err)
	t.Cleanup(func() { _ = client.Close() })
	_, err = eventstore.NewRepository(client, eventstore.RepositoryConfig{MaxAttempts: -1})
	require.ErrorIs(t, err, eventstore.ErrInvalidConfig)
}

func TestPing(t *testing.T) {
	f := newFixture(t, eventstore.RepositoryConfig{})
	require.NoError(t, eventstore.Ping(t.Context(), f.client))

	down, err := eventstore.Connect("esdb://" + closedAddr(t) + "?tls=false")
	require.NoError(t, err)
	t.Cleanup(func() { _ = down.Close() })
	require.ErrorIs(t, eventstore.Ping(t.Context(), down), eventstore.ErrUnavailable)
}
