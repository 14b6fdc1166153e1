package eventlog

import (
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"

	"github.com/google/uuid"
)

func benchEvents(n int) []Proposed {
	out := make([]Proposed, n)
	for i := range out {
		out[i] = Proposed{ID: uuid.New(), Type: "OrderPlaced", IsJSON: true, Data: make([]byte, 200)}
	}
	return out
}

// BenchmarkAppend: one writer, one event per append (one sync each).
func BenchmarkAppend(b *testing.B) {
	l := openTest(b, Options{})
	events := benchEvents(b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if _, err := l.Append(b.Context(), "bench", Expected{Kind: ExpectAny}, events[i:i+1]); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/float64(max(l.syncs.Load(), 1)), "appends/sync")
}

// BenchmarkAppendParallel: 16 goroutines appending one event each to their
// own stream; group commit shares the syncs.
func BenchmarkAppendParallel(b *testing.B) {
	l := openTest(b, Options{})
	var g atomic.Int64
	b.ReportAllocs()
	b.SetParallelism(max(1, 16/runtime.GOMAXPROCS(0))) // about 16 goroutines
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		stream := fmt.Sprintf("bench-%d", g.Add(1))
		ev := benchEvents(1)
		for pb.Next() {
			ev[0].ID = uuid.New()
			if _, err := l.Append(b.Context(), stream, Expected{Kind: ExpectAny}, ev); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/float64(max(l.syncs.Load(), 1)), "appends/sync")
}

// BenchmarkAppendBatch100: one writer, 100 events per append; reports
// events/s through the ns/op of one append.
func BenchmarkAppendBatch100(b *testing.B) {
	l := openTest(b, Options{})
	batches := make([][]Proposed, b.N)
	for i := range batches {
		batches[i] = benchEvents(100)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if _, err := l.Append(b.Context(), "bench", Expected{Kind: ExpectAny}, batches[i]); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*100)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkReadAll reads a 10 000-record log forwards in pages of 500.
func BenchmarkReadAll(b *testing.B) {
	l := openTest(b, Options{})
	for range 20 {
		if _, err := l.Append(b.Context(), "bench", Expected{Kind: ExpectAny}, benchEvents(500)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	var n int
	for range b.N {
		from := uint64(0)
		for {
			recs, err := l.ReadAll(b.Context(), Forwards, from, 500)
			if err != nil {
				b.Fatal(err)
			}
			if len(recs) == 0 {
				break
			}
			n += len(recs)
			from = recs[len(recs)-1].Position + 1
		}
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkReadStreamPage reads one page of 100 events of a 400,000-event
// stream (interleaved with a second stream), walking the stream forwards
// as a persistent subscription's reader does; reports the cost per page.
func BenchmarkReadStreamPage(b *testing.B) {
	l := openTest(b, Options{})
	const n = 400_000
	for done := 0; done < n; done += 500 {
		for _, s := range []string{"bench", "other"} {
			if _, err := l.Append(b.Context(), s, Expected{Kind: ExpectAny}, benchEvents(500)); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	from := uint64(0)
	for range b.N {
		recs, err := l.ReadStream(b.Context(), "bench", Forwards, from, 100)
		if err != nil {
			b.Fatal(err)
		}
		if len(recs) != 100 {
			b.Fatalf("%d records from %d", len(recs), from)
		}
		if from += 100; from+100 > n {
			from = 0
		}
	}
}
