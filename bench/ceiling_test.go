package bench

import (
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
	require.NoError(t, WriteCeiling(&b, []Row{{Workload: "append-1", Node: node, Stub: stub}}, s))
	assert.Contains(t, b.String(), "= 2,000 appends/s; node append-1 1,000 = 0.50 of it")
	_, err = MeasureSync(t.TempDir(), 0)
	assert.ErrorIs(t, err, ErrInvalidArgument)
}
