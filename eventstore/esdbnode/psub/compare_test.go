package psub_test

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"

	"github.com/orderstore/orders/eventstore/esdbnode"
	"github.com/orderstore/orders/eventstore/esdbnode/esdbnodetest"
)

var (
	psbenchFull   = flag.Bool("psbench.full", false, "run TestDeliveryCompareFull: node versus stub delivery, printed as a markdown table")
	psbenchEvents = flag.Int("psbench.events", 50_000, "with -psbench.full: events per cell")
	psbenchRounds = flag.Int("psbench.rounds", 5, "with -psbench.full: rounds; each figure is the median round")
	psbenchProf   = flag.String("psbench.cpuprofile", "", "with -psbench.full: write a CPU profile of each timed run (client and server, same process) to this directory as <target>-c<consumers>-b<batch>-r<round>.prof")
)

// Delivery workload settings shared by the node and the stub.
const (
	// deliveryBuffer is each consumer's buffer_size (in-flight slots); it is
	// at least twice the largest ack batch, so a consumer holding a partial
	// batch always has slots left for the rest of it.
	deliveryBuffer = 64
	// preloadBatch is the number of events per append when a node stream is
	// preloaded.
	preloadBatch = 500
)

// deliveryCells are the (consumers, ack batch) pairs of the comparison.
var deliveryCells = []struct{ consumers, batch int }{{1, 1}, {1, 32}, {4, 1}, {4, 32}}

// deliveryTarget is a server with a preloaded stream, reached through the
// official client.
type deliveryTarget struct {
	name   string
	c      *esdb.Client
	stream string
	events int // events in stream, revisions 0…events-1
}

// nodeTarget starts an embedded node and preloads a stream of n events
// (untimed).
func nodeTarget(tb testing.TB, n int) deliveryTarget {
	tb.Helper()
	_, c := startNodeT(tb)
	return preloadNode(tb, c, n)
}

// preloadNode appends a fresh stream of n events to the node behind c.
func preloadNode(tb testing.TB, c *esdb.Client, n int) deliveryTarget {
	tb.Helper()
	s := uniq("psbench")
	for done := 0; done < n; done += preloadBatch {
		appendN(tb, c, s, done, min(preloadBatch, n-done))
	}
	return deliveryTarget{name: "node", c: c, stream: s, events: n}
}

// stubTarget starts a psStub with a stream of n synthetic events.
func stubTarget(tb testing.TB, n int) deliveryTarget {
	tb.Helper()
	st, c := startStub(tb)
	return preloadStub(st, c, n)
}

// preloadStub declares a fresh stream of n synthetic events on st.
func preloadStub(st *psStub, c *esdb.Client, n int) deliveryTarget {
	s := uniq("psbench")
	st.preload(s, n)
	return deliveryTarget{name: "stub", c: c, stream: s, events: n}
}

// startNodeT is startNode for any testing.TB.
func startNodeT(tb testing.TB) (*esdbnode.Server, *esdb.Client) {
	tb.Helper()
	srv := esdbnodetest.Start(tb)
	return srv, esdbnodetest.Client(tb, srv)
}

// deliveryResult is one delivery run.
type deliveryResult struct {
	Consumers   int
	Batch       int
	Events      int           // distinct events acked
	Deliveries  int           // events received, redeliveries included
	AckCalls    int           // Ack calls made
	Elapsed     time.Duration // from the first subscribe to the last ack sent
	CPU         time.Duration // CPU time of the whole process (client and server) over Elapsed
	ServerTotal int64         // TotalItems of the group's info after the run (-1 if not asked)
}

// EventsPerSec is distinct events acked per second.
func (r deliveryResult) EventsPerSec() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Events) / r.Elapsed.Seconds()
}

// createDeliveryGroup creates group on t's stream from Start with the buffer
// settings of the benchmark.
func createDeliveryGroup(ctx context.Context, t deliveryTarget, group string) error {
	s := esdb.SubscriptionSettingsDefault()
	s.ReadBatchSize, s.HistoryBufferSize, s.LiveBufferSize = 100, 1000, 1000
	return t.c.CreatePersistentSubscription(ctx, t.stream, group, esdb.PersistentStreamSubscriptionOptions{
		StartFrom: esdb.Start{}, Settings: &s,
	})
}

