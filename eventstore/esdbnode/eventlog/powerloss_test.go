package eventlog

import (
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
)

var (
	powerLossSeed  = flag.Uint64("powerloss.seed", 0, "TestPowerLoss: seed of the crash schedule (0: the fixed default)")
	powerLossLives = flag.Int("powerloss.lives", 0, "TestPowerLoss: number of fresh logs to crash (0: the default)")
)

// TestPowerLoss crashes the log 120 times at random moments while
// concurrent writers append, through a filesystem that keeps, at the crash,
// only what was synced plus a random part of the rest (Pebble's crashable
// MemFS: unsynced 4 KiB blocks and directory entries are kept or dropped at
// random). The chunk files and the index both live on it. After each crash
// the log is reopened and checked: every append acknowledged before the
// crash is there at its revisions and positions, no append is half there,
// the index agrees with the chunk files, and writing continues.
//
// Small chunks (16 KiB) make groups cross chunk boundaries and chunks get
// created (and crashed in the middle of being created) all the time.
func TestPowerLoss(t *testing.T) {
	lives, crashesPerLife := 40, 3
	if testing.Short() {
		lives = 10
	}
	seed := uint64(20261129)
	if *powerLossSeed != 0 {
		seed = *powerLossSeed
	}
	if *powerLossLives != 0 {
		lives = *powerLossLives
	}
	rng := rand.New(rand.NewPCG(seed, 1))
	var totalAcked, totalCrashes, inSync, torn, rebuilt int // torn: recovery dropped a group
	for life := range lives {
		mem := vfs.NewCrashableMem()
		var history []*crashAppend // acknowledged before some crash
		for crash := range crashesPerLife {
			name := fmt.Sprintf("life %d crash %d", life, crash)
			cfg := vfs.CrashCloneCfg{UnsyncedDataPercent: rng.IntN(101), RNG: rand.New(rand.NewPCG(rng.Uint64(), 3))}
			// Half of the crashes happen inside the n-th fdatasync of a
			// chunk file: the group is written, not yet synced.
			fs := &syncCrashFS{FS: mem, mem: mem, cfg: cfg, cloned: make(chan struct{})}
			if rng.IntN(2) == 0 {
				fs.countdown.Store(int64(1 + rng.IntN(60)))
			}
			load := newCrashLoad()
			var before []*crashAppend // acknowledged before the crash
			flushFirst := rng.IntN(2) == 0
			fs.onCrash = func() {
				before = load.ackedSoFar()
				if l := fs.log.Load(); l != nil {
					fs.headAtClone = l.Head()
					if flushFirst {
						// As a background memtable flush could: the index
						// may then cover a group whose sync is in flight.
						if err := l.db.Flush(); err != nil {
							t.Errorf("%s: flush: %v", name, err)
						}
					}
				}
			}
			l, err := Open("db", Options{FS: fs, ChunkSize: 16 << 10, MaxBatch: 1 + rng.IntN(8)})
			require.NoError(t, err, name)
			if life%2 == 1 {
				l.overlapAt = 1 // every group: index commit beside the sync
			}
			fs.log.Store(l)
			for g := range 1 + rng.IntN(6) {
				load.writer(t, l, rand.New(rand.NewPCG(rng.Uint64(), 2)), func(r *rand.Rand) *crashAppend {
					return &crashAppend{stream: fmt.Sprintf("s%d-%d", g, r.IntN(4)), events: bigEvents(r, 1+r.IntN(5))}
				})
			}
			if fs.countdown.Load() > 0 {
				inSync++
			} else {
				// Crash after a random number of acknowledgements (0
				// included: a crash right after Open).
				load.waitAcked(t, l, rng.IntN(40))
				fs.crash()
			}
			<-fs.cloned
			require.NoError(t, l.Close())
			load.halt()
			attempted := load.attempted()

			history = append(history, before...)
			totalAcked += len(before)
			totalCrashes++
			mem = fs.clone
			l, err = Open("db", Options{FS: mem, ChunkSize: 16 << 10})
			require.NoError(t, err, name)
			if l.Head() < fs.headAtClone {
				t.Fatalf("%s: head %d after recovery, %d was published before the crash", name, l.Head(), fs.headAtClone)
			}
			if l.droppedTail {
				torn++
			}
			if l.rebuiltIndex {
				rebuilt++
			}
			checkAcked(t, l, history)
			checkAllOrNothing(t, l, attempted)
			checkIndexAgrees(t, l)
			head := l.Head()
			res := mustAppend(t, l, "after-crash", any_(), evs(2)...)
			require.Equal(t, head+2, res.Position, "%s: positions continue after the crash", name)
			history = append(history, &crashAppend{stream: "after-crash", res: res, acked: true, events: nil})
			require.NoError(t, l.Close())
			if t.Failed() {
				t.Fatalf("%s (seed %d)", name, seed)
			}
		}
	}
	t.Logf("%d crashes (%d inside a sync), %d torn groups dropped, %d index rebuilds, %d appends acknowledged before them, all recovered",
		totalCrashes, inSync, torn, rebuilt, totalAcked)
}

