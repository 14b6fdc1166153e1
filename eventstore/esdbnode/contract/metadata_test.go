package contract

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/stretchr/testify/require"
)

// setMeta writes stream metadata and fails the test on error.
func setMeta(t *testing.T, c *esdb.Client, s string, m esdb.StreamMetadata) {
	t.Helper()
	_, err := c.SetStreamMetadata(opCtx(t), s, esdb.AppendToStreamOptions{}, m)
	require.NoError(t, err)
}

// TestStreamMetadata pins stream metadata (docs/protocol.md, section 2,
// "Stream metadata"): round trip through SetStreamMetadata/GetStreamMetadata
// and its effect on reads.
func TestStreamMetadata(t *testing.T) {
	t.Parallel()
	tg := newTarget(t)
	c := tg.client

	t.Run("absent metadata is a stream-not-found error", func(t *testing.T) {
		// The client reads $$X and passes on its stream_not_found.
		s := streamName("meta")
		appendOK(t, c, s, esdb.NoStream{}, events(1, "E")...)
		_, err := c.GetStreamMetadata(opCtx(t), s, esdb.ReadStreamOptions{})
		requireCode(t, err, esdb.ErrorCodeResourceNotFound)
	})

	t.Run("round trip with acl and custom keys", func(t *testing.T) {
		s := streamName("meta")
		appendOK(t, c, s, esdb.Any{}, events(1, "E")...)
		acl := esdb.Acl{}
		acl.AddReadRoles("admin")
		var m esdb.StreamMetadata
		m.SetMaxAge(2 * time.Second)
		m.SetMaxCount(1000)
		m.SetCacheControl(30 * time.Second)
		m.SetAcl(acl)
		m.AddCustomProperty("tenant", "acme")
		m.AddCustomProperty("nested", map[string]interface{}{"k": "v"})
		setMeta(t, c, s, m)
		got, err := c.GetStreamMetadata(opCtx(t), s, esdb.ReadStreamOptions{})
		require.NoError(t, err)
		require.Equal(t, m, *got)
		require.Equal(t, "acme", got.CustomProperty("tenant"))
	})

	t.Run("latest metadata wins", func(t *testing.T) {
		s := streamName("meta")
		for i := range uint64(3) {
			var m esdb.StreamMetadata
			m.SetMaxCount(10 + i)
			setMeta(t, c, s, m)
		}
		got, err := c.GetStreamMetadata(opCtx(t), s, esdb.ReadStreamOptions{})
		require.NoError(t, err)
		require.NotNil(t, got.MaxCount())
		require.Equal(t, uint64(12), *got.MaxCount(), "metastreams keep only their last event visible")
		require.Len(t, readStreamOK(t, c, "$$"+s, esdb.ReadStreamOptions{}, 10), 1)
		require.Len(t, readStreamOK(t, c, "$$"+s, esdb.ReadStreamOptions{Direction: esdb.Backwards, From: esdb.End{}}, 10), 1)
	})

	t.Run("$maxCount", func(t *testing.T) {
		s := streamName("maxcount")
		appendOK(t, c, s, esdb.NoStream{}, events(5, "E")...)
		var m esdb.StreamMetadata
		m.SetMaxCount(2)
		setMeta(t, c, s, m)
		require.Equal(t, []uint64{3, 4}, revisions(readStreamOK(t, c, s, esdb.ReadStreamOptions{}, 100)))
		require.Equal(t, []uint64{4, 3}, revisions(readStreamOK(t, c, s, esdb.ReadStreamOptions{Direction: esdb.Backwards, From: esdb.End{}}, 100)))
		require.Equal(t, []uint64{3, 4}, revisions(readStreamOK(t, c, s, esdb.ReadStreamOptions{From: esdb.Revision(1)}, 100)))
		appendOK(t, c, s, esdb.Revision(4), events(1, "E")...)
		require.Equal(t, []uint64{4, 5}, revisions(readStreamOK(t, c, s, esdb.ReadStreamOptions{}, 100)))
	})

	t.Run("$tb", func(t *testing.T) {
		s := streamName("tb")
		appendOK(t, c, s, esdb.NoStream{}, events(5, "E")...)
		var m esdb.StreamMetadata
		m.SetTruncateBefore(3)
		setMeta(t, c, s, m)
		require.Equal(t, []uint64{3, 4}, revisions(readStreamOK(t, c, s, esdb.ReadStreamOptions{}, 100)))
		require.Equal(t, []uint64{4, 3}, revisions(readStreamOK(t, c, s, esdb.ReadStreamOptions{Direction: esdb.Backwards, From: esdb.End{}}, 100)))
		got, err := c.GetStreamMetadata(opCtx(t), s, esdb.ReadStreamOptions{})
		require.NoError(t, err)
		require.Equal(t, uint64(3), *got.TruncateBefore())
	})

	t.Run("$maxAge", func(t *testing.T) {
		// As the client's readStreamWithMaxAge: an event older than $maxAge
		// disappears from stream reads (without stream-not-found) but stays in
		// $all. Waiting for the clock is the behaviour under test; the loop has
		// a deadline.
		s := streamName("maxage")
		res := appendOK(t, c, s, esdb.NoStream{}, events(1, "E")...)
		var m esdb.StreamMetadata
		m.SetMaxAge(time.Second)
		setMeta(t, c, s, m)
		got, err := c.GetStreamMetadata(opCtx(t), s, esdb.ReadStreamOptions{})
		require.NoError(t, err)
		require.Equal(t, time.Second, *got.MaxAge())

		ctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
		defer cancel()
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			evs, err := readStream(t, c, s, esdb.ReadStreamOptions{}, 10)
			require.NoError(t, err, "expired events are not stream-not-found")
			if len(evs) == 0 {
				break
			}
			select {
			case <-ctx.Done():
				t.Fatal("event still visible 15 s after $maxAge of 1 s")
			case <-tick.C:
			}
		}
		inAll := ofStream(readAllOK(t, c, esdb.ReadAllOptions{From: esdb.Position{Commit: res.CommitPosition, Prepare: res.PreparePosition}}, 10_000), s)
		require.Len(t, inAll, 1, "$all ignores stream metadata")
	})

	t.Run("non-JSON metadata is ignored", func(t *testing.T) {
		s := streamName("badmeta")
		appendOK(t, c, s, esdb.NoStream{}, events(3, "E")...)
		appendOK(t, c, "$$"+s, esdb.Any{}, esdb.EventData{EventType: "$metadata", ContentType: esdb.ContentTypeJson, Data: []byte(`{"$tb":`)})
		require.Equal(t, []uint64{0, 1, 2}, revisions(readStreamOK(t, c, s, esdb.ReadStreamOptions{}, 100)))
	})
}

