package bench

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orderstore/orders/internal/testutil/pgtest"
)

// testPostgresURL is the PostgreSQL of the tests (env ORDERS_TEST_POSTGRES).
func testPostgresURL() string {
	if v := os.Getenv("ORDERS_TEST_POSTGRES"); v != "" {
		return v
	}
	return DefaultPostgresURL
}

// tinySuite is QuickSuite made smaller still for -race.
func tinySuite(t *testing.T) SuiteOptions {
	o := QuickSuite()
	o.DataDir = t.TempDir()
	o.PostgresURL = testPostgresURL()
	o.Sizes = []int{0, 10_000}
	// PostgreSQL is shared (max_connections 100) with other packages' tests:
	// the pool holds one connection per writer, so no 64 writers here.
	o.Writers = []int{1, 16}
	o.MaxDuration = 500 * time.Millisecond
	o.SingleEvents = 50
	o.ConcurrentEvents = 640
	o.BatchEvents = 1000
	o.ReadEvents = 2500
	o.CatchUpEvents = 2000
	o.OrderFlow = 500 * time.Millisecond
	o.Progress = t.Logf
	return o
}

// requirePeers skips the test, with one line, when PostgreSQL or nats-server is missing; with
// ORDERS_TEST_REQUIRE_ALL set (.ci/run sets it) it fails instead.
func requirePeers(t *testing.T) {
	t.Helper()
	if !pgtest.Require(t) {
		return
	}
	if _, err := FindNATSServer(""); err != nil {
		msg := "nats-server not found: install it with `apt-get install -y nats-server` (bash .ci/run does)"
		if os.Getenv(pgtest.RequireEnv) != "" {
			t.Fatalf("%s; %s is set, so this is a failure", msg, pgtest.RequireEnv)
		}
		t.Skip(msg)
	}
}

func TestRunSuiteAllTargets(t *testing.T) {
	requirePeers(t)
	opts := tinySuite(t)
	rep, err := RunSuite(t.Context(), opts)
	require.NoError(t, err)

	for _, ts := range rep.Targets {
		assert.True(t, ts.Ran, "%s: %s", ts.Name, ts.Reason)
	}
	workloads := []string{"append-1", "append-16", "batch-100", "read-all", "catch-up"}
	require.Len(t, rep.Tables, len(workloads)*len(opts.Sizes)+1)
	i := 0
	for _, size := range opts.Sizes {
		for _, w := range workloads {
			tb := rep.Tables[i]
			i++
			if i == len(workloads) {
				i++ // the order flow follows catch-up at the first size
			}
			t.Run(w, func(t *testing.T) {
				assert.Equal(t, w, tb.Workload)
				assert.Equal(t, size, tb.Size)
				require.Len(t, tb.Figures, 3)
				best := 0.0
				for j, f := range tb.Figures {
					assert.Equal(t, allTargets[j], f.Target)
					assert.Positive(t, f.EventsPerSec, f.Target)
					assert.Positive(t, f.Events, f.Target)
					assert.Positive(t, f.P50, f.Target)
					assert.Positive(t, f.Ratio, f.Target)
					assert.LessOrEqual(t, f.Ratio, 1.0, f.Target)
					best = max(best, f.Ratio)
				}
				assert.Equal(t, 1.0, best, "the best target has ratio 1")
			})
		}
	}
	// Memory at each size, after the preload and after the workloads.
	require.Len(t, rep.Memory, 2*len(opts.Sizes))
	for _, m := range rep.Memory {
		assert.Empty(t, m.Error)
		assert.Greater(t, m.RSSBytes, int64(1<<20))
	}
	// Bytes on disk of every store after each preload; at the second size each
	// holds at least that many events, in plausibly many bytes (a few hundred
	// per event: more than the 16-byte payload, far less than a megabyte).
	require.Len(t, rep.Disk, 3*len(opts.Sizes))
	for _, u := range rep.Disk {
		assert.Empty(t, u.Error, u.Target)
		if u.Size == opts.Sizes[1] {
			assert.GreaterOrEqual(t, u.Events, u.Size, u.Target)
			per := float64(u.Bytes) / float64(u.Events)
			assert.Greater(t, per, 16.0, u.Target)
			assert.Less(t, per, float64(1<<20), u.Target)
		}
	}
	// The second size preloaded every store; the node and PostgreSQL then
	// settled (NATS has no such step).
	assert.Len(t, rep.Preloads, 3)
	for _, p := range rep.Preloads {
		assert.Empty(t, p.SettleError, p.Target)
		switch p.Target {
		case "nats":
			assert.Zero(t, p.Settle)
		case "node": // at least one window of watching its CPU
			assert.GreaterOrEqual(t, p.Settle, settleWindow)
		default:
			assert.Positive(t, p.Settle, p.Target)
		}
	}
	assert.Empty(t, rep.NotRun)
	flow := rep.Tables[len(workloads)]
	assert.Equal(t, "order-flow", flow.Workload)
	require.Len(t, flow.Figures, 1)
	assert.Equal(t, "node", flow.Figures[0].Target)
	assert.Positive(t, flow.Figures[0].Events)
	assert.Equal(t, 2*flow.Figures[0].Ops, flow.Figures[0].Events, "place and pay: two events per order")
	assert.Positive(t, rep.OrderFlowCatchUp)

	var md bytes.Buffer
	require.NoError(t, rep.WriteMarkdown(&md))
	out := md.String()
	for _, w := range workloads {
		assert.Contains(t, out, "### "+w+", 0 events in the store")
		assert.Contains(t, out, "### "+w+", 10,000 events in the store")
	}
	assert.Contains(t, out, "node resident memory")
	assert.Contains(t, out, "bytes on disk after the preload")
	assert.Equal(t, len(workloads)*len(opts.Sizes)*3, strings.Count(out, "\n| node | ")+strings.Count(out, "\n| postgres | ")+strings.Count(out, "\n| nats | ")-3-len(rep.Preloads)-len(rep.Disk)-1,
		"one row per target per table, plus the target list, the bytes on disk and the preloads")
	t.Log("\n" + out)

	var js bytes.Buffer
	require.NoError(t, rep.WriteJSON(&js))
	var back Report
	require.NoError(t, json.Unmarshal(js.Bytes(), &back))
	assert.Equal(t, len(rep.Tables), len(back.Tables))
	assert.InDelta(t, rep.Tables[0].Figures[0].EventsPerSec, back.Tables[0].Figures[0].EventsPerSec, 1e-6)
}

