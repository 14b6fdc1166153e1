package eventlog

import (
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type outcome int

const (
	okWrite outcome = iota // written at the given revision
	wantWEV
	wantDeleted
)

// setups put stream "s" in one of the states of the decision table.
var setups = []struct {
	name  string
	cur   int64
	setup func(t *testing.T, l *Log)
}{
	{"absent", -1, func(*testing.T, *Log) {}},
	{"absent with metadata", -1, func(t *testing.T, l *Log) {
		mustAppend(t, l, "$$s", any_(), metaEv(`{"$maxCount":10}`))
	}},
	{"existing", 1, func(t *testing.T, l *Log) { mustAppend(t, l, "s", any_(), evs(2)...) }},
	{"soft-deleted", 1, func(t *testing.T, l *Log) {
		mustAppend(t, l, "s", any_(), evs(2)...)
		_, err := l.Delete(t.Context(), "s", any_())
		require.NoError(t, err)
	}},
	{"tombstoned", 1, func(t *testing.T, l *Log) {
		mustAppend(t, l, "s", any_(), evs(2)...)
		_, err := l.Tombstone(t.Context(), "s", any_())
		require.NoError(t, err)
	}},
}

func TestAppendDecisionTable(t *testing.T) {
	exps := []struct {
		name string
		exp  Expected
	}{
		{"any", any_()}, {"no_stream", noStream()}, {"stream_exists", streamExists()},
		{"revision 0", rev(0)}, {"revision 1", rev(1)}, {"revision 5", rev(5)},
	}
	// want[setup][expected]
	want := map[string][]outcome{
		"absent":               {okWrite, okWrite, wantWEV, wantWEV, wantWEV, wantWEV},
		"absent with metadata": {okWrite, okWrite, okWrite, wantWEV, wantWEV, wantWEV},
		"existing":             {okWrite, wantWEV, okWrite, wantWEV, okWrite, wantWEV},
		"soft-deleted":         {okWrite, okWrite, wantDeleted, wantWEV, okWrite, wantWEV},
		"tombstoned":           {wantDeleted, wantDeleted, wantDeleted, wantDeleted, wantDeleted, wantDeleted},
	}
	for _, s := range setups {
		for i, e := range exps {
			t.Run(s.name+"/"+e.name, func(t *testing.T) {
				l := openTest(t, Options{})
				s.setup(t, l)
				headBefore := l.Head()
				e1 := ev("E")
				res, err := l.Append(t.Context(), "s", e.exp, []Proposed{e1})
				switch want[s.name][i] {
				case okWrite:
					require.NoError(t, err)
					assert.Equal(t, s.cur+1, res.Revision)
					assert.Equal(t, headBefore+1, res.Position)
					got, err := l.ReadStream(t.Context(), "s", Backwards, ^uint64(0), 1)
					require.NoError(t, err)
					require.Len(t, got, 1)
					assert.Equal(t, e1.ID, got[0].ID)
					assert.Equal(t, uint64(s.cur+1), got[0].Revision)
				case wantWEV:
					var wev *WrongExpectedVersionError
					require.ErrorAs(t, err, &wev)
					assert.Equal(t, s.cur, wev.Current)
					assert.Equal(t, e.exp, wev.Expected)
					assert.Equal(t, "s", wev.Stream)
					assert.Equal(t, headBefore, l.Head(), "nothing written")
				case wantDeleted:
					var del *StreamDeletedError
					require.ErrorAs(t, err, &del)
					assert.Equal(t, "s", del.Stream)
					assert.Equal(t, headBefore, l.Head(), "nothing written")
				}
			})
		}
	}
}

func TestAppendIdempotency(t *testing.T) {
	// Stream "s" holds A, B, C at revisions 0..2 (positions 1..3); "t" is
	// absent.
	a, b, c, d := ev("E"), ev("E"), ev("E"), ev("E")
	type result struct {
		write bool  // a new write happened
		rev   int64 // result revision
		pos   uint64
	}
	tests := []struct {
		name   string
		stream string
		exp    Expected
		events []Proposed
		want   result
		wev    bool
	}{
		{"any all", "s", any_(), []Proposed{a, b, c}, result{false, 2, 3}, false},
		{"any suffix", "s", any_(), []Proposed{b, c}, result{false, 2, 3}, false},
		{"any first", "s", any_(), []Proposed{a}, result{false, 0, 1}, false},
		{"any middle", "s", any_(), []Proposed{b}, result{false, 1, 2}, false},
		{"any gap", "s", any_(), []Proposed{a, c}, result{}, true},
		{"any past end", "s", any_(), []Proposed{b, c, d}, result{}, true},
		{"any new id", "s", any_(), []Proposed{d}, result{true, 3, 4}, false},
		{"any new then old", "s", any_(), []Proposed{d, a}, result{true, 4, 5}, false},
		{"stream_exists middle", "s", streamExists(), []Proposed{b, c}, result{false, 2, 3}, false},
		{"no_stream all", "s", noStream(), []Proposed{a, b, c}, result{false, 2, 3}, false},
		{"no_stream prefix", "s", noStream(), []Proposed{a}, result{false, 0, 1}, false},
		{"no_stream not at 0", "s", noStream(), []Proposed{b}, result{}, true},
		{"no_stream later differs", "s", noStream(), []Proposed{a, d}, result{}, true},
		{"revision 0 next", "s", rev(0), []Proposed{b, c}, result{false, 2, 3}, false},
		{"revision 0 one", "s", rev(0), []Proposed{b}, result{false, 1, 2}, false},
		{"revision 0 wrong place", "s", rev(0), []Proposed{c}, result{}, true},
		{"revision 0 too many", "s", rev(0), []Proposed{b, c, d}, result{}, true},
		{"revision 0 zero events", "s", rev(0), nil, result{}, true},
		{"revision cur rewrites", "s", rev(2), []Proposed{a}, result{true, 3, 4}, false},
		{"other stream", "t", noStream(), []Proposed{a, b}, result{true, 1, 5}, false},
		{"other stream any", "t", any_(), []Proposed{a}, result{true, 0, 4}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := openTest(t, Options{})
			mustAppend(t, l, "s", noStream(), a, b, c)
			res, err := l.Append(t.Context(), tt.stream, tt.exp, tt.events)
			if tt.wev {
				var wev *WrongExpectedVersionError
				require.ErrorAs(t, err, &wev)
				assert.Equal(t, int64(2), wev.Current)
				assert.Equal(t, uint64(3), l.Head())
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want.rev, res.Revision)
			assert.Equal(t, tt.want.pos, res.Position)
			if tt.want.write {
				assert.Equal(t, uint64(3+len(tt.events)), l.Head())
			} else {
				assert.Equal(t, uint64(3), l.Head(), "idempotent append writes nothing")
			}
		})
	}
}