// jsonNumbers decodes a flat JSON object keeping numbers as written.
func jsonNumbers(t *testing.T, data []byte) map[string]string {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var m map[string]json.Number
	require.NoError(t, dec.Decode(&m), "metadata %q", data)
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v.String()
	}
	return out
}

// TestDelete pins soft delete (docs/protocol.md, section 3, "Delete", and
// section 6, item 5).
func TestDelete(t *testing.T) {
	t.Parallel()
	tg := newTarget(t)
	c := tg.client

	t.Run("delete then re-append", func(t *testing.T) {
		s := streamName("del")
		var m esdb.StreamMetadata
		m.AddCustomProperty("keep", "me?")
		first := appendOK(t, c, s, esdb.NoStream{}, events(3, "Old")...)
		setMeta(t, c, s, m)
		before := lastPosition(t, c)

		res, err := c.DeleteStream(opCtx(t), s, esdb.DeleteStreamOptions{ExpectedRevision: esdb.Revision(2)})
		require.NoError(t, err)
		require.Positive(t, res.Position.Commit)
		require.Positive(t, res.Position.Prepare)
		require.Greater(t, res.Position.Commit, before.Commit)

		_, err = readStream(t, c, s, esdb.ReadStreamOptions{}, 10)
		requireCode(t, err, esdb.ErrorCodeResourceNotFound)
		_, err = readStream(t, c, s, esdb.ReadStreamOptions{Direction: esdb.Backwards, From: esdb.End{}}, 10)
		requireCode(t, err, esdb.ErrorCodeResourceNotFound)

		// The delete wrote exactly {"$tb": MaxInt64} (no merge) at its position.
		// (The client's StreamMetadata parses numbers as float64 and rounds
		// MaxInt64 to 2^63, so the raw event is checked.)
		metaEvs := readStreamOK(t, c, "$$"+s, esdb.ReadStreamOptions{Direction: esdb.Backwards, From: esdb.End{}}, 1)
		require.Len(t, metaEvs, 1)
		metaEv := metaEvs[0].OriginalEvent()
		require.Equal(t, "$metadata", metaEv.EventType)
		require.Equal(t, "application/json", metaEv.ContentType)
		require.Equal(t, res.Position, metaEv.Position)
		require.Equal(t, map[string]string{"$tb": "9223372036854775807"}, jsonNumbers(t, metaEv.Data))

		newEv := jsonEvent("New", `{}`)
		w := appendOK(t, c, s, esdb.Any{}, newEv)
		require.Equal(t, uint64(3), w.NextExpectedVersion, "numbering continues")
		after := readStreamOK(t, c, s, esdb.ReadStreamOptions{}, 10)
		require.Equal(t, []uint64{3}, revisions(after), "old events stay hidden")
		require.Equal(t, newEv.EventID, after[0].OriginalEvent().EventID)
		got, err := c.GetStreamMetadata(opCtx(t), s, esdb.ReadStreamOptions{})
		require.NoError(t, err)
		require.Equal(t, uint64(3), *got.TruncateBefore(), "the re-append un-deletes with $tb = first new revision")

		all := ofStream(readAllOK(t, c, esdb.ReadAllOptions{From: esdb.Position{Commit: first.CommitPosition, Prepare: first.PreparePosition}}, 100_000), s)
		require.Equal(t, []uint64{2, 3}, revisions(all), "$all still shows the old events")
	})

	t.Run("delete errors", func(t *testing.T) {
		tests := []struct {
			name  string
			setup setupFunc
			exp   esdb.ExpectedRevision
			code  esdb.ErrorCode // inner code (the client wraps delete errors)
		}{
			{"absent stream, any", nil, esdb.Any{}, esdb.ErrorCodeUnknown},
			{"absent stream, stream_exists", nil, esdb.StreamExists{}, esdb.ErrorCodeUnknown},
			{"existing, wrong revision", streamStates["existing"].setup, esdb.Revision(5), esdb.ErrorCodeUnknown},
			{"existing, no_stream", streamStates["existing"].setup, esdb.NoStream{}, esdb.ErrorCodeUnknown},
			{"tombstoned, any", streamStates["tombstoned"].setup, esdb.Any{}, esdb.ErrorCodeStreamDeleted},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				s := streamName("delerr")
				if tc.setup != nil {
					tc.setup(t, c, s)
				}
				_, err := c.DeleteStream(opCtx(t), s, esdb.DeleteStreamOptions{ExpectedRevision: tc.exp})
				require.Error(t, err)
				esErr, _ := esdb.FromError(err)
				require.Equal(t, esdb.ErrorCodeUnknown, esErr.Code(), "the client wraps delete errors")
				require.Equal(t, tc.code, code(err), "inner code of %v", err)
			})
		}
	})

	t.Run("delete with each matching expectation", func(t *testing.T) {
		for _, exp := range []struct {
			name string
			exp  esdb.ExpectedRevision
		}{{"any", esdb.Any{}}, {"stream_exists", esdb.StreamExists{}}, {"revision", esdb.Revision(1)}} {
			t.Run(exp.name, func(t *testing.T) {
				s := streamName("delok")
				appendOK(t, c, s, esdb.NoStream{}, events(2, "E")...)
				res, err := c.DeleteStream(opCtx(t), s, esdb.DeleteStreamOptions{ExpectedRevision: exp.exp})
				require.NoError(t, err)
				require.Positive(t, res.Position.Commit)
			})
		}
	})
}

