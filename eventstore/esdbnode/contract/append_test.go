package contract

import (
	"bytes"
	"testing"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
)

// streamState prepares a stream in one of the four states of docs/protocol.md,
// section 2, "Revisions", and returns its name.
type streamState struct {
	name  string
	setup setupFunc // nil: absent
}

var streamStates = map[string]streamState{
	"absent": {name: "absent"},
	"existing": {name: "existing", setup: func(t *testing.T, c *esdb.Client, s string) {
		appendOK(t, c, s, esdb.NoStream{}, events(2, "Seed")...) // revisions 0, 1
	}},
	"soft-deleted": {name: "soft-deleted", setup: func(t *testing.T, c *esdb.Client, s string) {
		appendOK(t, c, s, esdb.NoStream{}, events(2, "Seed")...)
		_, err := c.DeleteStream(opCtx(t), s, esdb.DeleteStreamOptions{ExpectedRevision: esdb.Revision(1)})
		require.NoError(t, err)
	}},
	"tombstoned": {name: "tombstoned", setup: func(t *testing.T, c *esdb.Client, s string) {
		appendOK(t, c, s, esdb.NoStream{}, events(2, "Seed")...)
		_, err := c.TombstoneStream(opCtx(t), s, esdb.TombstoneStreamOptions{ExpectedRevision: esdb.Revision(1)})
		require.NoError(t, err)
	}},
}

// TestAppendExpectedRevision pins the decision table of docs/protocol.md,
// section 3, "Append", for one new event, and the wrong-expected-version error
// as the client reports it.
func TestAppendExpectedRevision(t *testing.T) {
	t.Parallel()
	tg := newTarget(t)

	type outcome int
	const (
		ok outcome = iota
		wev
		deleted
	)
	tests := []struct {
		state   string
		exp     esdb.ExpectedRevision
		expName string
		want    outcome
		rev     uint64 // revision of the new event when ok
		wevMsg  string // the client's message when wev
	}{
		{"absent", esdb.Any{}, "any", ok, 0, ""},
		{"absent", esdb.NoStream{}, "no_stream", ok, 0, ""},
		{"absent", esdb.StreamExists{}, "stream_exists", wev, 0, "wrong expected version: expecting 'stream_exists' but got 'no_stream'"},
		{"absent", esdb.Revision(0), "revision 0", wev, 0, "wrong expected version: expecting '0' but got 'no_stream'"},
		{"existing", esdb.Any{}, "any", ok, 2, ""},
		{"existing", esdb.NoStream{}, "no_stream", wev, 0, "wrong expected version: expecting 'no_stream' but got '1'"},
		{"existing", esdb.StreamExists{}, "stream_exists", ok, 2, ""},
		{"existing", esdb.Revision(1), "revision 1 (current)", ok, 2, ""},
		{"existing", esdb.Revision(0), "revision 0 (behind)", wev, 0, "wrong expected version: expecting '0' but got '1'"},
		{"existing", esdb.Revision(5), "revision 5 (ahead)", wev, 0, "wrong expected version: expecting '5' but got '1'"},
		{"soft-deleted", esdb.Any{}, "any", ok, 2, ""},
		{"soft-deleted", esdb.NoStream{}, "no_stream", ok, 2, ""},
		{"soft-deleted", esdb.StreamExists{}, "stream_exists", deleted, 0, ""},
		{"soft-deleted", esdb.Revision(1), "revision 1 (current)", ok, 2, ""},
		{"soft-deleted", esdb.Revision(5), "revision 5 (ahead)", wev, 0, "wrong expected version: expecting '5' but got '1'"},
		{"tombstoned", esdb.Any{}, "any", deleted, 0, ""},
		{"tombstoned", esdb.NoStream{}, "no_stream", deleted, 0, ""},
		{"tombstoned", esdb.StreamExists{}, "stream_exists", deleted, 0, ""},
		{"tombstoned", esdb.Revision(1), "revision 1", deleted, 0, ""},
	}
	for _, tc := range tests {
		t.Run(tc.state+"/"+tc.expName, func(t *testing.T) {
			c := tg.client
			st := streamStates[tc.state]
			s := streamName("exp")
			if st.setup != nil {
				st.setup(t, c, s)
			}
			ev := jsonEvent("New", `{"new":true}`)
			res, err := c.AppendToStream(opCtx(t), s, esdb.AppendToStreamOptions{ExpectedRevision: tc.exp}, ev)
			switch tc.want {
			case ok:
				require.NoError(t, err)
				require.Equal(t, tc.rev, res.NextExpectedVersion)
				require.Positive(t, res.CommitPosition)
				// Only the new event is visible: earlier events stay hidden on a
				// soft-deleted stream whose numbering continues.
				got := readStreamOK(t, c, s, esdb.ReadStreamOptions{}, 100)
				require.NotEmpty(t, got)
				last := got[len(got)-1].OriginalEvent()
				require.Equal(t, ev.EventID, last.EventID)
				require.Equal(t, tc.rev, last.EventNumber)
				require.Equal(t, res.CommitPosition, last.Position.Commit)
				if tc.state == "soft-deleted" {
					require.Len(t, got, 1, "events before the soft delete stay hidden")
				}
			case wev:
				requireCode(t, err, esdb.ErrorCodeWrongExpectedVersion)
				esErr, isErr := esdb.FromError(err)
				require.False(t, isErr)
				require.Equal(t, esdb.ErrorCodeWrongExpectedVersion, esErr.Code(), "append WEV is not wrapped")
				require.EqualError(t, esErr.Err(), tc.wevMsg)
				assertUnchanged(t, c, s, tc.state)
			case deleted:
				requireCode(t, err, esdb.ErrorCodeStreamDeleted)
				assertUnchanged(t, c, s, tc.state)
			}
		})
	}
}

