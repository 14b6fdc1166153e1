package eventlog

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// writeLog writes n single-event appends (one group each) and, every fifth,
// a three-event append, to a log in a fresh directory on the real disk,
// closes it and returns the directory.
func writeLog(t *testing.T, n int) string {
	t.Helper()
	dir := t.TempDir()
	l, err := Open(dir, Options{})
	require.NoError(t, err)
	for i := range n {
		events := evs(1)
		if i%5 == 4 {
			events = evs(3)
		}
		mustAppend(t, l, fmt.Sprintf("s-%d", i%7), any_(), events...)
	}
	require.NoError(t, l.Close())
	return dir
}

// frameOffsets returns the offset of each frame in a chunk file, by
// position.
func frameOffsets(t *testing.T, path string) map[uint64]int64 {
	t.Helper()
	out := map[uint64]int64{}
	for pos, f := range frameHeaders(t, path) {
		out[pos] = f.off
	}
	return out
}

type placedFrame struct {
	frame
	off int64
}

func frameHeaders(t *testing.T, path string) map[uint64]placedFrame {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	out := map[uint64]placedFrame{}
	for off := int64(chunkHeaderSize); off+frameOverhead <= int64(len(data)) && data[off] != 0; {
		f, ok := parseFrameHeader(data[off:], int64(len(data))-off)
		require.True(t, ok)
		out[f.pos] = placedFrame{f, off}
		off += f.size()
	}
	return out
}

func TestFlippedByteFailsOpen(t *testing.T) {
	for _, tt := range []struct {
		name   string
		pos    uint64 // record whose payload gets a flipped byte
		header bool   // flip a byte of its frame header instead
	}{
		{"middle of the chunk", 40, false},
		{"frame header in the middle", 40, true},
		{"last record", 84, false}, // 60 appends, 12 of them of 3 events
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := writeLog(t, 60)
			path := filepath.Join(dir, chunkName(0))
			off, ok := frameOffsets(t, path)[tt.pos]
			require.True(t, ok)
			at := off + frameHeaderSize + 20 // inside the payload (the event id)
			if tt.header {
				at = off + 12 // the position
			}
			flipByte(t, path, at)

			_, err := Open(dir, Options{})
			require.ErrorIs(t, err, ErrCorrupt)
			t.Log(err)
		})
	}
}

func flipByte(t *testing.T, path string, at int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	require.NoError(t, err)
	b := make([]byte, 1)
	_, err = f.ReadAt(b, at)
	require.NoError(t, err)
	b[0] ^= 0x10
	_, err = f.WriteAt(b, at)
	require.NoError(t, err)
	require.NoError(t, f.Close())
}

func TestFlippedByteInAnOlderChunkFailsTheRead(t *testing.T) {
	dir := t.TempDir()
	l, err := Open(dir, Options{ChunkSize: 16 << 10})
	require.NoError(t, err)
	for i := range 200 {
		mustAppend(t, l, fmt.Sprintf("s-%d", i%3), any_(), bigEvents(newRand(i), 1)...)
	}
	require.NoError(t, l.Close())
	path := filepath.Join(dir, chunkName(0))
	offs := frameOffsets(t, path)
	flipByte(t, path, offs[2]+frameHeaderSize+20)

	l, err = Open(dir, Options{ChunkSize: 16 << 10}) // only the last chunk is verified on Open
	require.NoError(t, err)
	t.Cleanup(func() { _ = l.Close() })
	_, err = l.ReadAll(t.Context(), Forwards, 0, math.MaxInt)
	assert.ErrorIs(t, err, ErrCorrupt)
	_, err = l.ReadStream(t.Context(), "s-1", Forwards, 0, math.MaxInt)
	assert.ErrorIs(t, err, ErrCorrupt)
	got, err := l.ReadAll(t.Context(), Forwards, 3, 10)
	require.NoError(t, err, "records after the damaged one read fine")
	assert.Len(t, got, 10)
}

func TestTruncatedLastChunkRecovers(t *testing.T) {
	dir := writeLog(t, 60) // 72 records
	path := filepath.Join(dir, chunkName(0))
	frames := frameHeaders(t, path)
	require.Len(t, frames, 84)
	// Cut in the header of the frame of record 48; 47..49 is one of the
	// three-event appends.
	f := frames[48]
	require.Equal(t, uint32(1), f.first, "record 48 is the second of its append")
	require.NoError(t, os.Truncate(path, f.off+10))

	l, err := Open(dir, Options{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = l.Close() })
	assert.Equal(t, uint64(46), l.Head(), "the cut append is dropped whole")
	assert.True(t, l.rebuiltIndex, "the index (flushed by Close) was ahead of the cut log")
	checkIndexAgrees(t, l)
	res := mustAppend(t, l, "after", any_(), evs(2)...)
	assert.Equal(t, uint64(48), res.Position)
	require.NoError(t, l.Close())

	l, err = Open(dir, Options{})
	require.NoError(t, err)
	assert.Equal(t, uint64(48), l.Head())
	checkIndexAgrees(t, l)
}

func TestOldLayoutIsRefused(t *testing.T) {
	dir := t.TempDir()
	db, err := pebble.Open(dir, &pebble.Options{})
	require.NoError(t, err)
	require.NoError(t, db.Set(append([]byte{prefixLegacy}, 0, 0, 0, 0, 0, 0, 0, 1), []byte{1}, pebble.Sync))
	require.NoError(t, db.Close())

	_, err = Open(dir, Options{})
	require.ErrorIs(t, err, ErrOldLayout)
	assert.Contains(t, err.Error(), dir)
}

func newRand(seed int) *rand.Rand { return rand.New(rand.NewPCG(uint64(seed), 9)) }
