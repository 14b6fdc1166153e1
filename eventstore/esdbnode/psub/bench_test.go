package psub_test

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
)

// BenchmarkDelivery measures delivery through the official client: b.N
// events already in a stream, a group from Start, 1 or 4 consumers, each
// event acked singly or in batches of up to 32. Reports events/s (delivered
// and acked).
func BenchmarkDelivery(b *testing.B) {
	for _, consumers := range []int{1, 4} {
		for _, batch := range []int{1, 32} {
			name := fmt.Sprintf("consumers=%d/ack-batch=%d", consumers, batch)
			b.Run(name, func(b *testing.B) { benchDelivery(b, consumers, batch) })
		}
	}
}

func benchDelivery(b *testing.B, consumers, batch int) {
	_, c := startNodeB(b)
	s, g := uniq("bench"), uniq("g")
	for done := 0; done < b.N; done += 500 {
		appendN(b, c, s, done, min(500, b.N-done))
	}
	createStream(b, c, s, g, esdb.Start{}, func(st *esdb.PersistentSubscriptionSettings) {
		st.ReadBatchSize, st.HistoryBufferSize, st.LiveBufferSize = 100, 1000, 1000
	})
	var acked atomic.Int64
	finished := make(chan struct{})
	var once sync.Once
	b.ResetTimer()
	for range consumers {
		sub := subscribe(b, c, s, g, 64)
		go func() {
			var pending []*esdb.ResolvedEvent
			flush := func() {
				if len(pending) == 0 {
					return
				}
				if err := sub.ps.Ack(pending...); err != nil {
					return
				}
				if acked.Add(int64(len(pending))) >= int64(b.N) {
					once.Do(func() { close(finished) })
				}
				pending = pending[:0]
			}
			for {
				select {
				case ev := <-sub.events:
					pending = append(pending, ev.Event)
					if len(pending) >= batch {
						flush()
					}
				case <-time.After(2 * time.Millisecond):
					flush() // the tail of a batch
				case <-finished:
					return
				case <-sub.dropped:
					return
				}
			}
		}()
	}
	select {
	case <-finished:
	case <-time.After(5 * time.Minute):
		b.Fatalf("only %d of %d acked", acked.Load(), b.N)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}
