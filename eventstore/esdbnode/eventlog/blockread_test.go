package eventlog

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
)

// TestReadStreamThroughBlocks reads streams whose frames are small (many per
// block), larger than a block, and spread over several chunks, interleaved with
// another stream, forwards and backwards from every revision with several
// limits, and compares each record with what was appended.
func TestReadStreamThroughBlocks(t *testing.T) {
	l := openTest(t, Options{ChunkSize: 256 << 10})
	rng := rand.New(rand.NewPCG(7, 8))
	var want []Proposed
	for i := 0; len(want) < 300; i++ {
		var batch []Proposed
		for range 1 + rng.IntN(20) {
			size := 10 + rng.IntN(400)
			if rng.IntN(25) == 0 {
				size = readBlock + rng.IntN(2*readBlock) // a frame larger than a block
			}
			data := make([]byte, size)
			for j := range data {
				data[j] = byte(rng.Uint32())
			}
			batch = append(batch, Proposed{ID: uuid.New(), Type: fmt.Sprint("E", size), Data: data, Metadata: []byte{byte(i)}})
		}
		mustAppend(t, l, "s", any_(), batch...)
		want = append(want, batch...)
		mustAppend(t, l, "other", any_(), evs(1+rng.IntN(3))...)
	}
	require.Greater(t, len(*l.chunks.Load()), 3, "the stream spans several chunks")
	check := func(dir Direction, from uint64, limit int) {
		t.Helper()
		got, err := l.ReadStream(t.Context(), "s", dir, from, limit)
		require.NoError(t, err)
		r := int(from)
		for _, rec := range got {
			require.Equal(t, uint64(r), rec.Revision, "dir %v from %d", dir, from)
			require.Equal(t, want[r].ID, rec.ID)
			require.Equal(t, want[r].Type, rec.Type)
			require.True(t, bytes.Equal(want[r].Data, rec.Data), "data of revision %d", r)
			require.Equal(t, want[r].Metadata, rec.Metadata)
			if dir == Forwards {
				r++
			} else {
				r--
			}
		}
		n := len(want) - int(from)
		if dir == Backwards {
			n = int(from) + 1
		}
		require.Len(t, got, min(limit, n), "dir %v from %d limit %d", dir, from, limit)
	}
	for from := range uint64(len(want)) {
		for _, limit := range []int{1, 7, 1000} {
			check(Forwards, from, limit)
			check(Backwards, from, limit)
		}
	}
}

// TestReadStreamReportsACorruptFrameInABlock flips a byte of a record that a
// stream read takes from a block read for its neighbour (the log is not
// reopened, so recovery does not see it first): the read fails with
// ErrCorrupt instead of returning the record.
func TestReadStreamReportsACorruptFrameInABlock(t *testing.T) {
	dir := t.TempDir()
	l, err := Open(dir, Options{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = l.Close() })
	mustAppend(t, l, "s", any_(), evs(10)...)
	got, err := l.ReadStream(t.Context(), "s", Forwards, 0, 10)
	require.NoError(t, err)
	require.Len(t, got, 10)

	path := filepath.Join(dir, chunkName(0))
	off := frameOffsets(t, path)[got[5].Position]
	flipByte(t, path, off+frameHeaderSize+20)

	_, err = l.ReadStream(t.Context(), "s", Forwards, 0, 10)
	require.ErrorIs(t, err, ErrCorrupt)
	_, err = l.ReadStream(t.Context(), "s", Backwards, 9, 10)
	require.ErrorIs(t, err, ErrCorrupt)
}
