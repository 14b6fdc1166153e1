package eventlog

import (
	"context"
	"errors"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestMetadataRules(t *testing.T) {
	tests := []struct {
		name     string
		meta     *Proposed // written to $$s after the first three events
		advance  time.Duration
		fwd      []uint64 // ReadStream forwards from 0
		back     []uint64 // ReadStream backwards from the end
		metaZero bool     // Stream().Metadata has no interpreted key
	}{
		{"none", nil, 0, []uint64{0, 1, 2, 3, 4}, []uint64{4, 3, 2, 1, 0}, true},
		{"maxCount", ptr(metaEv(`{"$maxCount":2}`)), 0, []uint64{3, 4}, []uint64{4, 3}, false},
		{"tb", ptr(metaEv(`{"$tb":3}`)), 0, []uint64{3, 4}, []uint64{4, 3}, false},
		{"tb and maxCount", ptr(metaEv(`{"$tb":1,"$maxCount":3}`)), 0, []uint64{2, 3, 4}, []uint64{4, 3, 2}, false},
		{"tb past end", ptr(metaEv(`{"$tb":10}`)), 0, []uint64{}, []uint64{}, false},
		// events 0..2 are 20 s old when read, 3..4 are 10 s old.
		{"maxAge", ptr(metaEv(`{"$maxAge":15}`)), 0, []uint64{3, 4}, []uint64{4, 3}, false},
		{"maxAge all expired", ptr(metaEv(`{"$maxAge":5}`)), 0, []uint64{}, []uint64{}, false},
		{"fraction ignored", ptr(metaEv(`{"$maxCount":1.5}`)), 0, []uint64{0, 1, 2, 3, 4}, nil, true},
		{"exponent ignored", ptr(metaEv(`{"$maxCount":1e1}`)), 0, []uint64{0, 1, 2, 3, 4}, nil, true},
		{"string ignored", ptr(metaEv(`{"$tb":"3"}`)), 0, []uint64{0, 1, 2, 3, 4}, nil, true},
		{"zero maxCount ignored", ptr(metaEv(`{"$maxCount":0}`)), 0, []uint64{0, 1, 2, 3, 4}, nil, true},
		{"bad json ignored", ptr(metaEv(`{"$maxCount":`)), 0, []uint64{0, 1, 2, 3, 4}, nil, true},
		{"array ignored", ptr(metaEv(`[1]`)), 0, []uint64{0, 1, 2, 3, 4}, nil, true},
		{"not json ignored", &Proposed{ID: ev("").ID, Type: TypeMetadata, Data: []byte(`{"$maxCount":1}`)}, 0, []uint64{0, 1, 2, 3, 4}, nil, true},
		{"custom keys kept", ptr(metaEv(`{"x":[1,2]}`)), 0, []uint64{0, 1, 2, 3, 4}, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := newClock()
			l := openTest(t, Options{Now: clock.Now})
			mustAppend(t, l, "s", any_(), evs(3)...)
			clock.Advance(10 * time.Second)
			mustAppend(t, l, "s", any_(), evs(2)...)
			clock.Advance(10 * time.Second)
			if tt.meta != nil {
				mustAppend(t, l, "$$s", any_(), *tt.meta)
			}
			got, err := l.ReadStream(t.Context(), "s", Forwards, 0, 100)
			require.NoError(t, err, "hidden events are not 'not found'")
			assert.Equal(t, tt.fwd, revs(got), "forwards")
			if tt.back != nil {
				got, err = l.ReadStream(t.Context(), "s", Backwards, math.MaxUint64, 100)
				require.NoError(t, err)
				assert.Equal(t, tt.back, revs(got), "backwards")
			}
			for r := range uint64(5) {
				_, ok, err := l.ReadEvent(t.Context(), "s", r)
				require.NoError(t, err)
				assert.Equal(t, contains(tt.fwd, r), ok, "ReadEvent %d", r)
			}
			st, err := l.Stream(t.Context(), "s")
			require.NoError(t, err)
			m := st.Metadata
			assert.Equal(t, tt.metaZero, m.MaxAge == nil && m.MaxCount == nil && m.TruncateBefore == nil)
			if tt.name == "custom keys kept" {
				assert.JSONEq(t, `{"x":[1,2]}`, string(m.Raw))
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

func contains(s []uint64, v uint64) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func TestMaxAgeExpiresWithClock(t *testing.T) {
	clock := newClock()
	l := openTest(t, Options{Now: clock.Now})
	mustAppend(t, l, "s", any_(), evs(1)...)
	mustAppend(t, l, "$$s", any_(), metaEv(`{"$maxAge":1}`))
	got, err := l.ReadStream(t.Context(), "s", Forwards, 0, 10)
	require.NoError(t, err)
	assert.Len(t, got, 1)
	clock.Advance(2 * time.Second)
	got, err = l.ReadStream(t.Context(), "s", Forwards, 0, 10)
	require.NoError(t, err)
	assert.Empty(t, got)
}

func TestMetastreamMaxCountOne(t *testing.T) {
	l := openTest(t, Options{})
	for _, m := range []string{`{"$maxCount":1}`, `{"$maxCount":2}`, `{"$maxCount":3}`} {
		mustAppend(t, l, "$$s", any_(), metaEv(m))
	}
	got, err := l.ReadStream(t.Context(), "$$s", Forwards, 0, 1)
	require.NoError(t, err)
	require.Len(t, got, 1, "forwards from start with count 1 finds the latest")
	assert.Equal(t, `{"$maxCount":3}`, string(got[0].Data))
	assert.Equal(t, uint64(2), got[0].Revision)
	st, err := l.Stream(t.Context(), "$$s")
	require.NoError(t, err)
	assert.Equal(t, int64(1), *st.Metadata.MaxCount)
	_, err = l.ReadStream(t.Context(), "$$other", Forwards, 0, 1)
	assert.ErrorIs(t, err, ErrStreamNotFound)
}

func TestReadStream(t *testing.T) {
	l := openTest(t, Options{})
	mustAppend(t, l, "s", any_(), evs(5)...)
	mustAppend(t, l, "other", any_(), evs(2)...)
	mustAppend(t, l, "s", any_(), evs(1)...) // s: revisions 0..5
	tests := []struct {
		name  string
		dir   Direction
		from  uint64
		limit int
		want  []uint64
	}{
		{"forwards from start", Forwards, 0, 100, []uint64{0, 1, 2, 3, 4, 5}},
		{"forwards limited", Forwards, 1, 2, []uint64{1, 2}},
		{"forwards from last", Forwards, 5, 10, []uint64{5}},
		{"forwards past end", Forwards, 6, 10, []uint64{}},
		{"forwards far past end", Forwards, math.MaxUint64, 10, []uint64{}},
		{"backwards from end", Backwards, math.MaxUint64, 100, []uint64{5, 4, 3, 2, 1, 0}},
		{"backwards past end", Backwards, 100, 2, []uint64{5, 4}},
		{"backwards from 2", Backwards, 2, 100, []uint64{2, 1, 0}},
		{"backwards from start", Backwards, 0, 100, []uint64{0}},
		{"zero limit", Forwards, 0, 0, []uint64{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := l.ReadStream(t.Context(), "s", tt.dir, tt.from, tt.limit)
			require.NoError(t, err)
			assert.Equal(t, tt.want, revs(got))
			for _, r := range got {
				assert.Equal(t, "s", r.Stream)
			}
		})
	}
	t.Run("record fields", func(t *testing.T) {
		clock := newClock()
		l := openTest(t, Options{Now: func() time.Time { return clock.Now().In(time.FixedZone("X", 3600)) }})
		e := Proposed{ID: ev("").ID, Type: "T", IsJSON: false, Data: []byte{0, 1, 2}, Metadata: []byte(`{"m":1}`)}
		mustAppend(t, l, "s", any_(), e)
		got, err := l.ReadStream(t.Context(), "s", Forwards, 0, 1)
		require.NoError(t, err)
		require.Len(t, got, 1)
		assert.Equal(t, Record{Position: 1, Stream: "s", Revision: 0, ID: e.ID, Type: "T", Data: e.Data, Metadata: e.Metadata, Created: clock.Now()}, got[0])
		assert.Equal(t, time.UTC, got[0].Created.Location())
	})
	t.Run("absent", func(t *testing.T) {
		_, err := l.ReadStream(t.Context(), "nope", Forwards, 0, 1)
		assert.ErrorIs(t, err, ErrStreamNotFound)
		_, ok, err := l.ReadEvent(t.Context(), "nope", 0)
		require.NoError(t, err)
		assert.False(t, ok)
		st, err := l.Stream(t.Context(), "nope")
		require.NoError(t, err)
		assert.Equal(t, StreamState{LastRevision: -1}, st)
	})
}

func TestReadAll(t *testing.T) {
	l := openTest(t, Options{})
	mustAppend(t, l, "a", any_(), evs(2)...)
	mustAppend(t, l, "b", any_(), evs(2)...)
	_, err := l.Delete(t.Context(), "a", any_()) // position 5, stream $$a
	require.NoError(t, err)
	tests := []struct {
		name  string
		dir   Direction
		from  uint64
		limit int
		want  []uint64
	}{
		{"forwards from 0", Forwards, 0, 100, []uint64{1, 2, 3, 4, 5}},
		{"forwards inclusive", Forwards, 3, 100, []uint64{3, 4, 5}},
		{"forwards limited", Forwards, 2, 2, []uint64{2, 3}},
		{"forwards past head", Forwards, 6, 100, []uint64{}},
		{"backwards from end", Backwards, math.MaxUint64, 100, []uint64{5, 4, 3, 2, 1}},
		{"backwards exclusive", Backwards, 3, 100, []uint64{2, 1}},
		{"backwards limited", Backwards, math.MaxUint64, 2, []uint64{5, 4}},
		{"backwards from start", Backwards, 0, 100, []uint64{}},
		{"backwards from 1", Backwards, 1, 100, []uint64{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := l.ReadAll(t.Context(), tt.dir, tt.from, tt.limit)
			require.NoError(t, err)
			assert.Equal(t, tt.want, poss(got))
		})
	}
	got, err := l.ReadAll(t.Context(), Forwards, 0, 100)
	require.NoError(t, err)
	assert.Equal(t, []string{"a", "a", "b", "b", "$$a"}, mapRecs(got, func(r Record) string { return r.Stream }))
	assert.Equal(t, []uint64{0, 1, 0, 1, 0}, revs(got))
}

func TestStreams(t *testing.T) {
	l := openTest(t, Options{})
	for _, s := range []string{"c", "a", "b"} {
		mustAppend(t, l, s, any_(), evs(1)...)
	}
	mustAppend(t, l, "$$a", any_(), metaEv(`{}`))
	_, err := l.Tombstone(t.Context(), "t", any_())
	require.NoError(t, err)
	tests := []struct {
		after string
		limit int
		want  []string
	}{
		{"", 100, []string{"$$a", "a", "b", "c", "t"}},
		{"", 2, []string{"$$a", "a"}},
		{"a", 2, []string{"b", "c"}},
		{"b", 100, []string{"c", "t"}},
		{"t", 100, nil},
		{"", 0, nil},
	}
	for _, tt := range tests {
		t.Run(tt.after, func(t *testing.T) {
			got, err := l.Streams(t.Context(), tt.after, tt.limit)
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestWait(t *testing.T) {
	l := openTest(t, Options{})
	mustAppend(t, l, "s", any_(), evs(1)...)
	require.NoError(t, l.Wait(t.Context(), 0), "already past")

	const waiters = 1000
	errs := make(chan error, waiters)
	for range waiters {
		go func() { errs <- l.Wait(t.Context(), 1) }()
	}
	mustAppend(t, l, "s", any_(), evs(1)...)
	for range waiters {
		require.NoError(t, <-errs)
	}

	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- l.Wait(ctx, 2) }()
	cancel()
	assert.ErrorIs(t, <-done, context.Canceled)

	go func() { done <- l.Wait(t.Context(), 2) }()
	require.NoError(t, l.Close())
	assert.ErrorIs(t, <-done, ErrClosed)
}

func TestCloseAndReopen(t *testing.T) {
	dir := t.TempDir()
	l, err := Open(dir, Options{})
	require.NoError(t, err)
	mustAppend(t, l, "s", any_(), evs(3)...)
	_, err = l.Tombstone(t.Context(), "t", any_())
	require.NoError(t, err)
	require.NoError(t, l.Close())
	require.NoError(t, l.Close(), "Close is idempotent")
	_, err = l.Append(t.Context(), "s", any_(), evs(1))
	assert.ErrorIs(t, err, ErrClosed)
	assert.ErrorIs(t, l.Wait(t.Context(), 100), ErrClosed)

	l, err = Open(dir, Options{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = l.Close() })
	assert.Equal(t, uint64(4), l.Head())
	res := mustAppend(t, l, "s", rev(2), evs(1)...)
	assert.Equal(t, AppendResult{Revision: 3, Position: 5}, res)
	_, err = l.Append(t.Context(), "t", any_(), evs(1))
	var del *StreamDeletedError
	assert.ErrorAs(t, err, &del, "tombstone survives reopen")
}

func TestCancelledBeforePickupIsNotWritten(t *testing.T) {
	// The clock blocks the writer at the start of a group commit, so a
	// request queued behind it can be cancelled before the writer takes it.
	var (
		gate    = make(chan struct{})
		entered = make(chan struct{}, 1)
		block   bool
	)
	clock := newClock()
	l := openTest(t, Options{Now: func() time.Time {
		if block {
			entered <- struct{}{}
			<-gate
		}
		return clock.Now()
	}})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := l.Append(ctx, "s", any_(), evs(1))
	assert.ErrorIs(t, err, context.Canceled, "cancelled before submit")

	block = true // read by the writer only after the send below
	first := make(chan error, 1)
	go func() { _, err := l.Append(t.Context(), "s", any_(), evs(1)); first <- err }()
	<-entered
	block = false // the writer is parked in Now; next batches do not block

	ctx, cancel = context.WithCancel(t.Context())
	second := make(chan error, 1)
	go func() { _, err := l.Append(ctx, "s", any_(), evs(1)); second <- err }()
	require.Eventually(t, func() bool { return len(l.reqs) == 1 }, 5*time.Second, time.Millisecond, "second request queued")
	cancel()
	close(gate)
	require.NoError(t, <-first)
	assert.ErrorIs(t, <-second, context.Canceled)
	assert.Equal(t, uint64(1), l.Head(), "the cancelled request was not written")
	got, err := l.ReadStream(t.Context(), "s", Forwards, 0, 10)
	require.NoError(t, err)
	assert.Len(t, got, 1)
	assert.False(t, errors.Is(err, ErrStreamNotFound))
}

func TestReadsAfterClose(t *testing.T) {
	l, err := Open(t.TempDir(), Options{})
	require.NoError(t, err)
	mustAppend(t, l, "s", any_(), evs(1)...)
	require.NoError(t, l.Close())
	ctx := t.Context()
	tests := []struct {
		name string
		call func() error
	}{
		{"ReadStream", func() error { _, err := l.ReadStream(ctx, "s", Forwards, 0, 1); return err }},
		{"ReadEvent", func() error { _, _, err := l.ReadEvent(ctx, "s", 0); return err }},
		{"ReadAll", func() error { _, err := l.ReadAll(ctx, Forwards, 0, 1); return err }},
		{"Stream", func() error { _, err := l.Stream(ctx, "s"); return err }},
		{"Streams", func() error { _, err := l.Streams(ctx, "", 1); return err }},
		{"Delete", func() error { _, err := l.Delete(ctx, "s", any_()); return err }},
		{"Tombstone", func() error { _, err := l.Tombstone(ctx, "s", any_()); return err }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.ErrorIs(t, tt.call(), ErrClosed)
		})
	}
	assert.Equal(t, uint64(1), l.Head())
}

func TestCloseAnswersPendingAppends(t *testing.T) {
	dir := t.TempDir()
	l, err := Open(dir, Options{MaxBatch: 1}) // one sync per request: Close finds a queue
	require.NoError(t, err)
	const n = 200
	errs := make(chan error, n)
	for range n {
		go func() { _, err := l.Append(t.Context(), "s", any_(), evs(1)); errs <- err }()
	}
	require.NoError(t, l.Wait(t.Context(), 0), "some appends went through")
	require.NoError(t, l.Close())
	var ok, closed int
	for range n {
		switch err := <-errs; {
		case err == nil:
			ok++
		case errors.Is(err, ErrClosed):
			closed++
		default:
			t.Fatalf("unexpected error %v", err)
		}
	}
	t.Logf("%d written, %d refused", ok, closed)
	assert.Positive(t, closed, "queued requests are refused")
	l, err = Open(dir, Options{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = l.Close() })
	assert.Equal(t, uint64(ok), l.Head(), "every acknowledged append, and only those, is in the log")
}
