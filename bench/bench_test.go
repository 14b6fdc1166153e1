package bench

import (
	"context"
	"flag"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/orderstore/orders/eventstore/esdbnode"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var (
	compareFull = flag.Bool("compare.full", false, "run TestCompareFull: the full node-versus-stub comparison, printed as a markdown table")
	compareNode = flag.String("compare.node", "", "with -compare.full: measure the node at this esdb:// connection string instead of an embedded one")
)

// benchReadLog is how many events a target holds before read-all is
// benchmarked; ReadAll starts over at Start when b.N is larger.
const benchReadLog = 20_000

// startNode starts an embedded node on a loopback port in a temporary
// directory and returns a client connected to it; both are closed when the
// test ends.
func startNode(tb testing.TB) *esdb.Client {
	tb.Helper()
	n, err := esdbnode.New(esdbnode.Config{Addr: "127.0.0.1:0", DataDir: tb.TempDir()})
	require.NoError(tb, err)
	require.NoError(tb, n.Start())
	tb.Cleanup(func() { require.NoError(tb, n.Close()) })
	return dial(tb, n.ConnectionString())
}

// BenchmarkStreams measures the four workloads through the official client on
// the embedded node and on the no-storage stub. b.N counts events, so ns/op
// is nanoseconds per event; events/s is the same figure inverted.
func BenchmarkStreams(b *testing.B) {
	targets := []struct {
		name  string
		start func(testing.TB) *esdb.Client
	}{
		{"node", startNode},
		{"stub", func(tb testing.TB) *esdb.Client { _, c := startStub(tb); return c }},
	}
	for _, tg := range targets {
		b.Run(tg.name, func(b *testing.B) {
			c := tg.start(b)
			require.NoError(b, WarmUp(b.Context(), c))
			var h Harness
			preloaded := false
			workloads := []struct {
				name    string
				prepare func(ctx context.Context) error
				run     func(ctx context.Context, n int) (Result, error)
			}{
				{"append-1", nil, func(ctx context.Context, n int) (Result, error) { return h.AppendSingle(ctx, c, n) }},
				{"append-16", nil, func(ctx context.Context, n int) (Result, error) { return h.AppendConcurrent(ctx, c, 16, n) }},
				{"batch-100", nil, func(ctx context.Context, n int) (Result, error) { return h.AppendBatch(ctx, c, 100, n) }},
				{"read-all", func(ctx context.Context) error {
					if preloaded {
						return nil
					}
					preloaded = true
					return h.Preload(ctx, c, benchReadLog)
				}, func(ctx context.Context, n int) (Result, error) { return h.ReadAll(ctx, c, n) }},
			}
			for _, w := range workloads {
				b.Run(w.name, func(b *testing.B) {
					if w.prepare != nil {
						b.StopTimer()
						require.NoError(b, w.prepare(b.Context()))
						b.StartTimer()
					}
					res, err := w.run(b.Context(), b.N)
					require.NoError(b, err)
					b.ReportMetric(res.EventsPerSec(), "events/s")
					b.ReportMetric(float64(res.P99.Nanoseconds()), "p99-ns/call")
				})
			}
		})
	}
}

// quickOptions is a tiny Compare that still exercises every workload and
// the read-all preload on both targets.
func quickOptions(dataDir string) Options {
	return Options{
		DataDir:          dataDir,
		SingleEvents:     100,
		ConcurrentEvents: 320,
		BatchEvents:      1000,
		ReadEvents:       2500, // > events appended before, so the node is preloaded
		Rounds:           2,
		MaxDuration:      -1,
		Harness:          Harness{PageSize: 500},
	}
}

