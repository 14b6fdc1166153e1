package bench

import (
	"errors"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/orderstore/orders/eventstore"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestMeasureSyncAndCeiling(t *testing.T) {
	sync, err := MeasureSync(t.TempDir(), 20)
	require.NoError(t, err)
	assert.Equal(t, 20, sync.N)
	assert.Positive(t, sync.P50)
	assert.GreaterOrEqual(t, sync.P99, sync.P50)

	stub := Result{Name: "append-1", Events: 10, Elapsed: time.Second, P50: 100 * time.Microsecond}
	node := Result{Name: "append-1", Events: 1000, Elapsed: time.Second}
	s := SyncResult{N: 1, P50: 400 * time.Microsecond}
	assert.InDelta(t, 2000, AppendCeiling(stub, s), 1e-9)
	var b strings.Builder
	require.NoError(t, WriteCeiling(&b, []Row{{Workload: "append-1", Node: node, Stub: stub}}, s))
	assert.Contains(t, b.String(), "= 2,000 appends/s; node append-1 1,000 = 0.50 of it")
	assert.NotContains(t, b.String(), "measured")
	b.Reset()
	rows := []Row{
		{Workload: "append-1", Node: node, Stub: stub,
			Synced: Result{Name: "append-1", Events: 1250, Elapsed: time.Second, P50: 800 * time.Microsecond, P99: 2 * time.Millisecond}},
		{Workload: "append-16", Node: Result{Events: 4000, Elapsed: time.Second}, Stub: Result{Events: 10000, Elapsed: time.Second},
			Synced: Result{Name: "append-16", Events: 5000, Elapsed: time.Second, P50: time.Millisecond, P99: 3 * time.Millisecond}},
		{Workload: "read-all", Node: Result{Events: 100, Elapsed: time.Second}, Stub: Result{Events: 100, Elapsed: time.Second}},
	}
	require.NoError(t, WriteCeiling(&b, rows, s))
	assert.Contains(t, b.String(), "| append-1 | 1,250 | 125.00 | 0.80 | 800µs / 2ms |")
	assert.Contains(t, b.String(), "| append-16 | 5,000 | 0.50 | 0.80 | 1ms / 3ms |")
	assert.NotContains(t, b.String(), "| read-all |")
	_, err = MeasureSync(t.TempDir(), 0)
	assert.ErrorIs(t, err, ErrInvalidArgument)
}

// The syncing stub answers appends through the official client after
// writing their bytes and syncing them: a lone writer syncs each of its
// appends, a batch is one sync; Close removes the file.
func TestSyncingStub(t *testing.T) {
	dir := t.TempDir()
	stub, err := NewSyncingStub(dir)
	require.NoError(t, err)
	t.Cleanup(func() { _ = stub.Close() }) // on failure; closed below otherwise
	require.NoError(t, stub.Start())
	c, err := eventstore.Connect(stub.ConnectionString())
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, WarmUp(t.Context(), c))

	before := stub.syncer.syncs.Load()
	res, err := AppendSingle(t.Context(), c, 20)
	require.NoError(t, err)
	assert.Equal(t, 20, res.Events)
	assert.Equal(t, before+20, stub.syncer.syncs.Load(), "one sync per append of a lone writer")

	before = stub.syncer.syncs.Load()
	res, err = AppendConcurrent(t.Context(), c, 16, 320)
	require.NoError(t, err)
	assert.Equal(t, 320, res.Events)
	syncs := stub.syncer.syncs.Load() - before
	assert.Positive(t, syncs)
	assert.LessOrEqual(t, syncs, uint64(320))
	t.Logf("320 appends from 16 writers in %d syncs", syncs) // TestGroupSync shows the sharing

	before = stub.syncer.syncs.Load()
	res, err = AppendBatch(t.Context(), c, 100, 500)
	require.NoError(t, err)
	assert.Equal(t, 500, res.Events)
	assert.Equal(t, before+5, stub.syncer.syncs.Load())

	require.NoError(t, stub.Close())
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Empty(t, entries, "the sync file outlived the stub")
}

// groupSync: a lone call writes and syncs; calls that write while a sync
// runs wait for it and then share the next one; a failure fails every
// later call.
func TestGroupSync(t *testing.T) {
	f, err := newSyncFile(t.TempDir(), 64)
	require.NoError(t, err)
	defer f.close()
	g := newGroupSync(f)
	require.NoError(t, g.writeSync(3*SyncSize+1)) // four slots
	assert.Equal(t, uint64(1), g.syncs.Load())

	// The next sync waits until all eight callers have written: the first
	// one's sync covers its own write, one more covers the other seven.
	const callers = 8
	wrote := make(chan struct{}, callers)
	g.write = func(size int) error { err := f.write(size); wrote <- struct{}{}; return err }
	first := true
	g.sync = func() error {
		if first {
			first = false // only the syncing caller is here: no race
			for range callers {
				<-wrote
			}
		}
		return f.sync()
	}
	var wg sync.WaitGroup
	for range callers {
		wg.Go(func() { assert.NoError(t, g.writeSync(SyncSize)) })
	}
	wg.Wait()
	assert.Equal(t, uint64(1+callers), g.written)
	assert.Equal(t, g.written, g.synced)
	assert.Equal(t, uint64(3), g.syncs.Load(), "the seven writers that waited shared one sync")

	g.sync = func() error { return errors.New("disk on fire") }
	assert.ErrorContains(t, g.writeSync(1), "disk on fire")
	g.sync = f.sync
	assert.ErrorContains(t, g.writeSync(1), "disk on fire", "a failed sync is sticky")
}
