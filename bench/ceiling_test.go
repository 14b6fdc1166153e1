package bench

import (
	"os"
	"strings"
	"testing"
	"time"

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
	require.NoError(t, WriteCeiling(&b, []Row{{Workload: "append-1", Node: node, Stub: stub}}, s, Result{}))
	assert.Contains(t, b.String(), "= 2,000 appends/s; node append-1 1,000 = 0.50 of it")
	assert.NotContains(t, b.String(), "measured")
	b.Reset()
	synced := Result{Name: "append-1", Events: 1250, Elapsed: time.Second, P50: 800 * time.Microsecond}
	require.NoError(t, WriteCeiling(&b, []Row{{Workload: "append-1", Node: node, Stub: stub}}, s, synced))
	assert.Contains(t, b.String(), "1,250 appends/s (p50 800µs")
	assert.Contains(t, b.String(), "node append-1 = 0.80 of it")
	_, err = MeasureSync(t.TempDir(), 0)
	assert.ErrorIs(t, err, ErrInvalidArgument)
}

// The syncing stub answers appends through the official client, each after
// a write and a sync of its file, and removes the file when closed.
func TestSyncingStub(t *testing.T) {
	dir := t.TempDir()
	res, err := MeasureSyncedAppend(t.Context(), dir, Harness{}, 20, 2)
	require.NoError(t, err)
	assert.Equal(t, 20, res.Events)
	assert.Positive(t, res.P50)
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Empty(t, entries, "the sync file outlived the stub")
	_, err = MeasureSyncedAppend(t.Context(), dir, Harness{}, 0, 1)
	assert.ErrorIs(t, err, ErrInvalidArgument)
}