// assertUnchanged checks that a failed append left a stream in its state.
func assertUnchanged(t *testing.T, c *esdb.Client, s, state string) {
	t.Helper()
	got, err := readStream(t, c, s, esdb.ReadStreamOptions{}, 100)
	switch state {
	case "absent", "soft-deleted":
		requireCode(t, err, esdb.ErrorCodeResourceNotFound)
	case "tombstoned":
		requireCode(t, err, esdb.ErrorCodeStreamDeleted)
	default:
		require.NoError(t, err)
		require.Equal(t, []uint64{0, 1}, revisions(got))
	}
}

// TestAppendIdempotent pins docs/protocol.md, section 3, "Append" (and section
// 6, item 4): re-appending the same ids at the same place succeeds with the
// original result and writes nothing; a partial match is a
// wrong-expected-version.
func TestAppendIdempotent(t *testing.T) {
	t.Parallel()
	tg := newTarget(t)
	c := tg.client
	s := streamName("idem")
	evs := events(3, "Idem")
	first := appendOK(t, c, s, esdb.NoStream{}, evs...)
	require.Equal(t, uint64(2), first.NextExpectedVersion)
	stored := readStreamOK(t, c, s, esdb.ReadStreamOptions{}, 10)
	require.Len(t, stored, 3)

	tests := []struct {
		name    string
		exp     esdb.ExpectedRevision
		evs     []esdb.EventData
		wantRev uint64
		wantPos uint64
	}{
		{"all again, no_stream", esdb.NoStream{}, evs, 2, first.CommitPosition},
		{"all again, any", esdb.Any{}, evs, 2, first.CommitPosition},
		{"all again, stream_exists", esdb.StreamExists{}, evs, 2, first.CommitPosition},
		{"tail again, revision 0", esdb.Revision(0), evs[1:], 2, first.CommitPosition},
		{"middle alone, any", esdb.Any{}, evs[1:2], 1, stored[1].OriginalEvent().Position.Commit},
		{"middle alone, revision 0", esdb.Revision(0), evs[1:2], 1, stored[1].OriginalEvent().Position.Commit},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := appendOK(t, c, s, tc.exp, tc.evs...)
			require.Equal(t, tc.wantRev, res.NextExpectedVersion)
			require.Equal(t, tc.wantPos, res.CommitPosition)
			require.Equal(t, tc.wantPos, res.PreparePosition)
		})
	}

	partial := []struct {
		name string
		exp  esdb.ExpectedRevision
		evs  []esdb.EventData
	}{
		{"first matches, second new, any", esdb.Any{}, []esdb.EventData{evs[0], jsonEvent("Idem", `{}`)}},
		{"first matches, second new, no_stream", esdb.NoStream{}, []esdb.EventData{evs[0], jsonEvent("Idem", `{}`)}},
		{"first matches, second new, revision 0", esdb.Revision(0), []esdb.EventData{evs[1], jsonEvent("Idem", `{}`)}},
		{"same ids in another order, no_stream", esdb.NoStream{}, []esdb.EventData{evs[1], evs[0], evs[2]}},
	}
	for _, tc := range partial {
		t.Run("partial/"+tc.name, func(t *testing.T) {
			_, err := c.AppendToStream(opCtx(t), s, esdb.AppendToStreamOptions{ExpectedRevision: tc.exp}, tc.evs...)
			requireCode(t, err, esdb.ErrorCodeWrongExpectedVersion)
		})
	}

	t.Run("nothing new was written", func(t *testing.T) {
		got := readStreamOK(t, c, s, esdb.ReadStreamOptions{}, 100)
		require.Equal(t, dataIDs(evs), ids(got))
		fromLast := ofStream(readAllOK(t, c, esdb.ReadAllOptions{From: esdb.Position{Commit: first.CommitPosition, Prepare: first.PreparePosition}}, 10_000), s)
		require.Len(t, fromLast, 1, "$all holds the stream's events once")
		require.Equal(t, evs[2].EventID, fromLast[0].OriginalEvent().EventID)
	})

	t.Run("same id in two streams", func(t *testing.T) {
		ev := jsonEvent("Twice", `{}`)
		ev.EventID = uuid.MustParse("38fffbc2-339e-11ea-8c7b-784f43837872") // as the client's own tests do
		s1, s2 := streamName("twin"), streamName("twin")
		appendOK(t, c, s1, esdb.NoStream{}, ev)
		res := appendOK(t, c, s2, esdb.NoStream{}, ev)
		require.Equal(t, uint64(0), res.NextExpectedVersion)
		for _, s := range []string{s1, s2} {
			got := readStreamOK(t, c, s, esdb.ReadStreamOptions{}, 10)
			require.Equal(t, []uuid.UUID{ev.EventID}, ids(got))
			require.Equal(t, s, got[0].OriginalEvent().StreamID)
		}
	})
}