// syncCrashFS is the crashable MemFS with one crash point more: when
// countdown reaches zero, the next fdatasync of a chunk file clones the
// filesystem before syncing (the written group is not yet durable).
type syncCrashFS struct {
	vfs.FS
	mem       *vfs.MemFS
	cfg       vfs.CrashCloneCfg
	countdown atomic.Int64
	once      sync.Once
	cloned    chan struct{}
	clone     *vfs.MemFS
	onCrash   func() // called just before the clone
	log       atomic.Pointer[Log]

	headAtClone uint64 // published head at the crash
}

func (fs *syncCrashFS) crash() {
	fs.once.Do(func() {
		fs.onCrash()
		fs.clone = fs.mem.CrashClone(fs.cfg)
		close(fs.cloned)
	})
}

func (fs *syncCrashFS) OpenReadWrite(name string, category vfs.DiskWriteCategory, opts ...vfs.OpenOption) (vfs.File, error) {
	f, err := fs.FS.OpenReadWrite(name, category, opts...)
	if err != nil || !strings.HasPrefix(fs.PathBase(name), chunkPrefix) {
		return f, err
	}
	return &syncCrashFile{File: f, fs: fs}, nil
}

type syncCrashFile struct {
	vfs.File
	fs *syncCrashFS
}

func (f *syncCrashFile) SyncData() error {
	if f.fs.countdown.Load() > 0 && f.fs.countdown.Add(-1) == 0 {
		f.fs.crash()
	}
	return f.File.SyncData()
}

// bigEvents are events of 10 to 3000 bytes, so that groups span sectors,
// 4 KiB blocks and chunks.
func bigEvents(r *rand.Rand, n int) []Proposed {
	out := make([]Proposed, n)
	for i := range out {
		data := make([]byte, 10+r.IntN(3000))
		for j, c := 0, byte(r.Uint32()); j < len(data); j++ {
			data[j] = 'a' + (c+byte(j))%26
		}
		out[i] = Proposed{ID: uuid.New(), Type: "E", Data: data}
	}
	return out
}

// checkIndexAgrees compares the index with the chunk files: $all (read from
// the chunks) is dense, every record is where the stream index says, each
// stream's head matches its last record, and re-appending an event is
// recognised by the idempotency index.
func checkIndexAgrees(t *testing.T, l *Log) {
	t.Helper()
	all, err := l.ReadAll(t.Context(), Forwards, 0, math.MaxInt)
	require.NoError(t, err)
	require.Len(t, all, int(l.Head()))
	byStream := map[string][]Record{}
	for i, r := range all {
		require.Equal(t, uint64(i+1), r.Position, "$all dense")
		byStream[r.Stream] = append(byStream[r.Stream], r)
	}
	for stream, recs := range byStream {
		got, err := l.ReadStream(t.Context(), stream, Forwards, 0, math.MaxInt)
		require.NoError(t, err, stream)
		require.Equal(t, poss(recs), poss(got), "%s: stream index", stream)
		require.Equal(t, ids(recs), ids(got), stream)
		for i, r := range got {
			require.Equal(t, uint64(i), r.Revision, "%s: dense revisions", stream)
		}
		st, err := l.Stream(t.Context(), stream)
		require.NoError(t, err)
		require.Equal(t, int64(len(recs)-1), st.LastRevision, "%s: head", stream)
		last := recs[len(recs)-1]
		res, err := l.Append(t.Context(), stream, any_(), []Proposed{{ID: last.ID, Type: last.Type, Data: last.Data, Metadata: last.Metadata}})
		require.NoError(t, err)
		require.Equal(t, last.Position, res.Position, "%s: idempotency index", stream)
	}
	require.Len(t, all, int(l.Head()), "idempotent re-appends wrote nothing")
}