func TestAppendZeroEvents(t *testing.T) {
	tests := []struct {
		setup string
		exp   Expected
		want  AppendResult
		err   outcome
	}{
		{"absent", any_(), AppendResult{Revision: -1}, okWrite},
		{"absent", noStream(), AppendResult{Revision: -1}, okWrite},
		{"absent", streamExists(), AppendResult{}, wantWEV},
		{"existing", any_(), AppendResult{Revision: 1}, okWrite},
		{"existing", streamExists(), AppendResult{Revision: 1}, okWrite},
		{"existing", rev(1), AppendResult{Revision: 1}, okWrite},
		{"existing", rev(0), AppendResult{}, wantWEV},
		{"existing", noStream(), AppendResult{}, wantWEV},
		{"soft-deleted", any_(), AppendResult{Revision: 1}, okWrite},
		{"tombstoned", any_(), AppendResult{}, wantDeleted},
	}
	for _, tt := range tests {
		t.Run(tt.setup+"/"+tt.exp.String(), func(t *testing.T) {
			l := openTest(t, Options{})
			for _, s := range setups {
				if s.name == tt.setup {
					s.setup(t, l)
				}
			}
			head := l.Head()
			syncs := l.syncs.Load()
			res, err := l.Append(t.Context(), "s", tt.exp, nil)
			switch tt.err {
			case okWrite:
				require.NoError(t, err)
				assert.Equal(t, tt.want, res)
			case wantWEV:
				var wev *WrongExpectedVersionError
				require.ErrorAs(t, err, &wev)
			case wantDeleted:
				var del *StreamDeletedError
				require.ErrorAs(t, err, &del)
			}
			assert.Equal(t, head, l.Head(), "zero events write nothing")
			assert.Equal(t, syncs, l.syncs.Load(), "zero events need no sync")
			if tt.setup == "soft-deleted" {
				st, err := l.Stream(t.Context(), "s")
				require.NoError(t, err)
				assert.True(t, st.SoftDeleted, "zero events do not un-delete")
			}
		})
	}
}