// TestAppendNoEvents pins docs/protocol.md, section 3, "Append": an append of
// zero events checks the expectation and creates nothing.
func TestAppendNoEvents(t *testing.T) {
	t.Parallel()
	tg := newTarget(t)
	c := tg.client

	t.Run("absent stream, any", func(t *testing.T) {
		s := streamName("empty")
		// NextExpectedVersion is not pinned here: the client reports 1 for
		// success.no_stream with a position and 0 without one.
		appendOK(t, c, s, esdb.Any{})
		_, err := readStream(t, c, s, esdb.ReadStreamOptions{}, 10)
		requireCode(t, err, esdb.ErrorCodeResourceNotFound)
	})
	tests := []struct {
		name string
		exp  esdb.ExpectedRevision
		ok   bool
	}{
		{"existing, any", esdb.Any{}, true},
		{"existing, stream_exists", esdb.StreamExists{}, true},
		{"existing, current revision", esdb.Revision(1), true},
		{"existing, revision behind", esdb.Revision(0), false},
		{"existing, revision ahead", esdb.Revision(7), false},
		{"existing, no_stream", esdb.NoStream{}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := streamName("empty")
			appendOK(t, c, s, esdb.NoStream{}, events(2, "Seed")...)
			res, err := c.AppendToStream(opCtx(t), s, esdb.AppendToStreamOptions{ExpectedRevision: tc.exp})
			if tc.ok {
				require.NoError(t, err)
				require.Equal(t, uint64(1), res.NextExpectedVersion)
			} else {
				requireCode(t, err, esdb.ErrorCodeWrongExpectedVersion)
			}
			require.Equal(t, []uint64{0, 1}, revisions(readStreamOK(t, c, s, esdb.ReadStreamOptions{}, 10)))
		})
	}
}

// TestAppendSizeLimit pins the 1 MiB limit on the data of one append
// (docs/protocol.md, section 3, "Append", and section 4).
func TestAppendSizeLimit(t *testing.T) {
	t.Parallel()
	tg := newTarget(t)
	c := tg.client
	const mib = 1 << 20
	blob := func(n int) esdb.EventData {
		return esdb.EventData{EventID: uuid.New(), EventType: "Blob", ContentType: esdb.ContentTypeBinary, Data: bytes.Repeat([]byte{'x'}, n)}
	}
	tests := []struct {
		name string
		evs  []esdb.EventData
		ok   bool
	}{
		{"one event just under", []esdb.EventData{blob(mib - 1024)}, true},
		{"one event of exactly 1 MiB", []esdb.EventData{blob(mib)}, true},
		{"two events summing to just under", []esdb.EventData{blob(mib/2 - 1024), blob(mib / 2)}, true},
		{"one event just over", []esdb.EventData{blob(mib + 1)}, false},
		{"three events summing to over", []esdb.EventData{blob(400 << 10), blob(400 << 10), blob(400 << 10)}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := streamName("size")
			res, err := c.AppendToStream(opCtx(t), s, esdb.AppendToStreamOptions{ExpectedRevision: esdb.NoStream{}}, tc.evs...)
			if tc.ok {
				require.NoError(t, err)
				require.Equal(t, uint64(len(tc.evs)-1), res.NextExpectedVersion)
				got := readStreamOK(t, c, s, esdb.ReadStreamOptions{}, 10)
				require.Equal(t, dataIDs(tc.evs), ids(got))
				for i, e := range got {
					require.Equal(t, len(tc.evs[i].Data), len(e.OriginalEvent().Data))
				}
				return
			}
			require.Error(t, err)
			require.Equal(t, esdb.ErrorCodeUnknown, code(err), "InvalidArgument maps to ErrorCodeUnknown: %v", err)
			_, err = readStream(t, c, s, esdb.ReadStreamOptions{}, 10)
			requireCode(t, err, esdb.ErrorCodeResourceNotFound)
		})
	}
}
