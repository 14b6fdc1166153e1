package eventlog

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestGroupCommit(t *testing.T) {
	l := openTest(t, Options{}) // real disk: syncs take long enough for batches to form
	const writers, perWriter = 32, 20
	type ack struct {
		stream string
		id     uuid.UUID
		res    AppendResult
	}
	acks := make(chan ack, writers*perWriter)
	var wg sync.WaitGroup
	for g := range writers {
		wg.Go(func() {
			for i := range perWriter {
				stream := "shared"
				if i%2 == 0 {
					stream = fmt.Sprintf("own-%d", g)
				}
				e := ev("E")
				res, err := l.Append(t.Context(), stream, any_(), []Proposed{e})
				if !assert.NoError(t, err) {
					return
				}
				acks <- ack{stream, e.ID, res}
			}
		})
	}
	wg.Wait()
	close(acks)

	byStream := map[string][]ack{}
	seenPos := map[uint64]bool{}
	for a := range acks {
		require.False(t, seenPos[a.res.Position], "position %d acked twice", a.res.Position)
		seenPos[a.res.Position] = true
		byStream[a.stream] = append(byStream[a.stream], a)
	}
	require.Len(t, seenPos, writers*perWriter)
	assert.Equal(t, uint64(writers*perWriter), l.Head())
	for stream, as := range byStream {
		slices.SortFunc(as, func(a, b ack) int { return int(a.res.Revision - b.res.Revision) })
		got, err := l.ReadStream(t.Context(), stream, Forwards, 0, math.MaxInt)
		require.NoError(t, err)
		require.Len(t, got, len(as), stream)
		for i, a := range as {
			assert.Equal(t, int64(i), a.res.Revision, "%s: revisions dense", stream)
			assert.Equal(t, a.id, got[i].ID)
			assert.Equal(t, a.res.Position, got[i].Position)
			if i > 0 {
				assert.Greater(t, a.res.Position, as[i-1].res.Position, "%s: positions increase with revisions", stream)
			}
		}
	}
	all, err := l.ReadAll(t.Context(), Forwards, 0, math.MaxInt)
	require.NoError(t, err)
	for i, r := range all {
		require.Equal(t, uint64(i+1), r.Position, "log positions dense and increasing")
	}
	syncs := l.syncs.Load()
	t.Logf("%d appends in %d syncs", writers*perWriter, syncs)
	assert.Less(t, syncs, uint64(writers*perWriter), "some group commit carried more than one request")
}

// crashAppend is one attempted append of the crash test.
type crashAppend struct {
	stream string
	events []Proposed
	res    AppendResult
	acked  bool
}

// crashLoad is concurrent writers appending to a log until stopped (or the
// log is closed), recording every append they attempt and every one
// acknowledged. Each writer makes its appends with next from its own
// random source.
type crashLoad struct {
	stop chan struct{}
	wg   sync.WaitGroup

	mu    sync.Mutex
	all   []*crashAppend
	acked []*crashAppend
}

func newCrashLoad() *crashLoad { return &crashLoad{stop: make(chan struct{})} }

func (c *crashLoad) writer(t testing.TB, l *Log, r *rand.Rand, next func(r *rand.Rand) *crashAppend) {
	c.wg.Go(func() {
		for {
			select {
			case <-c.stop:
				return
			default:
			}
			a := next(r)
			c.mu.Lock()
			c.all = append(c.all, a)
			c.mu.Unlock()
			res, err := l.Append(t.Context(), a.stream, any_(), a.events)
			if errors.Is(err, ErrClosed) {
				return
			}
			if err != nil {
				t.Errorf("append to %s: %v", a.stream, err)
				return
			}
			c.mu.Lock()
			a.res, a.acked = res, true
			c.acked = append(c.acked, a)
			c.mu.Unlock()
		}
	})
}

// ackedSoFar returns the appends acknowledged so far.
func (c *crashLoad) ackedSoFar() []*crashAppend {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.acked)
}

// attempted returns every append tried so far.
func (c *crashLoad) attempted() []*crashAppend {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.all)
}

// waitAcked waits until at least n appends are acknowledged.
func (c *crashLoad) waitAcked(t testing.TB, l *Log, n int) {
	for {
		c.mu.Lock()
		have := len(c.acked)
		c.mu.Unlock()
		if have >= n {
			return
		}
		require.NoError(t, l.Wait(t.Context(), l.Head()))
	}
}

