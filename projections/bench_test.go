package projections_test

import (
	"context"
	"flag"
	"path/filepath"
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"

	"github.com/orderstore/orders/bench"
	"github.com/orderstore/orders/eventstore/esdbnode/esdbnodetest"
)

var (
	flagBenchEvents  = flag.Int("proj.bench.events", 3000, "order events appended for the projection benchmarks (1000000 for the README figures)")
	flagBenchWriters = flag.Int("proj.bench.writers", 8, "concurrent appenders in the projection benchmarks")
	flagBenchRate    = flag.Int("proj.bench.rate", 0, "live benchmark: orders (3 events each) appended per second; 0 = as fast as the writers go (saturation)")
)

// appendOrders appends orders of three events each until n events are written (see
// bench.AppendOrders).
func appendOrders(ctx context.Context, tb testing.TB, client *esdb.Client, n, writers int) {
	tb.Helper()
	if err := bench.AppendOrders(ctx, client, n, writers, 0, nil); err != nil {
		tb.Fatal(err)
	}
}

// BenchmarkLiveProjections measures, in one run, the writers' append rate
// (append-events/s), the three projections' apply rate (events/s, from the first append to
// the last commit), the largest lag seen (max-lag, events) and the latency from the start
// of an order's append to the commit that made it visible (p50-ms, p99-ms); see
// bench.Live. -proj.bench.rate paces the writers.
func BenchmarkLiveProjections(b *testing.B) {
	for _, be := range backends() {
		b.Run(be.name, func(b *testing.B) {
			for b.Loop() {
				srv := esdbnodetest.Start(b)
				client := esdbnodetest.Client(b, srv)
				r, err := bench.Live(b.Context(), srv.ConnectionString(), client, be.newURL(b), *flagBenchEvents, *flagBenchWriters, *flagBenchRate)
				if err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(r.AppendEventsPerSec, "append-events/s")
				b.ReportMetric(r.EventsPerSec, "events/s")
				b.ReportMetric(float64(r.MaxLag), "max-lag")
				b.ReportMetric(float64(r.P50.Microseconds())/1000, "p50-ms")
				b.ReportMetric(float64(r.P99.Microseconds())/1000, "p99-ms")
			}
		})
	}
}

// BenchmarkRebuild measures a rebuild of all three projections from zero over a log of
// -proj.bench.events order events (the log is written once, outside the timing), and the
// ceiling probe on the same log (bench.Ceiling: the official client reading $all into
// SQLite, one upsert per event).
func BenchmarkRebuild(b *testing.B) {
	srv := esdbnodetest.Start(b)
	client := esdbnodetest.Client(b, srv)
	n := *flagBenchEvents
	t0 := time.Now()
	appendOrders(b.Context(), b, client, n, *flagBenchWriters)
	b.Logf("appended %d events in %s", n, time.Since(t0).Round(time.Millisecond))
	for _, be := range backends() {
		b.Run(be.name, func(b *testing.B) {
			var res bench.RebuildResult
			for b.Loop() {
				var err error
				if res, err = bench.Rebuild(b.Context(), client, be.newURL(b)); err != nil {
					b.Fatal(err)
				}
			}
			if res.Events != int64(n) {
				b.Fatalf("rebuild applied %d events, want %d", res.Events, n)
			}
			b.ReportMetric(res.EventsPerSec, "events/s")
		})
	}
	b.Run("ceiling", func(b *testing.B) {
		var res bench.RebuildResult
		for b.Loop() {
			var err error
			if res, err = bench.RebuildCeiling(b.Context(), client, filepath.Join(b.TempDir(), "ceiling.db")); err != nil {
				b.Fatal(err)
			}
		}
		if res.Events != int64(n) {
			b.Fatalf("ceiling read %d events, want %d", res.Events, n)
		}
		b.ReportMetric(res.EventsPerSec, "events/s")
	})
}