// runDelivery creates a fresh group from Start on t's stream (untimed), then
// connects `consumers` consumers (buffer_size deliveryBuffer) and times
// until every event of the stream has been acked at least once, each
// consumer acking in calls of `batch` ids (the last, partial batch of each
// consumer is acked once every event has been received). If settle is set it
// then waits, up to its value, until the group's info reports every event
// acked (TotalItems), before closing the consumers and deleting the group.
func runDelivery(ctx context.Context, t deliveryTarget, consumers, batch int, settle time.Duration) (res deliveryResult, err error) {
	res = deliveryResult{Consumers: consumers, Batch: batch, ServerTotal: -1}
	n := t.events
	if n < 1 || consumers < 1 || batch < 1 || batch > deliveryBuffer/2 {
		return res, fmt.Errorf("psbench: invalid workload: events %d, consumers %d, batch %d", n, consumers, batch)
	}
	group := uniq("g")
	if err := createDeliveryGroup(ctx, t, group); err != nil {
		return res, fmt.Errorf("psbench: create group: %w", err)
	}
	defer func() {
		derr := t.c.DeletePersistentSubscription(context.WithoutCancel(ctx), t.stream, group, esdb.DeletePersistentSubscriptionOptions{})
		err = errors.Join(err, derr)
	}()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		received   = make([]atomic.Bool, n) // by stream revision
		ackedSet   = make([]atomic.Bool, n)
		nReceived  atomic.Int64
		nAcked     atomic.Int64
		deliveries atomic.Int64
		ackCalls   atomic.Int64
		allIn      = make(chan struct{}) // every event received at least once
		allAcked   = make(chan struct{}) // every event acked at least once
		closeIn    sync.Once
		closeAcked sync.Once
		failOnce   sync.Once
		failure    error
		failed     = make(chan struct{})
	)
	fail := func(err error) {
		failOnce.Do(func() { failure = err; close(failed) })
	}
	var wg sync.WaitGroup
	var subs []*esdb.PersistentSubscription
	defer func() {
		for _, s := range subs {
			_ = s.Close()
		}
		cancel()
		wg.Wait()
	}()

	start, cpu0 := time.Now(), processCPU()
	for range consumers {
		ps, err := t.c.SubscribeToPersistentSubscription(ctx, t.stream, group, esdb.SubscribeToPersistentSubscriptionOptions{BufferSize: deliveryBuffer})
		if err != nil {
			return res, fmt.Errorf("psbench: subscribe: %w", err)
		}
		subs = append(subs, ps)
		events := make(chan *esdb.ResolvedEvent, deliveryBuffer)
		wg.Add(2)
		go func() { // receiver: the client's Recv loop
			defer wg.Done()
			defer close(events)
			for {
				ev := ps.Recv()
				if ev.SubscriptionDropped != nil {
					if ctx.Err() == nil {
						fail(fmt.Errorf("psbench: subscription dropped: %w", ev.SubscriptionDropped.Error))
					}
					return
				}
				if ev.EventAppeared == nil {
					continue
				}
				select {
				case events <- ev.EventAppeared.Event:
				case <-ctx.Done():
					return
				}
			}
		}()
		go func() { // acker: the application
			defer wg.Done()
			pending := make([]*esdb.ResolvedEvent, 0, batch)
			tail := allIn // nil once the tail has been flushed: ack one by one
			flush := func() bool {
				if len(pending) == 0 {
					return true
				}
				if err := ps.Ack(pending...); err != nil {
					if ctx.Err() == nil {
						fail(fmt.Errorf("psbench: ack: %w", err))
					}
					return false
				}
				ackCalls.Add(1)
				for _, ev := range pending {
					if r := ev.OriginalEvent().EventNumber; r < uint64(n) && ackedSet[r].CompareAndSwap(false, true) {
						if nAcked.Add(1) == int64(n) {
							closeAcked.Do(func() { close(allAcked) })
						}
					}
				}
				clear(pending)
				pending = pending[:0]
				return true
			}
			for {
				select {
				case ev, ok := <-events:
					if !ok {
						return
					}
					deliveries.Add(1)
					r := ev.OriginalEvent().EventNumber
					if r >= uint64(n) {
						fail(fmt.Errorf("psbench: event %d beyond the %d preloaded", r, n))
						return
					}
					if received[r].CompareAndSwap(false, true) && nReceived.Add(1) == int64(n) {
						closeIn.Do(func() { close(allIn) })
					}
					pending = append(pending, ev)
					if (len(pending) >= batch || tail == nil) && !flush() {
						return
					}
				case <-tail:
					tail = nil
					if !flush() {
						return
					}
				case <-ctx.Done():
					return
				}
			}
		}()
	}

	select {
	case <-allAcked:
	case <-failed:
		return res, failure
	case <-ctx.Done():
		return res, fmt.Errorf("psbench: %d of %d acked: %w", nAcked.Load(), n, ctx.Err())
	}
	res.Elapsed = time.Since(start)
	res.CPU = processCPU() - cpu0
	res.Events = int(nAcked.Load())
	res.Deliveries = int(deliveries.Load())
	res.AckCalls = int(ackCalls.Load())

	if settle > 0 {
		deadline := time.Now().Add(settle)
		for {
			info, err := t.c.GetPersistentSubscriptionInfo(ctx, t.stream, group, esdb.GetPersistentSubscriptionOptions{})
			if err != nil {
				return res, fmt.Errorf("psbench: group info: %w", err)
			}
			res.ServerTotal = info.Stats.TotalItems
			if res.ServerTotal >= int64(n) || time.Now().After(deadline) {
				break
			}
			time.Sleep(10 * time.Millisecond) // polling: acks are one-way, there is no event to wait on
		}
	}
	return res, nil
}