// TestIndexAheadOfAGroupSpanningThreeChunks is the state TestPowerLoss
// found once in a few hundred runs: the index (flushed while the group's
// sync was in flight) covers a group whose frames run through three
// chunks, and the crash lost the middle chunk's data but kept the last
// frame. Open must see the index ahead, rebuild it, and drop the whole
// group; before the fix it verified only from the middle chunk, accepted
// the last frame, and reads then failed with ErrCorrupt.
func TestIndexAheadOfAGroupSpanningThreeChunks(t *testing.T) {
	fs := vfs.NewMem()
	opts := Options{FS: fs, ChunkSize: minChunkSize} // 4 KiB of frames per chunk
	l, err := Open("db", opts)
	require.NoError(t, err)
	mustAppend(t, l, "small", any_(), evs(2)...)
	big := func() Proposed {
		p := ev("E")
		p.Data = make([]byte, 3000)
		for i := range p.Data {
			p.Data[i] = 'x'
		}
		return p
	}
	res := mustAppend(t, l, "big", any_(), big(), big(), big())
	require.Equal(t, uint64(5), res.Position)
	require.NoError(t, l.Close()) // flushes the index: it covers 1..5

	// The group 3..5 is one frame per chunk 0, 1, 2 (checked), and chunk 1
	// is now as it was before the group's write reached the disk.
	for c, want := range []uint64{3, 4, 5} {
		data := readChunk(t, fs, uint32(c))
		var last frame
		for off := int64(chunkHeaderSize); data[off] != 0; {
			f, ok := parseFrameHeader(data[off:], int64(len(data))-off)
			require.True(t, ok)
			last, off = f, off+f.size()
		}
		require.Equal(t, want, last.pos, "chunk %d", c)
	}
	f, err := fs.OpenReadWrite(fs.PathJoin("db", chunkName(1)), vfs.WriteCategoryUnspecified)
	require.NoError(t, err)
	_, err = f.WriteAt(make([]byte, minChunkSize-chunkHeaderSize), chunkHeaderSize)
	require.NoError(t, err)
	require.NoError(t, f.Close())

	l, err = Open("db", opts)
	require.NoError(t, err)
	defer func() { require.NoError(t, l.Close()) }()
	require.True(t, l.rebuiltIndex, "the index covered lost records")
	require.True(t, l.droppedTail, "the unfinished group is dropped")
	require.Equal(t, uint64(2), l.Head())
	recs, err := l.ReadAll(t.Context(), Forwards, 0, math.MaxInt)
	require.NoError(t, err)
	require.Equal(t, []uint64{1, 2}, poss(recs))
	checkIndexAgrees(t, l)
	res = mustAppend(t, l, "after", any_(), evs(1)...)
	require.Equal(t, uint64(3), res.Position, "positions continue where the log ends")
}

func readChunk(t *testing.T, fs vfs.FS, n uint32) []byte {
	t.Helper()
	f, err := fs.Open(fs.PathJoin("db", chunkName(n)))
	require.NoError(t, err)
	defer f.Close()
	st, err := f.Stat()
	require.NoError(t, err)
	data := make([]byte, st.Size())
	_, err = f.ReadAt(data, 0)
	require.NoError(t, err)
	return data
}
