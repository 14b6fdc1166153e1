package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestBenchReadSide: orders bench's read-side section, in the JSON and in the markdown:
// live saturated and paced on SQLite (postgres not selected), the rebuild and its ceiling.
func TestBenchReadSide(t *testing.T) {
	md := filepath.Join(t.TempDir(), "bench.md")
	var rep struct {
		ReadSide struct {
			Events int `json:"events"`
			Live   []struct {
				Backend            string  `json:"backend"`
				Rate               int     `json:"ordersPerSecond"`
				AppendEventsPerSec float64 `json:"appendEventsPerSec"`
				EventsPerSec       float64 `json:"eventsPerSec"`
				MaxLag             int64   `json:"maxLag"`
				P50                int64   `json:"p50Ns"`
				P99                int64   `json:"p99Ns"`
			} `json:"live"`
			Rebuild []struct {
				Backend      string  `json:"backend"`
				Events       int64   `json:"events"`
				EventsPerSec float64 `json:"eventsPerSec"`
			} `json:"rebuild"`
			Ceiling struct {
				Events       int64   `json:"events"`
				EventsPerSec float64 `json:"eventsPerSec"`
			} `json:"ceiling"`
		} `json:"readSide"`
	}
	ok(t, &rep, "bench", "--quick", "--targets", "node", "--duration", "200ms", "--read-side-events", "600", "--md", md)
	rs := rep.ReadSide
	require.Equal(t, 600, rs.Events)
	require.Len(t, rs.Live, 2, "saturated and paced")
	assert.Equal(t, 0, rs.Live[0].Rate)
	assert.Equal(t, readSideRate, rs.Live[1].Rate)
	for _, l := range rs.Live {
		assert.Equal(t, "sqlite", l.Backend)
		assert.Positive(t, l.AppendEventsPerSec)
		assert.Positive(t, l.EventsPerSec)
		assert.GreaterOrEqual(t, l.MaxLag, int64(0))
		assert.Positive(t, l.P50)
		assert.GreaterOrEqual(t, l.P99, l.P50)
	}
	require.Len(t, rs.Rebuild, 1)
	assert.Equal(t, int64(600), rs.Rebuild[0].Events)
	assert.Positive(t, rs.Rebuild[0].EventsPerSec)
	assert.Equal(t, int64(600), rs.Ceiling.Events)
	assert.Positive(t, rs.Ceiling.EventsPerSec)
	b, err := os.ReadFile(md)
	require.NoError(t, err)
	assert.Contains(t, string(b), "### read side: projections live, 600 events")
	assert.Contains(t, string(b), "| ceiling: client reading $all into SQLite, one upsert per event |")
}