// CPUPerEvent is the process's CPU time per distinct event acked, in µs.
func (r deliveryResult) CPUPerEvent() float64 {
	if r.Events == 0 {
		return 0
	}
	return float64(r.CPU.Microseconds()) / float64(r.Events)
}

// processCPU is the CPU time (user and system) this process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// deliveryRow is one cell measured on both targets (median rounds).
type deliveryRow struct {
	Consumers, Batch int
	Node, Stub       deliveryResult
}

// Ratio is node events/s over stub events/s (0 if the stub did nothing).
func (r deliveryRow) Ratio() float64 {
	if s := r.Stub.EventsPerSec(); s > 0 {
		return r.Node.EventsPerSec() / s
	}
	return 0
}

// compareDelivery runs every cell on the node then on the stub (on the stub
// first in odd rounds, so that neither always runs in the other's wake), the
// whole sequence `rounds` times, and returns one row per cell with each
// target's median round. onResult, if set, sees every run. If profileDir is set, each
// run is CPU-profiled into it.
func compareDelivery(ctx context.Context, node, stub deliveryTarget, rounds int, settle time.Duration, profileDir string, onResult func(target string, r deliveryResult)) ([]deliveryRow, error) {
	results := make([][2][]deliveryResult, len(deliveryCells))
	for round := range rounds {
		for i, cell := range deliveryCells {
			order := []deliveryTarget{node, stub}
			if round%2 == 1 {
				order = []deliveryTarget{stub, node}
			}
			for _, t := range order {
				j := 0 // results[i][0] is the node's, [1] the stub's
				if t.name == stub.name {
					j = 1
				}
				stop := func() error { return nil }
				if profileDir != "" {
					name := fmt.Sprintf("%s-c%d-b%d-r%d.prof", t.name, cell.consumers, cell.batch, round)
					var err error
					if stop, err = startCPUProfile(filepath.Join(profileDir, name)); err != nil {
						return nil, err
					}
				}
				// As testing.B before each benchmark: no run pays for the
				// garbage of the run before it (they share the process).
				runtime.GC()
				r, err := runDelivery(ctx, t, cell.consumers, cell.batch, settle)
				err = errors.Join(err, stop())
				if err != nil {
					return nil, fmt.Errorf("%s consumers=%d ack-batch=%d: %w", t.name, cell.consumers, cell.batch, err)
				}
				if onResult != nil {
					onResult(t.name, r)
				}
				results[i][j] = append(results[i][j], r)
			}
		}
	}
	rows := make([]deliveryRow, len(deliveryCells))
	for i, cell := range deliveryCells {
		rows[i] = deliveryRow{Consumers: cell.consumers, Batch: cell.batch, Node: medianDelivery(results[i][0]), Stub: medianDelivery(results[i][1])}
	}
	return rows, nil
}

// startCPUProfile profiles the process into path until the returned stop.
func startCPUProfile(path string) (stop func() error, err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		return nil, errors.Join(err, f.Close())
	}
	return func() error {
		pprof.StopCPUProfile()
		return f.Close()
	}, nil
}

// medianDelivery returns the run with the median events/s (the lower middle
// one for an even count).
func medianDelivery(rs []deliveryResult) deliveryResult {
	rs = slices.Clone(rs)
	slices.SortFunc(rs, func(a, b deliveryResult) int { return cmp.Compare(a.EventsPerSec(), b.EventsPerSec()) })
	return rs[(len(rs)-1)/2]
}

