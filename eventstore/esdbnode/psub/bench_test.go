package psub_test

import (
	"fmt"
	"testing"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
)

// BenchmarkDeliveryCompare measures persistent-subscription delivery through
// the official client on the embedded node and on the no-storage stub (the
// protocol ceiling): b.N events already in a stream (preloaded untimed), a
// fresh group from Start, 1 or 4 consumers with buffer_size 64, each event
// acked singly or in Ack calls of 32 ids. It reports events/s (distinct
// events acked per second, from the first subscribe to the last ack).
//
//	go test ./eventstore/esdbnode/psub -run '^$' -bench BenchmarkDeliveryCompare -benchtime 20000x
func BenchmarkDeliveryCompare(b *testing.B) {
	targets := []struct {
		name  string
		start func(testing.TB) func(tb testing.TB, n int) deliveryTarget
	}{
		{"node", func(tb testing.TB) func(testing.TB, int) deliveryTarget {
			_, c := startNodeT(tb)
			return func(tb testing.TB, n int) deliveryTarget { return preloadNode(tb, c, n) }
		}},
		{"stub", func(tb testing.TB) func(testing.TB, int) deliveryTarget {
			st, c := startStub(tb)
			return func(_ testing.TB, n int) deliveryTarget { return preloadStub(st, c, n) }
		}},
	}
	for _, tg := range targets {
		b.Run(tg.name, func(b *testing.B) {
			load := tg.start(b)
			for _, cell := range deliveryCells {
				b.Run(fmt.Sprintf("consumers=%d/ack-batch=%d", cell.consumers, cell.batch), func(b *testing.B) {
					t := load(b, b.N)
					b.ResetTimer()
					r, err := runDelivery(b.Context(), t, cell.consumers, cell.batch, 0)
					b.StopTimer()
					if err != nil {
						b.Fatal(err)
					}
					if r.Events != b.N {
						b.Fatalf("%d of %d events acked", r.Events, b.N)
					}
					b.ReportMetric(r.EventsPerSec(), "events/s")
				})
			}
		})
	}
}

// BenchmarkDelivery is the node half of BenchmarkDeliveryCompare, kept under
// its original name.
func BenchmarkDelivery(b *testing.B) {
	_, c := startNodeT(b)
	for _, cell := range deliveryCells {
		b.Run(fmt.Sprintf("consumers=%d/ack-batch=%d", cell.consumers, cell.batch), func(b *testing.B) {
			benchDeliveryOn(b, c, cell.consumers, cell.batch)
		})
	}
}

func benchDeliveryOn(b *testing.B, c *esdb.Client, consumers, batch int) {
	t := preloadNode(b, c, b.N)
	b.ResetTimer()
	r, err := runDelivery(b.Context(), t, consumers, batch, 0)
	b.StopTimer()
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(r.EventsPerSec(), "events/s")
}
