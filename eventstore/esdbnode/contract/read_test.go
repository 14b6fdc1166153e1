package contract

import (
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/stretchr/testify/require"
)

// TestReadStream pins stream reads (docs/protocol.md, section 3, "Reads"):
// directions, start points and counts.
func TestReadStream(t *testing.T) {
	t.Parallel()
	tg := newTarget(t)
	c := tg.client
	s := streamName("read")
	evs := events(10, "Read")
	appendOK(t, c, s, esdb.NoStream{}, evs...)

	fw, bw := esdb.Forwards, esdb.Backwards
	tests := []struct {
		name  string
		dir   esdb.Direction
		from  esdb.StreamPosition
		count uint64
		want  []uint64
	}{
		{"forwards from start, all", fw, esdb.Start{}, 100, []uint64{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}},
		{"forwards from start, count 3", fw, esdb.Start{}, 3, []uint64{0, 1, 2}},
		{"forwards from revision 4, count 3", fw, esdb.Revision(4), 3, []uint64{4, 5, 6}},
		{"forwards from revision 8 past the end", fw, esdb.Revision(8), 100, []uint64{8, 9}},
		{"forwards from revision after the last", fw, esdb.Revision(10), 100, nil},
		{"backwards from end, all", bw, esdb.End{}, 100, []uint64{9, 8, 7, 6, 5, 4, 3, 2, 1, 0}},
		{"backwards from end, count 2", bw, esdb.End{}, 2, []uint64{9, 8}},
		{"backwards from revision 5, count 3", bw, esdb.Revision(5), 3, []uint64{5, 4, 3}},
		{"backwards from revision beyond the last", bw, esdb.Revision(50), 2, []uint64{9, 8}},
		{"backwards from start", bw, esdb.Start{}, 5, []uint64{0}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := readStreamOK(t, c, s, esdb.ReadStreamOptions{Direction: tc.dir, From: tc.from}, tc.count)
			require.Equal(t, len(tc.want), len(got), "revisions %v", revisions(got))
			if len(tc.want) > 0 {
				require.Equal(t, tc.want, revisions(got))
			}
			for _, e := range got {
				ev := e.OriginalEvent()
				require.Nil(t, e.Link)
				require.Equal(t, evs[ev.EventNumber].EventID, ev.EventID)
				require.Equal(t, s, ev.StreamID)
				require.NotNil(t, e.Commit)
				require.Equal(t, ev.Position.Commit, *e.Commit)
			}
		})
	}
}

// TestReadStreamStates pins what reads return for streams that are absent,
// soft-deleted, entirely hidden by metadata, or tombstoned.
func TestReadStreamStates(t *testing.T) {
	t.Parallel()
	tg := newTarget(t)
	c := tg.client

	tests := []struct {
		name  string
		setup func(t *testing.T, s string)
		code  esdb.ErrorCode // -1: no error and no events
	}{
		{"absent", func(*testing.T, string) {}, esdb.ErrorCodeResourceNotFound},
		{"soft-deleted", streamStates["soft-deleted"].setup.bind(c), esdb.ErrorCodeResourceNotFound},
		{"tombstoned", streamStates["tombstoned"].setup.bind(c), esdb.ErrorCodeStreamDeleted},
		{"everything truncated by $tb", func(t *testing.T, s string) {
			appendOK(t, c, s, esdb.NoStream{}, events(3, "Hidden")...)
			var m esdb.StreamMetadata
			m.SetTruncateBefore(3)
			_, err := c.SetStreamMetadata(opCtx(t), s, esdb.AppendToStreamOptions{}, m)
			require.NoError(t, err)
		}, -1},
	}
	dirs := []struct {
		name string
		opts esdb.ReadStreamOptions
	}{
		{"forwards", esdb.ReadStreamOptions{Direction: esdb.Forwards, From: esdb.Start{}}},
		{"backwards", esdb.ReadStreamOptions{Direction: esdb.Backwards, From: esdb.End{}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := streamName("state")
			tc.setup(t, s)
			for _, d := range dirs {
				t.Run(d.name, func(t *testing.T) {
					got, err := readStream(t, c, s, d.opts, 100)
					if tc.code == -1 {
						require.NoError(t, err, "hidden events are not stream-not-found")
						require.Empty(t, got)
						return
					}
					require.Empty(t, got)
					requireCode(t, err, tc.code)
				})
			}
		})
	}
}

// setupFunc prepares a stream.
type setupFunc func(t *testing.T, c *esdb.Client, stream string)

// bind turns a stream-state setup into a one-argument setup on client c.
func (f setupFunc) bind(c *esdb.Client) func(t *testing.T, s string) {
	return func(t *testing.T, s string) { f(t, c, s) }
}

