package eventlog

import (
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
)

// The index's block cache holds blocks: a second read of a flushed stream
// is served from it. (Sized like Pebble's default, smaller than the
// memtables Pebble charges to it, the cache kept nothing: every read missed.)
func TestIndexBlockCacheServesRepeatedReads(t *testing.T) {
	l := openTest(t, Options{})
	ctx := t.Context()
	_, err := l.Append(ctx, "s", Expected{Kind: ExpectAny}, evs(5000))
	require.NoError(t, err)
	// Pebble starts with a small memtable and doubles it each time one
	// fills: fill them until they are full-sized, as on a node that ran a
	// while, then flush the entries to a table.
	filler := make([]Proposed, 2500)
	for l.db.Metrics().MemTable.Size < indexMemTableSize {
		for i := range filler {
			filler[i] = Proposed{ID: uuid.New(), Type: "F"}
		}
		_, err := l.Append(ctx, "filler", Expected{Kind: ExpectAny}, filler)
		require.NoError(t, err)
	}
	require.NoError(t, l.db.Flush())

	read := func() {
		for from := uint64(0); from < 5000; from += 100 {
			recs, err := l.ReadStream(ctx, "s", Forwards, from, 100)
			require.NoError(t, err)
			require.Len(t, recs, 100)
		}
	}
	read()
	before := l.db.Metrics().BlockCache
	read()
	after := l.db.Metrics().BlockCache
	// (Misses are not compared: Pebble's background work after the flush
	// looks blocks up too.)
	require.Positive(t, after.Size, "the cache holds nothing")
	require.GreaterOrEqual(t, after.Hits-before.Hits, int64(50), "the second read's 50 pages hit less than one block each")
}
