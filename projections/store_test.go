package projections_test

import (
	"context"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"path/filepath"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/orderstore/orders/projections"
	"github.com/orderstore/orders/subscribers"
)

// delivery is how the test delivers a workload to a projection, standing in for the
// consumer loop: batches of up to maxBatch; a failing batch is applied again one event at a
// time and the events that still fail are queued again (at a random place when shuffle).
type delivery struct {
	duplicate bool // deliver every event twice
	shuffle   bool // random order
	maxBatch  int
	workers   int // concurrent appliers (each its own transaction)
}

type deliveryStats struct{ outOfOrder, batches int }

func (d delivery) run(t *testing.T, rng *mrand.Rand, s *projections.Store, name string, evs []subscribers.Event) deliveryStats {
	t.Helper()
	stats, err := d.apply(t.Context(), rng, s, name, evs)
	if err != nil {
		t.Fatalf("apply: %v", err)
	}
	return stats
}

// maxTransient bounds the attempts of one event failing with an error that is neither
// ErrOutOfOrder nor permanent (a PostgreSQL deadlock between concurrent appliers): the
// consumer loop parks such an event after its MaxAttempts, and a test must fail, not spin.
const maxTransient = 10

// apply is run without the test: it returns the first error that retrying cannot cure, a
// permanent one, one repeated maxTransient times for an event, or out-of-order answers
// going on with no event applied in between (more than twice the events delivered).
func (d delivery) apply(ctx context.Context, rng *mrand.Rand, s *projections.Store, name string, evs []subscribers.Event) (deliveryStats, error) {
	queue := append([]subscribers.Event(nil), evs...)
	if d.duplicate {
		queue = append(queue, evs...)
	}
	if d.shuffle {
		rng.Shuffle(len(queue), func(i, j int) { queue[i], queue[j] = queue[j], queue[i] })
	}
	var (
		mu       sync.Mutex
		cond     = sync.NewCond(&mu)
		inflight int
		stats    deliveryStats
		failed   error
		attempts = map[uuid.UUID]int{} // transient failures per event id
		stalled  int                   // requeues since an event was last applied
	)
	stallLimit := 2*len(queue) + 10
	progress := func() {
		mu.Lock()
		stalled = 0
		mu.Unlock()
	}
	take := func() []subscribers.Event {
		mu.Lock()
		defer mu.Unlock()
		for len(queue) == 0 && inflight > 0 && failed == nil {
			cond.Wait()
		}
		if len(queue) == 0 || failed != nil {
			return nil
		}
		n := min(len(queue), 1+rng.IntN(d.maxBatch))
		b := append([]subscribers.Event(nil), queue[:n]...)
		queue = queue[n:]
		inflight++
		return b
	}
	requeue := func(ev subscribers.Event) {
		mu.Lock()
		defer mu.Unlock()
		if d.shuffle && len(queue) > 0 {
			i := rng.IntN(len(queue) + 1)
			queue = append(queue[:i], append([]subscribers.Event{ev}, queue[i:]...)...)
		} else {
			queue = append(queue, ev)
		}
	}
	var wg sync.WaitGroup
	for range max(1, d.workers) {
		wg.Go(func() {
			for {
				b := take()
				if b == nil {
					return
				}
				err := s.Apply(ctx, name, b)
				if err == nil {
					progress()
				} else {
					for _, ev := range b {
						err := s.Apply(ctx, name, []subscribers.Event{ev})
						switch {
						case err == nil:
							progress()
						case errors.Is(err, projections.ErrOutOfOrder) || isTransient(err):
							mu.Lock()
							stats.outOfOrder++
							stalled++
							if !errors.Is(err, projections.ErrOutOfOrder) {
								attempts[ev.ID]++
							}
							switch {
							case attempts[ev.ID] >= maxTransient:
								failed = fmt.Errorf("event %s failed %d times: %w", ev.ID, attempts[ev.ID], err)
							case stalled > stallLimit:
								failed = fmt.Errorf("no event applied in %d attempts, the last: %w", stalled, err)
							}
							retry := failed == nil
							mu.Unlock()
							if retry {
								requeue(ev)
							}
						default:
							mu.Lock()
							failed = err
							mu.Unlock()
						}
					}
				}
				mu.Lock()
				stats.batches++
				inflight--
				cond.Broadcast()
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return stats, failed
}

// isTransient: PostgreSQL deadlock or serialization errors under concurrent appliers are
// retried, as the consumer loop retries any handler error not marked permanent (up to
// maxTransient times here).
func isTransient(err error) bool { return err != nil && !subscribers.IsPermanent(err) }

// TestDeliveryFailsOnAPersistentError: the contract's delivery helper gives up on an error
// that retrying cannot cure (here every Apply fails: the database is closed) instead of
// requeueing the events for ever.
func TestDeliveryFailsOnAPersistentError(t *testing.T) {
	t.Parallel()
	rng := mrand.New(mrand.NewPCG(seed(t), 1))
	w := genWorkload(t, rng, 3)
	s := openStore(t, filepath.Join(t.TempDir(), "rm.db"))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := delivery{maxBatch: 4, workers: 2, shuffle: true}.apply(t.Context(), rng, s, projections.Names()[0], w.events)
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("delivery into a closed store succeeded")
		}
		t.Logf("delivery gave up: %v", err)
	case <-time.After(time.Minute):
		t.Fatal("delivery still requeueing after a minute")
	}
}

func TestStoreContract(t *testing.T) {
	for _, be := range backends() {
		t.Run(be.name, func(t *testing.T) {
			t.Parallel()
			testContract(t, be)
		})
	}
}

func testContract(t *testing.T, be backend) {
	rng := mrand.New(mrand.NewPCG(seed(t), 1))
	w := genWorkload(t, rng, 60)
	want := w.oracle(t)

	// The reference: every event once, in log order, one at a time.
	refURL := be.newURL(t)
	ref := openStore(t, refURL)
	for _, name := range projections.Names() {
		delivery{maxBatch: 1}.run(t, rng, ref, name, w.events)
	}
	t.Run("in order", func(t *testing.T) {
		want.check(t, ref)
		cps, err := ref.Checkpoints(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range cps {
			if c.EventsApplied != int64(len(w.events)) || c.Position != uint64(len(w.events)) || c.LastAppliedAt.IsZero() {
				t.Errorf("%s checkpoint %+v, want %d events applied at position %d", c.Name, c, len(w.events), len(w.events))
			}
		}
	})
	refDump := dump(t, refURL)

	tests := []struct {
		name           string
		d              delivery
		wantOutOfOrder bool
	}{
		{name: "batched", d: delivery{maxBatch: 16}},
		{name: "duplicates", d: delivery{duplicate: true, maxBatch: 8}},
		{name: "reordered", d: delivery{shuffle: true, maxBatch: 8}, wantOutOfOrder: true},
		{name: "reordered duplicates", d: delivery{shuffle: true, duplicate: true, maxBatch: 8}, wantOutOfOrder: true},
		{name: "concurrent reordered duplicates", d: delivery{shuffle: true, duplicate: true, maxBatch: 8, workers: 4}, wantOutOfOrder: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			url := be.newURL(t)
			s := openStore(t, url)
			ooo := 0
			for _, name := range projections.Names() {
				ooo += tc.d.run(t, rng, s, name, w.events).outOfOrder
			}
			if tc.wantOutOfOrder && ooo == 0 {
				t.Errorf("no event arrived before its predecessor: the test did not exercise reordering")
			}
			want.check(t, s)
			compareDumps(t, "in order", refDump, tc.name, dump(t, url))
			cps, err := s.Checkpoints(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range cps {
				if c.EventsApplied != int64(len(w.events)) {
					t.Errorf("%s: %d events applied, want %d (duplicates must not count)", c.Name, c.EventsApplied, len(w.events))
				}
			}
		})
	}

	t.Run("out of order is retryable, malformed is permanent", func(t *testing.T) {
		s := openStore(t, be.newURL(t))
		var second subscribers.Event
		for _, ev := range w.events {
			if ev.Revision == 1 {
				second = ev
				break
			}
		}
		for _, name := range projections.Names() {
			err := s.Apply(t.Context(), name, []subscribers.Event{second})
			if !errors.Is(err, projections.ErrOutOfOrder) || subscribers.IsPermanent(err) {
				t.Errorf("%s: revision 1 before 0: err = %v, want retryable ErrOutOfOrder", name, err)
			}
			bad := w.events[0]
			bad.Data = []byte(`{"orderId": 42}`)
			err = s.Apply(t.Context(), name, []subscribers.Event{bad})
			if !errors.Is(err, projections.ErrMalformedEvent) || !subscribers.IsPermanent(err) {
				t.Errorf("%s: malformed event: err = %v, want permanent ErrMalformedEvent", name, err)
			}
		}
		if _, err := s.Handler("nope"); !errors.Is(err, projections.ErrUnknownProjection) {
			t.Errorf("Handler(nope) = %v, want ErrUnknownProjection", err)
		}
	})

	t.Run("list filters", func(t *testing.T) {
		ctx := t.Context()
		for _, f := range []projections.ListFilter{{Status: "paid"}, {Customer: "ann@example.com"}, {Status: "cancelled", Customer: "bob@example.com"}, {Limit: 3}} {
			got, err := ref.ListOrders(ctx, f)
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			for _, o := range want.orders {
				if (f.Status == "" || o.Status == f.Status) && (f.Customer == "" || o.Customer == f.Customer) {
					n++
				}
			}
			if f.Limit > 0 {
				n = min(n, f.Limit)
			}
			if len(got) != n {
				t.Errorf("ListOrders(%+v): %d orders, want %d", f, len(got), n)
			}
			for i := 1; i < len(got); i++ {
				if got[i].PlacedAt.After(got[i-1].PlacedAt) {
					t.Errorf("ListOrders(%+v): not newest first at %d", f, i)
				}
			}
		}
		o, err := ref.Order(ctx, list0(t, ref).OrderID)
		if err != nil || o.OrderID == "" {
			t.Errorf("Order: %+v, %v", o, err)
		}
		if _, err := ref.Order(ctx, uuid.NewString()); !errors.Is(err, projections.ErrNotFound) {
			t.Errorf("Order(unknown) = %v, want ErrNotFound", err)
		}
	})
}

func list0(t *testing.T, s *projections.Store) projections.OrderSummary {
	t.Helper()
	l, err := s.ListOrders(t.Context(), projections.ListFilter{Limit: 1})
	if err != nil || len(l) == 0 {
		t.Fatalf("ListOrders: %v, %d", err, len(l))
	}
	return l[0]
}

func TestOpen(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		url     string
		wantErr error
	}{
		{name: "unknown scheme", url: "mysql://x/y", wantErr: projections.ErrBadURL},
		{name: "query in sqlite path", url: "sqlite:///tmp/x.db?mode=ro", wantErr: projections.ErrBadURL},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := projections.Open(t.Context(), tc.url)
			if !errors.Is(err, tc.wantErr) {
				t.Errorf("Open(%q) = %v, want %v", tc.url, err, tc.wantErr)
			}
		})
	}
	t.Run("sqlite URL and reopen keeps data", func(t *testing.T) {
		path := t.TempDir() + "/rm.db"
		s := openStore(t, "sqlite://"+path)
		w := genWorkload(t, mrand.New(mrand.NewPCG(seed(t), 1)), 3)
		name := projections.Names()[0]
		if err := s.Apply(t.Context(), name, w.events); err != nil {
			t.Fatal(err)
		}
		before, err := s.Checkpoints(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		_ = s.Close()
		after, err := openStore(t, path).Checkpoints(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(after, before) {
			t.Errorf("after reopen checkpoints = %+v, want %+v", after, before)
		}
	})
	t.Run("postgres: concurrent opens migrate once", func(t *testing.T) {
		url := newPostgresSchema(t)
		var wg sync.WaitGroup
		errs := make(chan error, 4)
		for range 4 {
			wg.Go(func() {
				s, err := projections.Open(t.Context(), url)
				if err == nil {
					err = s.Close()
				}
				errs <- err
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Errorf("concurrent Open: %v", err)
			}
		}
	})
}
