package eventlog

import (
	"path/filepath"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// An index written with the keys of format 1 (stream names in the 's' and
// 'i' keys, 17-byte heads, no format mark) is dropped on Open and rebuilt
// from the chunk files: reads, heads, expected revisions and idempotency
// work as before, and the next Open keeps the rebuilt index.
func TestOpenRebuildsAnIndexOfAnEarlierFormat(t *testing.T) {
	dir := t.TempDir()
	l, err := Open(dir, Options{})
	require.NoError(t, err)
	ctx := t.Context()
	a := evs(3)
	_, err = l.Append(ctx, "a", Expected{Kind: ExpectNoStream}, a)
	require.NoError(t, err)
	_, err = l.Append(ctx, "b", Expected{Kind: ExpectAny}, evs(2))
	require.NoError(t, err)
	require.NoError(t, l.Close())

	// Make it look like format 1: no mark, an old head value and an old key.
	db, err := openIndex(vfs.Default, filepath.Join(dir, indexDir), 0)
	require.NoError(t, err)
	require.NoError(t, db.Delete(formatKey, pebble.NoSync))
	old := make([]byte, 17) // last+1 = 0, no flags, pos 0: a head of format 1
	require.NoError(t, db.Set(appendHeadKey(nil, "a"), old, pebble.NoSync))
	require.NoError(t, db.Set(append(append([]byte{prefixStream, 0, 0, 0, 1}, 'a'), make([]byte, 8)...), []byte("junk"), pebble.NoSync))
	require.NoError(t, db.Flush())
	require.NoError(t, db.Close())

	l, err = Open(dir, Options{})
	require.NoError(t, err)
	assert.True(t, l.rebuiltIndex, "the old index was kept")
	recs, err := l.ReadStream(ctx, "a", Forwards, 0, 10)
	require.NoError(t, err)
	require.Len(t, recs, 3)
	for i, r := range recs {
		assert.Equal(t, a[i].ID, r.ID)
		assert.Equal(t, uint64(i), r.Revision)
	}
	st, err := l.Stream(ctx, "a")
	require.NoError(t, err)
	assert.Equal(t, int64(2), st.LastRevision)
	// The same append again is idempotent (found through the rebuilt 'i'
	// keys), a stale expected revision is refused, the right one appends.
	res, err := l.Append(ctx, "a", Expected{Kind: ExpectAny}, a)
	require.NoError(t, err)
	assert.Equal(t, int64(2), res.Revision)
	_, err = l.Append(ctx, "a", Expected{Kind: ExpectRevision, Revision: 1}, evs(1))
	var wev *WrongExpectedVersionError
	require.ErrorAs(t, err, &wev)
	res, err = l.Append(ctx, "a", Expected{Kind: ExpectRevision, Revision: 2}, evs(1))
	require.NoError(t, err)
	assert.Equal(t, int64(3), res.Revision)
	require.NoError(t, l.Close())

	l, err = Open(dir, Options{})
	require.NoError(t, err)
	defer l.Close()
	assert.False(t, l.rebuiltIndex, "an index of the current format was rebuilt again")
	recs, err = l.ReadStream(ctx, "b", Forwards, 0, 10)
	require.NoError(t, err)
	assert.Len(t, recs, 2)
}