func TestAppendConcurrentDuplicatesWriteOnce(t *testing.T) {
	l := openTest(t, Options{})
	events := evs(3)
	const n = 32
	results := make(chan AppendResult, n)
	errs := make(chan error, n)
	for range n {
		go func() {
			res, err := l.Append(t.Context(), "dup", any_(), events)
			results <- res
			errs <- err
		}()
	}
	for range n {
		require.NoError(t, <-errs)
		assert.Equal(t, AppendResult{Revision: 2, Position: 3}, <-results)
	}
	assert.Equal(t, uint64(3), l.Head())
}

func TestInvalidRequests(t *testing.T) {
	l := openTest(t, Options{})
	ctx := t.Context()
	tests := []struct {
		name string
		call func() error
	}{
		{"append empty stream", func() error { _, err := l.Append(ctx, "", any_(), evs(1)); return err }},
		{"append $all", func() error { _, err := l.Append(ctx, "$all", any_(), evs(1)); return err }},
		{"append empty type", func() error {
			_, err := l.Append(ctx, "s", any_(), []Proposed{{ID: uuid.New()}})
			return err
		}},
		{"delete empty", func() error { _, err := l.Delete(ctx, "", any_()); return err }},
		{"tombstone $all", func() error { _, err := l.Tombstone(ctx, "$all", any_()); return err }},
		{"delete metastream", func() error { _, err := l.Delete(ctx, "$$s", any_()); return err }},
		{"read $all", func() error { _, err := l.ReadStream(ctx, "$all", Forwards, 0, 1); return err }},
		{"read empty", func() error { _, err := l.ReadStream(ctx, "", Forwards, 0, 1); return err }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			assert.True(t, errors.Is(err, ErrInvalid), "got %v", err)
		})
	}
	assert.Equal(t, uint64(0), l.Head())
}

// TestOneGroupWritesAStreamTwice: two appends to one stream committed in
// one group set the stream's head twice in one index batch, whose entries
// go in key order; the later head must win, in the index and not only in
// the writer's cache.
func TestOneGroupWritesAStreamTwice(t *testing.T) {
	var (
		gate    = make(chan struct{})
		entered = make(chan struct{}, 1)
		block   atomic.Bool
	)
	clock := newClock()
	l := openTest(t, Options{Now: func() time.Time {
		if block.Load() {
			entered <- struct{}{}
			<-gate
		}
		return clock.Now()
	}})
	mustAppend(t, l, "s", any_(), evs(1)...) // rev 0; s has a number

	block.Store(true)
	first := make(chan error, 1)
	go func() { _, err := l.Append(t.Context(), "other", any_(), evs(1)); first <- err }()
	<-entered // the writer is parked in the first group
	block.Store(false)
	syncs := l.syncs.Load()

	a, b := evs(1), evs(2)
	results := make(chan error, 2)
	go func() { _, err := l.Append(t.Context(), "s", rev(0), a); results <- err }()
	require.Eventually(t, func() bool { return len(l.reqs) == 1 }, 5*time.Second, time.Millisecond, "first append to s queued")
	go func() { _, err := l.Append(t.Context(), "s", rev(1), b); results <- err }()
	require.Eventually(t, func() bool { return len(l.reqs) == 2 }, 5*time.Second, time.Millisecond, "second append to s queued")
	close(gate)
	require.NoError(t, <-first)
	require.NoError(t, <-results)
	require.NoError(t, <-results)
	require.Equal(t, syncs+2, l.syncs.Load(), "the parked group and one group with both appends to s")

	l.w.cache = make(map[string]*wstate) // heads from the index from here on
	st, err := l.Stream(t.Context(), "s")
	require.NoError(t, err)
	assert.Equal(t, int64(3), st.LastRevision)
	res := mustAppend(t, l, "s", rev(3), evs(1)...)
	assert.Equal(t, int64(4), res.Revision)
	got, err := l.ReadStream(t.Context(), "s", Forwards, 0, 10)
	require.NoError(t, err)
	assert.Equal(t, []uint64{0, 1, 2, 3, 4}, revs(got))
	assert.Equal(t, []uuid.UUID{a[0].ID, b[0].ID, b[1].ID}, ids(got[1:4]))
}
