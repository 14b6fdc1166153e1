package eventlog

import (
	"encoding/json"
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func lastMeta(t *testing.T, l *Log, stream string) Record {
	t.Helper()
	got, err := l.ReadStream(t.Context(), "$$"+stream, Backwards, math.MaxUint64, 1)
	require.NoError(t, err)
	require.Len(t, got, 1)
	return got[0]
}

func jsonObj(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(b, &m))
	return m
}

func TestSoftDelete(t *testing.T) {
	t.Run("absent stream without metadata", func(t *testing.T) {
		l := openTest(t, Options{})
		_, err := l.Delete(t.Context(), "s", any_())
		var wev *WrongExpectedVersionError
		require.ErrorAs(t, err, &wev)
		assert.Equal(t, int64(-1), wev.Current)
		assert.Equal(t, uint64(0), l.Head())
	})
	t.Run("existing stream", func(t *testing.T) {
		l := openTest(t, Options{})
		mustAppend(t, l, "s", any_(), evs(2)...)
		pos, err := l.Delete(t.Context(), "s", rev(1))
		require.NoError(t, err)
		assert.Equal(t, uint64(3), pos)
		m := lastMeta(t, l, "s")
		assert.Equal(t, `{"$tb":9223372036854775807}`, string(m.Data))
		assert.Equal(t, TypeMetadata, m.Type)
		assert.True(t, m.IsJSON)
		assert.Equal(t, pos, m.Position)

		_, err = l.ReadStream(t.Context(), "s", Forwards, 0, 10)
		assert.ErrorIs(t, err, ErrStreamNotFound)
		_, ok, err := l.ReadEvent(t.Context(), "s", 0)
		require.NoError(t, err)
		assert.False(t, ok)
		st, err := l.Stream(t.Context(), "s")
		require.NoError(t, err)
		assert.Equal(t, StreamState{LastRevision: 1, SoftDeleted: true, Metadata: st.Metadata}, st)
		all, err := l.ReadAll(t.Context(), Forwards, 0, 10)
		require.NoError(t, err)
		assert.Len(t, all, 3, "$all ignores deletion")
	})
	t.Run("metadata not merged", func(t *testing.T) {
		l := openTest(t, Options{})
		mustAppend(t, l, "s", any_(), evs(1)...)
		mustAppend(t, l, "$$s", any_(), metaEv(`{"$maxCount":5,"custom":"x"}`))
		_, err := l.Delete(t.Context(), "s", any_())
		require.NoError(t, err)
		assert.Equal(t, string(softDeleteData), string(lastMeta(t, l, "s").Data))
	})
	t.Run("only metadata", func(t *testing.T) {
		l := openTest(t, Options{})
		mustAppend(t, l, "$$s", any_(), metaEv(`{"$maxCount":5}`))
		_, err := l.Delete(t.Context(), "s", noStream())
		require.NoError(t, err)
		_, err = l.ReadStream(t.Context(), "s", Forwards, 0, 10)
		assert.ErrorIs(t, err, ErrStreamNotFound)
	})
	t.Run("wrong expected", func(t *testing.T) {
		l := openTest(t, Options{})
		mustAppend(t, l, "s", any_(), evs(2)...)
		_, err := l.Delete(t.Context(), "s", rev(0))
		var wev *WrongExpectedVersionError
		require.ErrorAs(t, err, &wev)
		assert.Equal(t, int64(1), wev.Current)
	})
	t.Run("deleted again", func(t *testing.T) {
		l := openTest(t, Options{})
		mustAppend(t, l, "s", any_(), evs(2)...)
		_, err := l.Delete(t.Context(), "s", any_())
		require.NoError(t, err)
		_, err = l.Delete(t.Context(), "s", streamExists())
		var del *StreamDeletedError
		require.ErrorAs(t, err, &del, "stream_exists on a soft-deleted stream")
		_, err = l.Delete(t.Context(), "s", noStream())
		require.NoError(t, err, "no_stream on a soft-deleted stream recreates")
		_, err = l.Delete(t.Context(), "s", rev(1))
		require.NoError(t, err)
	})
}