func TestCompareQuick(t *testing.T) {
	var seen []string
	opts := quickOptions(t.TempDir())
	opts.SyncDir = t.TempDir()
	opts.OnResult = func(target string, r Result) { seen = append(seen, target+"/"+r.Name) }
	rows, err := Compare(t.Context(), opts)
	require.NoError(t, err)
	entries, err := os.ReadDir(opts.SyncDir)
	require.NoError(t, err)
	assert.Empty(t, entries, "the syncing stub's file outlived Compare")

	want := []struct {
		workload string
		events   int
	}{
		{"append-1", opts.SingleEvents},
		{"append-16", opts.ConcurrentEvents},
		{"batch-100", opts.BatchEvents},
		{"read-all", opts.ReadEvents},
	}
	require.Len(t, rows, len(want))
	for i, w := range want {
		t.Run(w.workload, func(t *testing.T) {
			r := rows[i]
			assert.Equal(t, w.workload, r.Workload)
			for target, res := range map[string]Result{"node": r.Node, "stub": r.Stub} {
				assert.Equal(t, w.workload, res.Name, target)
				assert.GreaterOrEqual(t, res.Events, w.events, target)
				assert.Positive(t, res.EventsPerSec(), target)
			}
			assert.Positive(t, r.Ratio())
			if w.workload == "read-all" {
				assert.Zero(t, r.Synced, "the syncing stub does not read")
				return
			}
			assert.Equal(t, w.workload, r.Synced.Name)
			assert.GreaterOrEqual(t, r.Synced.Events, w.events)
		})
	}
	round := []string{
		"node/append-1", "stub/append-1", "synced/append-1",
		"node/append-16", "stub/append-16", "synced/append-16",
		"node/batch-100", "stub/batch-100", "synced/batch-100",
		"node/read-all", "stub/read-all",
	}
	assert.Equal(t, append(round, round...), seen)

	var b strings.Builder
	require.NoError(t, WriteMarkdown(&b, rows))
	table := b.String()
	assert.Equal(t, len(want)+2, strings.Count(table, "\n"), table)
	for _, w := range want {
		assert.Contains(t, table, "| "+w.workload+" | ")
	}
	t.Log("\n" + table)

	b.Reset()
	require.NoError(t, WriteCeiling(&b, rows, SyncResult{N: 1, P50: time.Millisecond}))
	ceilings := b.String()
	assert.Contains(t, ceilings, "measured ceilings")
	for _, w := range want[:3] {
		assert.Contains(t, ceilings, "| "+w.workload+" | ")
	}
	assert.NotContains(t, ceilings, "| read-all | ")
	t.Log(ceilings)
}

func TestCompareNeedsADataDir(t *testing.T) {
	_, err := Compare(t.Context(), Options{})
	assert.ErrorIs(t, err, ErrInvalidArgument)
}

// TestCompareFull produces the README table:
//
//	go test ./bench -run TestCompareFull -compare.full -v -timeout 10m
func TestCompareFull(t *testing.T) {
	if !*compareFull {
		t.Skip("run with -compare.full to produce the README table")
	}
	opts := Options{
		DataDir:              t.TempDir(),
		NodeConnectionString: *compareNode,
		SyncDir:              t.TempDir(), // the node's disk: the same temporary directory tree
		OnResult:             func(target string, r Result) { t.Logf("%s %v", target, r) },
	}
	rows, err := Compare(t.Context(), opts)
	require.NoError(t, err)
	sync, err := MeasureSync(t.TempDir(), 2000) // same disk, same run
	require.NoError(t, err)
	require.NoError(t, WriteMarkdown(os.Stdout, rows))
	require.NoError(t, WriteCeiling(os.Stdout, rows, sync))
}

func TestReadAllStartsOverOnASmallLog(t *testing.T) {
	c := startNode(t)
	h := Harness{PageSize: 4}
	_, err := h.AppendBatch(t.Context(), c, 10, 10)
	require.NoError(t, err)

	res, err := h.ReadAll(t.Context(), c, 50)
	require.NoError(t, err)
	assert.Equal(t, 50, res.Events)
	// The log holds about a dozen events (ours and the node's seeds), so 50
	// events take several passes, each ending with a short page.
	assert.Greater(t, res.Ops, 50/4)
}