func TestRunSuiteReportsAMissingNATSServer(t *testing.T) {
	opts := tinySuite(t)
	opts.Targets = []string{TargetNode, TargetNATS}
	opts.Sizes = []int{0}
	opts.NATSServer = t.TempDir() + "/no-such-nats-server"
	rep, err := RunSuite(t.Context(), opts)
	require.NoError(t, err)
	require.Len(t, rep.Targets, 3)
	assert.True(t, rep.Targets[0].Ran)
	assert.Equal(t, "not run: not selected", rep.Targets[1].Reason)
	assert.False(t, rep.Targets[2].Ran)
	assert.Contains(t, rep.Targets[2].Reason, ErrNoNATSServer.Error())
	for _, tb := range rep.Tables {
		require.Len(t, tb.Figures, 1, tb.Workload)
		assert.Equal(t, "node", tb.Figures[0].Target)
		assert.Equal(t, 1.0, tb.Figures[0].Ratio)
	}
}

func TestSuiteOptionsValidate(t *testing.T) {
	ok := QuickSuite()
	ok.DataDir = t.TempDir()
	tests := []struct {
		name   string
		change func(*SuiteOptions)
	}{
		{"no data dir", func(o *SuiteOptions) { o.DataDir = "" }},
		{"sizes not ascending", func(o *SuiteOptions) { o.Sizes = []int{10, 0} }},
		{"no sizes", func(o *SuiteOptions) { o.Sizes = nil }},
		{"zero rounds", func(o *SuiteOptions) { o.Rounds = 0 }},
		{"zero writers", func(o *SuiteOptions) { o.Writers = []int{1, 0} }},
		{"no read events", func(o *SuiteOptions) { o.ReadEvents = 0 }},
		{"unknown target", func(o *SuiteOptions) { o.Targets = []string{"mongo"} }},
	}
	require.NoError(t, ok.validate())
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := ok
			tt.change(&o)
			_, err := RunSuite(t.Context(), o)
			assert.ErrorIs(t, err, ErrInvalidArgument)
		})
	}
}

func TestPeersRejectAStaleToken(t *testing.T) {
	requirePeers(t)
	opts := tinySuite(t)
	for _, name := range allTargets {
		t.Run(name, func(t *testing.T) {
			tg, err := startTarget(t.Context(), name, opts)
			require.NoError(t, err)
			t.Cleanup(func() { assert.NoError(t, tg.Close()) })
			w := newPeerWriter(1, 1)
			require.NoError(t, w.append(t.Context(), tg))
			stale := w.tokens[0]
			require.NoError(t, w.append(t.Context(), tg))
			_, err = tg.Append(t.Context(), w.streams[0], stale, []Event{{ID: uuid.New(), Type: typeOrderPaid, Data: []byte(`{}`)}})
			assert.Error(t, err, "an append with a stale expected token must fail")
			_, err = tg.Append(t.Context(), w.streams[0], NoToken, []Event{{ID: uuid.New(), Type: typeOrderPlaced, Data: []byte(`{}`)}})
			assert.Error(t, err, "an append expecting no stream to an existing stream must fail")
		})
	}
}

// BenchmarkCatchUp measures the node's catch-up subscription from the start
// over a preloaded log (b.N events, at most the log): for profiling.
func BenchmarkCatchUp(b *testing.B) {
	const log = 200_000
	tg, err := newESDBTarget(b.Context(), esdbConfig{DataDir: b.TempDir()})
	require.NoError(b, err)
	b.Cleanup(func() { assert.NoError(b, tg.Close()) })
	require.NoError(b, tg.Preload(b.Context(), log))
	b.ResetTimer()
	for done := 0; done < b.N; done += log {
		require.NoError(b, tg.CatchUp(b.Context(), min(log, b.N-done)))
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}
