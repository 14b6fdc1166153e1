package bench

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orderstore/orders/internal/testutil/pgtest"
)

var comparePG = flag.Bool("compare.pg", false, "run TestSyncingStubAgainstPostgresFull: the append workloads on the syncing stub, the node and PostgreSQL, interleaved")

// pgCeilingOptions sizes one run of the syncing stub, the node and
// PostgreSQL side by side.
type pgCeilingOptions struct {
	rounds                         int
	maxDuration                    time.Duration
	single, concurrent, batchTotal int // events per round of append-1, append-16, batch-100
}

// pgCeilingRow is one workload's median round on each target.
type pgCeilingRow struct {
	workload               string
	synced, node, postgres Result
}

// runPGCeiling runs append-1, append-16 and batch-100 through the peer
// suite's harness (the same writers, streams and payloads as `orders bench`)
// on three targets, each workload on the three in turn, round after round:
// the stub that only writes and syncs (through the official client), the
// node (in-process, through the official client) and PostgreSQL (pgx,
// synchronous_commit=on). Both gRPC servers share the benchmark's process,
// which makes their round trips cheaper than a child process's: if the
// syncing stub is slower than PostgreSQL here, no gRPC server that syncs
// before it answers is faster through this client on this machine.
func runPGCeiling(t *testing.T, o pgCeilingOptions) []pgCeilingRow {
	ctx := t.Context()
	stub, err := NewSyncingStub(t.TempDir())
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, stub.Close()) })
	require.NoError(t, stub.Start())
	synced, err := newESDBTarget(ctx, esdbConfig{URL: stub.ConnectionString()})
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, synced.Close()) })
	node, err := newESDBTarget(ctx, esdbConfig{DataDir: filepath.Join(t.TempDir(), "node")})
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, node.Close()) })
	pg, err := newPGTarget(ctx, testPostgresURL(), 16)
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, pg.Close()) })

	pw := peerWorkloads{maxDuration: o.maxDuration}
	workloads := []struct {
		name                 string
		writers, batch, size int
	}{
		{"append-1", 1, 1, o.single},
		{"append-16", 16, 1, o.concurrent},
		{"batch-100", 1, 100, o.batchTotal},
	}
	targets := []struct {
		label string
		t     Target
	}{{"synced", synced}, {"node", node}, {"postgres", pg}}
	results := make(map[string]map[string][]Result)
	for round := range o.rounds {
		for _, w := range workloads {
			if results[w.name] == nil {
				results[w.name] = make(map[string][]Result)
			}
			for _, tg := range targets {
				runtime.GC() // the gRPC targets share this process, as in Compare
				res, err := pw.appendN(ctx, tg.t, w.name, w.writers, w.batch, w.size)
				require.NoError(t, err)
				t.Logf("round %d: %s %v", round+1, tg.label, res)
				results[w.name][tg.label] = append(results[w.name][tg.label], res)
			}
		}
	}
	rows := make([]pgCeilingRow, 0, len(workloads))
	for _, w := range workloads {
		r := results[w.name]
		rows = append(rows, pgCeilingRow{w.name, median(r["synced"]), median(r["node"]), median(r["postgres"])})
	}
	return rows
}

// writePGCeiling prints rows as a markdown table.
func writePGCeiling(w io.Writer, rows []pgCeilingRow) error {
	if _, err := fmt.Fprintln(w, "\n| workload | syncing stub events/s (p50) | node events/s (p50) | postgres events/s (p50) | syncing stub / postgres | node / postgres |\n|---|---:|---:|---:|---:|---:|"); err != nil {
		return err
	}
	for _, r := range rows {
		if _, err := fmt.Fprintf(w, "| %s | %s (%v) | %s (%v) | %s (%v) | %.2f | %.2f |\n", r.workload,
			rate(r.synced.EventsPerSec()), roundLatency(r.synced.P50),
			rate(r.node.EventsPerSec()), roundLatency(r.node.P50),
			rate(r.postgres.EventsPerSec()), roundLatency(r.postgres.P50),
			ratio(r.synced.EventsPerSec(), r.postgres.EventsPerSec()), ratio(r.node.EventsPerSec(), r.postgres.EventsPerSec())); err != nil {
			return err
		}
	}
	return nil
}

func TestSyncingStubAgainstPostgresQuick(t *testing.T) {
	if !pgtest.Require(t) {
		return
	}
	rows := runPGCeiling(t, pgCeilingOptions{rounds: 1, maxDuration: -1, single: 20, concurrent: 64, batchTotal: 300})
	require.Len(t, rows, 3)
	for _, r := range rows {
		want := map[string]int{"append-1": 20, "append-16": 64, "batch-100": 300}[r.workload]
		for label, res := range map[string]Result{"synced": r.synced, "node": r.node, "postgres": r.postgres} {
			assert.Equal(t, want, res.Events, "%s on %s", r.workload, label)
			assert.Positive(t, res.P50, "%s on %s", r.workload, label)
		}
	}
	var out bytes.Buffer
	require.NoError(t, writePGCeiling(&out, rows))
	assert.Contains(t, out.String(), "| append-16 | ")
	assert.Contains(t, out.String(), "| syncing stub / postgres |")
}

// TestSyncingStubAgainstPostgresFull is the measurement behind the README's
// single-append comparison with PostgreSQL:
//
//	go test ./bench -run TestSyncingStubAgainstPostgresFull -compare.pg -v
func TestSyncingStubAgainstPostgresFull(t *testing.T) {
	if !*comparePG {
		t.Skip("run with -compare.pg to compare the syncing stub and the node with PostgreSQL")
	}
	if !pgtest.Require(t) {
		return
	}
	rows := runPGCeiling(t, pgCeilingOptions{rounds: 5, maxDuration: 3 * time.Second, single: 10_000, concurrent: 100_000, batchTotal: 500_000})
	sync, err := MeasureSync(t.TempDir(), 2000)
	require.NoError(t, err)
	require.NoError(t, writePGCeiling(os.Stdout, rows))
	_, err = fmt.Printf("\nfdatasync after a %d-byte write to a preallocated file: p50 %v, p99 %v\n", SyncSize, sync.P50, sync.P99)
	require.NoError(t, err)
}