// writeDeliveryTable renders rows as the RESULTS.md table.
func writeDeliveryTable(w io.Writer, rows []deliveryRow) error {
	var b strings.Builder
	b.WriteString("| consumers | ack batch | node events/s | stub events/s | node/stub |\n")
	b.WriteString("|---:|---:|---:|---:|---:|\n")
	for _, r := range rows {
		fmt.Fprintf(&b, "| %d | %d | %s | %s | %.2f |\n", r.Consumers, r.Batch,
			thousands(r.Node.EventsPerSec()), thousands(r.Stub.EventsPerSec()), r.Ratio())
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// thousands formats v with no decimals and comma separators.
func thousands(v float64) string {
	s := fmt.Sprintf("%.0f", v)
	var out []byte
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	return string(out)
}

func (r deliveryResult) String() string {
	return fmt.Sprintf("consumers=%d ack-batch=%d: %d events (%d deliveries, %d ack calls) in %v = %.0f events/s, %.1f µs CPU per event",
		r.Consumers, r.Batch, r.Events, r.Deliveries, r.AckCalls, r.Elapsed.Round(time.Millisecond), r.EventsPerSec(), r.CPUPerEvent())
}

// TestDeliveryCompareQuick runs every cell on both targets with a few
// hundred events: each run must ack every event at least once (as seen by
// the consumers and as counted by the server) and report a rate.
func TestDeliveryCompareQuick(t *testing.T) {
	const n = 300
	node, stub := nodeTarget(t, n), stubTarget(t, n)
	var runs []string
	rows, err := compareDelivery(t.Context(), node, stub, 1, waitFor, "", func(target string, r deliveryResult) {
		runs = append(runs, fmt.Sprintf("%s/%d/%d", target, r.Consumers, r.Batch))
		t.Logf("%s %v", target, r)
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"node/1/1", "stub/1/1", "node/1/32", "stub/1/32", "node/4/1", "stub/4/1", "node/4/32", "stub/4/32"}; !slices.Equal(runs, want) {
		t.Errorf("runs %v, want %v", runs, want)
	}
	if len(rows) != len(deliveryCells) {
		t.Fatalf("%d rows, want %d", len(rows), len(deliveryCells))
	}
	for _, row := range rows {
		t.Run(fmt.Sprintf("consumers=%d/ack-batch=%d", row.Consumers, row.Batch), func(t *testing.T) {
			for target, r := range map[string]deliveryResult{"node": row.Node, "stub": row.Stub} {
				if r.Events != n {
					t.Errorf("%s: %d distinct events acked, want %d", target, r.Events, n)
				}
				if r.ServerTotal != n {
					t.Errorf("%s: server counted %d acked, want %d", target, r.ServerTotal, n)
				}
				if r.EventsPerSec() <= 0 {
					t.Errorf("%s: %v events/s", target, r.EventsPerSec())
				}
				// Batched: n/batch full calls, at most one partial call per
				// consumer, and one call per redelivery after the tail.
				if most := (n+row.Batch-1)/row.Batch + row.Consumers + r.Deliveries - n; r.AckCalls < n/row.Batch || r.AckCalls > most {
					t.Errorf("%s: %d ack calls for %d deliveries with batch %d, want %d…%d", target, r.AckCalls, r.Deliveries, row.Batch, n/row.Batch, most)
				}
			}
			if row.Ratio() <= 0 {
				t.Errorf("ratio %v", row.Ratio())
			}
		})
	}
	var b strings.Builder
	if err := writeDeliveryTable(&b, rows); err != nil {
		t.Fatal(err)
	}
	if got := strings.Count(b.String(), "\n"); got != len(deliveryCells)+2 {
		t.Errorf("table has %d lines:\n%s", got, b.String())
	}
	t.Log("\n" + b.String())
}

// TestDeliveryCompareFull produces the RESULTS.md table:
//
//	go test ./eventstore/esdbnode/psub -run TestDeliveryCompareFull -psbench.full -v -timeout 20m
func TestDeliveryCompareFull(t *testing.T) {
	if !*psbenchFull {
		t.Skip("run with -psbench.full to produce the RESULTS.md table")
	}
	node, stub := nodeTarget(t, *psbenchEvents), stubTarget(t, *psbenchEvents)
	rows, err := compareDelivery(t.Context(), node, stub, *psbenchRounds, 0, *psbenchProf, func(target string, r deliveryResult) {
		t.Logf("%s %v", target, r)
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := writeDeliveryTable(os.Stdout, rows); err != nil {
		t.Fatal(err)
	}
}