// TestReadAll pins $all reads (docs/protocol.md, section 2, "Positions" and
// "Recorded events on the wire", section 3, "$all reads"): positions, bounds
// and directions, and the event record as the client maps it.
func TestReadAll(t *testing.T) {
	t.Parallel()
	tg := newTarget(t)
	c := tg.client
	s := streamName("all")
	before := time.Now()
	evs := []esdb.EventData{
		{EventID: jsonEvent("", "").EventID, EventType: "JsonWithMeta", ContentType: esdb.ContentTypeJson, Data: []byte(`{"a":1}`), Metadata: []byte(`{"$correlationId":"c-1"}`)},
		{EventID: jsonEvent("", "").EventID, EventType: "Binary", ContentType: esdb.ContentTypeBinary, Data: []byte{0xb, 0xe, 0xe, 0xf}, Metadata: []byte{0xd, 0xe, 0xa, 0xd}},
		{EventID: jsonEvent("", "").EventID, EventType: "Empty", ContentType: esdb.ContentTypeBinary},
	}
	res := appendOK(t, c, s, esdb.NoStream{}, evs...)
	stored := readStreamOK(t, c, s, esdb.ReadStreamOptions{}, 10)
	require.Len(t, stored, 3)
	p := make([]esdb.Position, 3)
	for i, e := range stored {
		p[i] = e.OriginalEvent().Position
	}

	t.Run("positions", func(t *testing.T) {
		for i := range p {
			require.Positive(t, p[i].Commit)
			require.Equal(t, p[i].Commit, p[i].Prepare, "commit == prepare")
			if i > 0 {
				require.Greater(t, p[i].Commit, p[i-1].Commit)
			}
		}
		require.Equal(t, p[2].Commit, res.CommitPosition, "append result = position of the last event")
		require.Equal(t, p[2].Prepare, res.PreparePosition)
	})

	t.Run("record fields", func(t *testing.T) {
		wantCT := []string{"application/json", "application/octet-stream", "application/octet-stream"}
		for i, e := range stored {
			ev := e.OriginalEvent()
			require.Equal(t, evs[i].EventID, ev.EventID)
			require.Equal(t, evs[i].EventType, ev.EventType)
			require.Equal(t, wantCT[i], ev.ContentType)
			require.Equal(t, uint64(i), ev.EventNumber)
			require.Equal(t, s, ev.StreamID)
			require.Equal(t, len(evs[i].Data), len(ev.Data))
			if len(evs[i].Data) > 0 {
				require.Equal(t, evs[i].Data, ev.Data)
			}
			require.Equal(t, len(evs[i].Metadata), len(ev.UserMetadata))
			if len(evs[i].Metadata) > 0 {
				require.Equal(t, evs[i].Metadata, ev.UserMetadata)
			}
			require.WithinDuration(t, before, ev.CreatedDate, time.Minute, "created is plausible")
			require.Len(t, ev.SystemMetadata, 3, "exactly type, content-type, created: %v", ev.SystemMetadata)
			require.Equal(t, evs[i].EventType, ev.SystemMetadata["type"])
		}
	})

	fw, bw := esdb.Forwards, esdb.Backwards
	t.Run("forwards from start", func(t *testing.T) {
		got := readAllOK(t, c, esdb.ReadAllOptions{Direction: fw, From: esdb.Start{}}, 1_000_000)
		requireIncreasing(t, got)
		if !tg.external {
			require.Equal(t, dataIDs(evs), ids(ofStream(got, s)))
		}
	})
	t.Run("forwards from a position is inclusive", func(t *testing.T) {
		got := readAllOK(t, c, esdb.ReadAllOptions{Direction: fw, From: p[1]}, 10_000)
		require.NotEmpty(t, got)
		require.Equal(t, p[1], got[0].OriginalEvent().Position)
		requireIncreasing(t, got)
		require.Equal(t, dataIDs(evs[1:]), ids(ofStream(got, s)))
	})
	t.Run("forwards from end is empty", func(t *testing.T) {
		require.Empty(t, readAllOK(t, c, esdb.ReadAllOptions{Direction: fw, From: esdb.End{}}, 10))
	})
	t.Run("backwards from end", func(t *testing.T) {
		got := readAllOK(t, c, esdb.ReadAllOptions{Direction: bw, From: esdb.End{}}, 1)
		require.Len(t, got, 1)
		require.GreaterOrEqual(t, got[0].OriginalEvent().Position.Commit, p[2].Commit)
	})
	t.Run("backwards from a position is exclusive", func(t *testing.T) {
		got := readAllOK(t, c, esdb.ReadAllOptions{Direction: bw, From: p[2]}, 10_000)
		require.NotEmpty(t, got)
		for i, e := range got {
			require.Less(t, e.OriginalEvent().Position.Commit, p[2].Commit)
			if i > 0 {
				require.Less(t, e.OriginalEvent().Position.Commit, got[i-1].OriginalEvent().Position.Commit)
			}
		}
		require.Equal(t, []esdb.Position{p[1], p[0]}, positions(ofStream(got, s)))
		if !tg.external {
			require.Equal(t, p[1], got[0].OriginalEvent().Position)
		}
	})
	t.Run("backwards from start is empty", func(t *testing.T) {
		require.Empty(t, readAllOK(t, c, esdb.ReadAllOptions{Direction: bw, From: esdb.Start{}}, 10))
	})
	t.Run("count limits", func(t *testing.T) {
		require.Len(t, readAllOK(t, c, esdb.ReadAllOptions{Direction: fw, From: p[0]}, 2), 2)
		require.Len(t, readAllOK(t, c, esdb.ReadAllOptions{Direction: bw, From: esdb.End{}}, 2), 2)
	})
}

// positions lists the original events' positions.
func positions(evs []*esdb.ResolvedEvent) []esdb.Position {
	out := make([]esdb.Position, len(evs))
	for i, e := range evs {
		out[i] = e.OriginalEvent().Position
	}
	return out
}

// requireIncreasing asserts $all order: positions > 0, commit == prepare,
// strictly increasing.
func requireIncreasing(t *testing.T, evs []*esdb.ResolvedEvent) {
	t.Helper()
	var last uint64
	for _, e := range evs {
		p := e.OriginalEvent().Position
		require.Positive(t, p.Commit)
		require.Equal(t, p.Commit, p.Prepare)
		require.Greater(t, p.Commit, last, "positions strictly increase")
		last = p.Commit
	}
}
