package projections_test

import (
	"context"
	"flag"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/uuid"

	"github.com/orderstore/orders/aggregate"
	"github.com/orderstore/orders/eventstore"
	"github.com/orderstore/orders/eventstore/esdbnode/esdbnodetest"
	"github.com/orderstore/orders/projections"
	"github.com/orderstore/orders/subscribers"
)

var (
	flagBenchEvents  = flag.Int("proj.bench.events", 3000, "order events appended for the projection benchmarks (1000000 for the README figures)")
	flagBenchWriters = flag.Int("proj.bench.writers", 8, "concurrent appenders in the projection benchmarks")
	flagBenchRate    = flag.Int("proj.bench.rate", 0, "live benchmark: orders (3 events each) appended per second; 0 = as fast as the writers go (saturation)")
)

// appendOrders appends orders of three events each (placed, paid, shipped: one append per
// order) until n events are written, with writers concurrent appenders. onAppend, if set,
// is called with the ids of an order's events just before its append.
func appendOrders(ctx context.Context, tb testing.TB, client *esdb.Client, n, writers int, onAppend func(ids []uuid.UUID)) {
	tb.Helper()
	var tick <-chan time.Time
	if *flagBenchRate > 0 && onAppend != nil {
		t := time.NewTicker(time.Second / time.Duration(*flagBenchRate))
		defer t.Stop()
		tick = t.C
	}
	var next atomic.Int64
	orders := (n + 2) / 3
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for w := range writers {
		wg.Go(func() {
			for {
				if tick != nil {
					<-tick // paced: one order per tick across all writers
				}
				i := next.Add(1) - 1
				if i >= int64(orders) {
					return
				}
				id := uuid.NewString()
				at := base.Add(time.Duration(i) * time.Minute)
				evs := []aggregate.Event{
					aggregate.OrderPlaced{OrderID: id, Customer: fmt.Sprintf("c%d@example.com", i%1000), Currency: "EUR",
						Lines: []aggregate.Line{{SKU: "sku", Quantity: 1, UnitPrice: 1000 + i%97}}, Total: 1000 + i%97, PlacedAt: at},
					aggregate.OrderPaid{OrderID: id, PaymentRef: "p" + id[:8], Amount: 1000 + i%97, Currency: "EUR", PaidAt: at.Add(time.Minute)},
					aggregate.OrderShipped{OrderID: id, ShippedAt: at.Add(time.Hour)},
				}
				if rem := n - int(i)*3; rem < 3 {
					evs = evs[:rem]
				}
				data := make([]esdb.EventData, len(evs))
				ids := make([]uuid.UUID, len(evs))
				for k, e := range evs {
					ids[k] = uuid.New()
					d, err := eventstore.Encode(ids[k], e, eventstore.CommandMetadata(uuid.NewString(), "bench"))
					if err != nil {
						errs <- err
						return
					}
					data[k] = d
				}
				if onAppend != nil {
					onAppend(ids)
				}
				if _, err := client.AppendToStream(ctx, eventstore.StreamName(id), esdb.AppendToStreamOptions{ExpectedRevision: esdb.NoStream{}}, data...); err != nil {
					errs <- fmt.Errorf("writer %d: %w", w, err)
					return
				}
			}
		})
	}
	wg.Wait()
	select {
	case err := <-errs:
		tb.Fatal(err)
	default:
	}
}

// BenchmarkLiveProjections measures live projection throughput (events per second from the
// first append to the last committed read-model transaction, all three projections) and the
// latency from the start of an event's append to the commit that made its row visible.
func BenchmarkLiveProjections(b *testing.B) {
	for _, be := range backends() {
		b.Run(be.name, func(b *testing.B) {
			n := *flagBenchEvents
			for b.Loop() {
				srv := esdbnodetest.Start(b)
				client := esdbnodetest.Client(b, srv)
				store := openStore(b, be.newURL(b))
				var mu sync.Mutex
				appended := make(map[uuid.UUID]time.Time, n)
				var lat []time.Duration
				var committed atomic.Int64
				done := make(chan struct{})
				var lastCommit time.Time
				want := int64(n * len(projections.Names()))
				r, err := projections.NewRunner(store, dialer(srv.ConnectionString()), projections.RunnerConfig{
					Consumer: subscribers.Config{MaxAttempts: 50, Backoff: func(int) time.Duration { return 5 * time.Millisecond }},
					Wrap: func(name string, h subscribers.BatchHandler) subscribers.BatchHandler {
						return func(ctx context.Context, evs []subscribers.Event) error {
							if err := h(ctx, evs); err != nil {
								return err
							}
							now := time.Now()
							mu.Lock()
							if name == projections.OrderSummaries {
								for _, ev := range evs {
									if t0, ok := appended[ev.ID]; ok {
										lat = append(lat, now.Sub(t0))
										delete(appended, ev.ID)
									}
								}
							}
							lastCommit = now
							mu.Unlock()
							if committed.Add(int64(len(evs))) >= want {
								select {
								case <-done:
								default:
									close(done)
								}
							}
							return nil
						}
					},
				})
				if err != nil {
					b.Fatal(err)
				}
				ctx, cancel := context.WithCancel(b.Context())
				runDone := make(chan error, 1)
				go func() { runDone <- r.Run(ctx) }()
				// Let the groups be created and connected before the clock starts.
				deadline := time.Now().Add(30 * time.Second)
				for time.Now().Before(deadline) {
					all := true
					for _, s := range r.Stats() {
						all = all && s.Connected
					}
					if all {
						break
					}
					time.Sleep(10 * time.Millisecond) // polling the consumers' state
				}
				start := time.Now()
				appendOrders(b.Context(), b, client, n, *flagBenchWriters, func(ids []uuid.UUID) {
					now := time.Now()
					mu.Lock()
					for _, id := range ids {
						appended[id] = now
					}
					mu.Unlock()
				})
				select {
				case <-done:
				case <-time.After(10 * time.Minute):
					b.Fatalf("projections did not apply %d events", n)
				}
				cancel()
				if err := <-runDone; err != nil {
					b.Fatal(err)
				}
				mu.Lock()
				elapsed := lastCommit.Sub(start)
				slices.Sort(lat)
				mu.Unlock()
				if len(lat) == 0 {
					b.Fatal("no latencies measured")
				}
				b.ReportMetric(float64(n)/elapsed.Seconds(), "events/s")
				b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
				b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
			}
		})
	}
}

// BenchmarkRebuild measures a rebuild of all three projections from zero over a log of
// -proj.bench.events order events (the log is written once, outside the timing).
func BenchmarkRebuild(b *testing.B) {
	srv := esdbnodetest.Start(b)
	client := esdbnodetest.Client(b, srv)
	n := *flagBenchEvents
	t0 := time.Now()
	appendOrders(b.Context(), b, client, n, *flagBenchWriters, nil)
	b.Logf("appended %d events in %s", n, time.Since(t0).Round(time.Millisecond))
	for _, be := range backends() {
		b.Run(be.name, func(b *testing.B) {
			store := openStore(b, be.newURL(b))
			var res projections.RebuildResult
			for b.Loop() {
				var err error
				res, err = store.Rebuild(b.Context(), client, nil, nil)
				if err != nil {
					b.Fatal(err)
				}
			}
			if res.EventsApplied != int64(n) {
				b.Fatalf("rebuild applied %d events, want %d", res.EventsApplied, n)
			}
			b.ReportMetric(float64(res.EventsApplied)/res.Elapsed.Seconds(), "events/s")
		})
	}
}