// TestTombstone pins hard delete (docs/protocol.md, section 3, "Delete", and
// section 4).
func TestTombstone(t *testing.T) {
	t.Parallel()
	tg := newTarget(t)
	c := tg.client

	t.Run("tombstone an existing stream", func(t *testing.T) {
		s := streamName("tomb")
		appendOK(t, c, s, esdb.NoStream{}, events(2, "E")...)
		res, err := c.TombstoneStream(opCtx(t), s, esdb.TombstoneStreamOptions{ExpectedRevision: esdb.Revision(1)})
		require.NoError(t, err)
		require.Positive(t, res.Position.Commit)
		require.Positive(t, res.Position.Prepare)

		_, err = c.AppendToStream(opCtx(t), s, esdb.AppendToStreamOptions{}, jsonEvent("E", `{}`))
		requireCode(t, err, esdb.ErrorCodeStreamDeleted)
		for _, opts := range []esdb.ReadStreamOptions{{}, {Direction: esdb.Backwards, From: esdb.End{}}} {
			_, err = readStream(t, c, s, opts, 10)
			requireCode(t, err, esdb.ErrorCodeStreamDeleted)
		}
		_, err = readStream(t, c, "$$"+s, esdb.ReadStreamOptions{}, 10)
		requireCode(t, err, esdb.ErrorCodeStreamDeleted)

		got := readAllOK(t, c, esdb.ReadAllOptions{From: res.Position}, 1)
		require.Len(t, got, 1)
		rec := got[0].OriginalEvent()
		require.Equal(t, "$streamDeleted", rec.EventType)
		require.Equal(t, s, rec.StreamID)
		require.Equal(t, maxInt64, rec.EventNumber)
		require.Equal(t, res.Position, rec.Position)
		require.Empty(t, rec.Data)

		_, err = c.TombstoneStream(opCtx(t), s, esdb.TombstoneStreamOptions{})
		require.Error(t, err)
		require.Equal(t, esdb.ErrorCodeStreamDeleted, code(err), "inner code of %v", err)
		_, err = c.DeleteStream(opCtx(t), s, esdb.DeleteStreamOptions{})
		require.Error(t, err)
		require.Equal(t, esdb.ErrorCodeStreamDeleted, code(err), "inner code of %v", err)
	})

	t.Run("tombstone an absent stream", func(t *testing.T) {
		for _, exp := range []struct {
			name string
			exp  esdb.ExpectedRevision
		}{{"any", esdb.Any{}}, {"no_stream", esdb.NoStream{}}} {
			t.Run(exp.name, func(t *testing.T) {
				s := streamName("tombabs")
				res, err := c.TombstoneStream(opCtx(t), s, esdb.TombstoneStreamOptions{ExpectedRevision: exp.exp})
				require.NoError(t, err)
				require.Positive(t, res.Position.Commit)
				_, err = readStream(t, c, s, esdb.ReadStreamOptions{}, 10)
				requireCode(t, err, esdb.ErrorCodeStreamDeleted)
			})
		}
	})

	t.Run("tombstone wrong expected version", func(t *testing.T) {
		tests := []struct {
			name  string
			setup setupFunc
			exp   esdb.ExpectedRevision
		}{
			{"existing, wrong revision", streamStates["existing"].setup, esdb.Revision(0)},
			{"existing, no_stream", streamStates["existing"].setup, esdb.NoStream{}},
			{"absent, stream_exists", nil, esdb.StreamExists{}},
			{"absent, revision", nil, esdb.Revision(0)},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				s := streamName("tombwev")
				if tc.setup != nil {
					tc.setup(t, c, s)
				}
				_, err := c.TombstoneStream(opCtx(t), s, esdb.TombstoneStreamOptions{ExpectedRevision: tc.exp})
				require.Error(t, err)
				require.Equal(t, esdb.ErrorCodeUnknown, code(err), "WEV is FailedPrecondition, unmapped: %v", err)
				// Nothing was tombstoned.
				_, err = c.AppendToStream(opCtx(t), s, esdb.AppendToStreamOptions{}, jsonEvent("E", `{}`))
				require.NoError(t, err)
			})
		}
	})
}