// halt stops the writers and waits for them (close the log first: a writer
// may be inside Append).
func (c *crashLoad) halt() {
	close(c.stop)
	c.wg.Wait()
}

func TestCrashRecovery(t *testing.T) {
	rounds := 6
	if testing.Short() {
		rounds = 3
	}
	rng := rand.New(rand.NewPCG(1, uint64(rounds)))
	fs := vfs.NewCrashableMem()
	var history []*crashAppend // every append ever acknowledged, across rounds
	for round := range rounds {
		l, err := Open("db", Options{FS: fs})
		require.NoError(t, err, "round %d", round)
		checkAcked(t, l, history)
		startHead := l.Head()

		load := newCrashLoad()
		for g := range 8 {
			load.writer(t, l, rand.New(rand.NewPCG(rng.Uint64(), 7)), func(r *rand.Rand) *crashAppend {
				return &crashAppend{stream: fmt.Sprintf("r%d-g%d-%d", round, g, r.IntN(3)), events: evs(1 + r.IntN(4))}
			})
		}
		// Crash once enough appends were acknowledged.
		load.waitAcked(t, l, 20+rng.IntN(60))
		before := load.ackedSoFar() // acknowledged before the crash point
		// Writers keep going while the clone is taken; it keeps all synced
		// data and a random part of the unsynced data (torn WAL tails).
		clone := fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: rng.IntN(100), RNG: rand.New(rand.NewPCG(rng.Uint64(), 1))})
		headAtCrash := l.Head()
		require.NoError(t, l.Close())
		load.halt()
		require.NotEmpty(t, before)

		history = append(history, before...)
		fs = clone
		l, err = Open("db", Options{FS: fs})
		require.NoError(t, err)
		checkAcked(t, l, history)
		checkAllOrNothing(t, l, load.attempted())
		head := l.Head()
		t.Logf("round %d: %d acked before the crash, head %d just after it, %d after recovery", round, len(before), headAtCrash, head)
		require.Greater(t, head, startHead)
		res := mustAppend(t, l, "after-crash", any_(), evs(2)...)
		assert.Equal(t, head+2, res.Position, "positions continue after the crash")
		history = append(history, &crashAppend{stream: "after-crash", res: res, acked: true, events: nil})
		require.NoError(t, l.Close())
	}
}

// checkAcked asserts every acknowledged append is present at its revisions
// and positions.
func checkAcked(t *testing.T, l *Log, history []*crashAppend) {
	t.Helper()
	for _, a := range history {
		if len(a.events) == 0 {
			rec, ok, err := l.ReadEvent(t.Context(), a.stream, uint64(a.res.Revision))
			require.NoError(t, err)
			require.True(t, ok)
			require.Equal(t, a.res.Position, rec.Position)
			continue
		}
		first := uint64(a.res.Revision) - uint64(len(a.events)) + 1
		got, err := l.ReadStream(t.Context(), a.stream, Forwards, first, len(a.events))
		require.NoError(t, err, a.stream)
		require.Len(t, got, len(a.events), "%s@%d lost", a.stream, first)
		for i, r := range got {
			require.Equal(t, a.events[i].ID, r.ID)
			require.Equal(t, a.res.Position-uint64(len(a.events)-1-i), r.Position)
		}
	}
}

// checkAllOrNothing asserts that each attempted append is either complete or
// absent in the log, and the log is dense. (Appends acknowledged after the
// crash point may legitimately be missing; checkAcked covers the others.)
func checkAllOrNothing(t *testing.T, l *Log, all []*crashAppend) {
	t.Helper()
	recs, err := l.ReadAll(t.Context(), Forwards, 0, math.MaxInt)
	require.NoError(t, err)
	present := map[uuid.UUID]bool{}
	for i, r := range recs {
		require.Equal(t, uint64(i+1), r.Position)
		present[r.ID] = true
	}
	for _, a := range all {
		n := 0
		for _, e := range a.events {
			if present[e.ID] {
				n++
			}
		}
		require.True(t, n == 0 || n == len(a.events), "append to %s partially present (%d of %d)", a.stream, n, len(a.events))
	}
}