func TestUndelete(t *testing.T) {
	t.Run("append continues numbering", func(t *testing.T) {
		l := openTest(t, Options{})
		mustAppend(t, l, "s", any_(), evs(2)...)
		mustAppend(t, l, "$$s", any_(), metaEv(`{"$tb":9223372036854775807,"custom":1}`))
		e := ev("E")
		res := mustAppend(t, l, "s", any_(), e)
		assert.Equal(t, AppendResult{Revision: 2, Position: 4}, res, "result is the event, not the metadata")
		assert.Equal(t, uint64(5), l.Head(), "un-delete metadata written after the events")
		m := lastMeta(t, l, "s")
		assert.Equal(t, map[string]any{"$tb": float64(2), "custom": float64(1)}, jsonObj(t, m.Data))
		got, err := l.ReadStream(t.Context(), "s", Forwards, 0, 10)
		require.NoError(t, err)
		assert.Equal(t, []uint64{2}, revs(got))
		assert.Equal(t, e.ID, got[0].ID)
		st, err := l.Stream(t.Context(), "s")
		require.NoError(t, err)
		assert.False(t, st.SoftDeleted)
		assert.Equal(t, int64(2), *st.Metadata.TruncateBefore)
	})
	t.Run("no_stream recreates", func(t *testing.T) {
		l := openTest(t, Options{})
		mustAppend(t, l, "s", any_(), evs(3)...)
		_, err := l.Delete(t.Context(), "s", any_())
		require.NoError(t, err)
		res := mustAppend(t, l, "s", noStream(), evs(2)...)
		assert.Equal(t, int64(4), res.Revision)
		got, err := l.ReadStream(t.Context(), "s", Backwards, math.MaxUint64, 10)
		require.NoError(t, err)
		assert.Equal(t, []uint64{4, 3}, revs(got))
	})
	t.Run("metadata write un-deletes", func(t *testing.T) {
		l := openTest(t, Options{})
		mustAppend(t, l, "s", any_(), evs(2)...)
		_, err := l.Delete(t.Context(), "s", any_())
		require.NoError(t, err)
		res := mustAppend(t, l, "$$s", rev(0), metaEv(`{"$maxCount":100}`))
		assert.Equal(t, int64(1), res.Revision, "result is the user's metadata event")
		st, err := l.Stream(t.Context(), "$$s")
		require.NoError(t, err)
		assert.Equal(t, int64(2), st.LastRevision, "un-delete event follows")
		m := lastMeta(t, l, "s")
		assert.Equal(t, map[string]any{"$maxCount": float64(100), "$tb": float64(2)}, jsonObj(t, m.Data))
		got, err := l.ReadStream(t.Context(), "s", Forwards, 0, 10)
		require.NoError(t, err, "the stream exists again")
		assert.Empty(t, got, "old events stay hidden")
		mustAppend(t, l, "s", rev(1), evs(1)...)
		got, err = l.ReadStream(t.Context(), "s", Forwards, 0, 10)
		require.NoError(t, err)
		assert.Equal(t, []uint64{2}, revs(got))
	})
	t.Run("idempotent re-append does not un-delete", func(t *testing.T) {
		l := openTest(t, Options{})
		e := ev("E")
		mustAppend(t, l, "s", any_(), e)
		_, err := l.Delete(t.Context(), "s", any_())
		require.NoError(t, err)
		head := l.Head()
		res := mustAppend(t, l, "s", any_(), e)
		assert.Equal(t, AppendResult{Revision: 0, Position: 1}, res)
		assert.Equal(t, head, l.Head())
	})
}

func TestTombstone(t *testing.T) {
	t.Run("existing stream", func(t *testing.T) {
		l := openTest(t, Options{})
		ctx := t.Context()
		mustAppend(t, l, "s", any_(), evs(2)...)
		mustAppend(t, l, "$$s", any_(), metaEv(`{"$maxCount":5}`))
		pos, err := l.Tombstone(ctx, "s", rev(1))
		require.NoError(t, err)
		assert.Equal(t, uint64(4), pos)

		var del *StreamDeletedError
		_, err = l.Append(ctx, "s", any_(), evs(1))
		assert.ErrorAs(t, err, &del)
		_, err = l.Append(ctx, "s", any_(), nil)
		assert.ErrorAs(t, err, &del)
		_, err = l.Append(ctx, "$$s", any_(), []Proposed{metaEv(`{}`)})
		assert.ErrorAs(t, err, &del)
		_, err = l.Delete(ctx, "s", any_())
		assert.ErrorAs(t, err, &del)
		_, err = l.Tombstone(ctx, "s", any_())
		assert.ErrorAs(t, err, &del)
		_, err = l.ReadStream(ctx, "s", Forwards, 0, 10)
		assert.ErrorAs(t, err, &del)
		_, err = l.ReadStream(ctx, "$$s", Forwards, 0, 10)
		assert.ErrorAs(t, err, &del)
		_, ok, err := l.ReadEvent(ctx, "s", 0)
		require.NoError(t, err)
		assert.False(t, ok)
		st, err := l.Stream(ctx, "s")
		require.NoError(t, err)
		assert.True(t, st.Tombstoned)
		assert.Equal(t, uint64(4), l.Head(), "failed operations wrote nothing")

		all, err := l.ReadAll(ctx, Backwards, math.MaxUint64, 1)
		require.NoError(t, err)
		require.Len(t, all, 1)
		assert.Equal(t, Record{Position: 4, Stream: "s", Revision: TombstoneRevision, ID: all[0].ID, Type: TypeStreamDeleted, Created: all[0].Created}, all[0])
	})
	tests := []struct {
		name string
		exp  Expected
		ok   bool
	}{
		{"absent any", any_(), true},
		{"absent no_stream", noStream(), true},
		{"absent stream_exists", streamExists(), false},
		{"absent revision 0", rev(0), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := openTest(t, Options{})
			pos, err := l.Tombstone(t.Context(), "s", tt.exp)
			if !tt.ok {
				var wev *WrongExpectedVersionError
				require.ErrorAs(t, err, &wev)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, uint64(1), pos)
			_, err = l.ReadStream(t.Context(), "s", Forwards, 0, 1)
			var del *StreamDeletedError
			assert.ErrorAs(t, err, &del)
		})
	}
	t.Run("soft-deleted stream_exists", func(t *testing.T) {
		l := openTest(t, Options{})
		mustAppend(t, l, "s", any_(), evs(1)...)
		_, err := l.Delete(t.Context(), "s", any_())
		require.NoError(t, err)
		_, err = l.Tombstone(t.Context(), "s", streamExists())
		var del *StreamDeletedError
		require.ErrorAs(t, err, &del)
		_, err = l.Tombstone(t.Context(), "s", any_())
		require.NoError(t, err)
	})
}
