package contract

import (
	"fmt"
	"testing"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/stretchr/testify/require"
)

// link is a "$>" event pointing at revision n of stream.
func link(n uint64, stream string) esdb.EventData {
	ev := jsonEvent("$>", "")
	ev.ContentType = esdb.ContentTypeBinary
	ev.Data = fmt.Appendf(nil, "%d@%s", n, stream)
	return ev
}

// TestLinks pins link events and resolve_links (docs/protocol.md, section 2,
// "Links") as the client maps them into ResolvedEvent.
func TestLinks(t *testing.T) {
	t.Parallel()
	tg := newTarget(t)
	c := tg.client

	target := streamName("target")
	targetEv := jsonEvent("Target", `{"t":1}`)
	appendOK(t, c, target, esdb.NoStream{}, targetEv)
	gone := streamName("gone")
	appendOK(t, c, gone, esdb.NoStream{}, jsonEvent("Gone", `{}`))
	_, err := c.TombstoneStream(opCtx(t), gone, esdb.TombstoneStreamOptions{})
	require.NoError(t, err)
	soft := streamName("soft")
	appendOK(t, c, soft, esdb.NoStream{}, jsonEvent("Soft", `{}`))
	_, err = c.DeleteStream(opCtx(t), soft, esdb.DeleteStreamOptions{})
	require.NoError(t, err)

	links := streamName("links")
	linkEvs := []esdb.EventData{
		link(0, target), // resolves
		link(0, gone),   // target tombstoned
		link(0, soft),   // target soft-deleted
		link(7, target), // target revision missing
		link(0, "no-such-"+target),
	}
	malformed := jsonEvent("$>", "")
	malformed.ContentType = esdb.ContentTypeBinary
	malformed.Data = []byte("not a link")
	linkEvs = append(linkEvs, malformed)
	appendOK(t, c, links, esdb.NoStream{}, linkEvs...)

	t.Run("resolve off", func(t *testing.T) {
		got := readStreamOK(t, c, links, esdb.ReadStreamOptions{}, 100)
		require.Len(t, got, len(linkEvs))
		for i, e := range got {
			require.Nil(t, e.Link)
			require.NotNil(t, e.Event)
			require.Equal(t, "$>", e.Event.EventType)
			require.Equal(t, linkEvs[i].EventID, e.Event.EventID)
			require.Equal(t, linkEvs[i].Data, e.Event.Data)
			require.Equal(t, links, e.Event.StreamID)
		}
	})

	t.Run("resolve on", func(t *testing.T) {
		got := readStreamOK(t, c, links, esdb.ReadStreamOptions{ResolveLinkTos: true}, 100)
		require.Len(t, got, len(linkEvs))

		ok := got[0]
		require.NotNil(t, ok.Event)
		require.NotNil(t, ok.Link)
		require.Equal(t, targetEv.EventID, ok.Event.EventID)
		require.Equal(t, target, ok.Event.StreamID)
		require.Equal(t, uint64(0), ok.Event.EventNumber)
		require.Equal(t, targetEv.Data, ok.Event.Data)
		require.Equal(t, linkEvs[0].EventID, ok.Link.EventID)
		require.Equal(t, links, ok.Link.StreamID)
		require.Same(t, ok.Link, ok.OriginalEvent())
		require.NotNil(t, ok.Commit)
		require.Equal(t, ok.Link.Position.Commit, *ok.Commit, "original position = link position")

		for i, name := range []string{"tombstoned target", "soft-deleted target", "missing revision", "absent stream"} {
			t.Run("failed resolution/"+name, func(t *testing.T) {
				e := got[i+1]
				require.Nil(t, e.Event, "failed resolution has no event")
				require.NotNil(t, e.Link)
				require.Equal(t, linkEvs[i+1].EventID, e.Link.EventID)
				require.Equal(t, "$>", e.Link.EventType)
				require.Equal(t, links, e.Link.StreamID)
			})
		}

		t.Run("malformed link data is returned unresolved", func(t *testing.T) {
			e := got[5]
			require.Nil(t, e.Link)
			require.NotNil(t, e.Event)
			require.Equal(t, malformed.EventID, e.Event.EventID)
		})
	})

	t.Run("resolve on, backwards and in $all", func(t *testing.T) {
		back := readStreamOK(t, c, links, esdb.ReadStreamOptions{ResolveLinkTos: true, Direction: esdb.Backwards, From: esdb.End{}}, 100)
		require.Len(t, back, len(linkEvs))
		require.Equal(t, targetEv.EventID, back[len(back)-1].Event.EventID)

		first := readStreamOK(t, c, links, esdb.ReadStreamOptions{}, 1)[0].OriginalEvent().Position
		all := ofStream(readAllOK(t, c, esdb.ReadAllOptions{From: first, ResolveLinkTos: true}, 100_000), links)
		require.Len(t, all, len(linkEvs))
		require.NotNil(t, all[0].Link)
		require.Equal(t, targetEv.EventID, all[0].Event.EventID)
	})
}

// TestSystemStreams pins the seeded system streams (docs/protocol.md, section
// 2, "System streams") and that "$" streams are ordinary in insecure mode.
func TestSystemStreams(t *testing.T) {
	t.Parallel()
	tg := newTarget(t)
	c := tg.client

	t.Run("$users is seeded", func(t *testing.T) {
		got, err := readStream(t, c, "$users", esdb.ReadStreamOptions{}, 100)
		if tg.external && err != nil {
			t.Skipf("external node has no readable $users: %v", err)
		}
		require.NoError(t, err)
		require.GreaterOrEqual(t, len(got), 2)
		for _, e := range got {
			require.Equal(t, "$User", e.OriginalEvent().EventType)
			require.Equal(t, "$users", e.OriginalEvent().StreamID)
		}
	})

	t.Run("a $ stream can be written and read", func(t *testing.T) {
		s := "$" + streamName("sys")
		ev := jsonEvent("$custom", `{}`)
		appendOK(t, c, s, esdb.NoStream{}, ev)
		got := readStreamOK(t, c, s, esdb.ReadStreamOptions{}, 10)
		require.Equal(t, ev.EventID, got[0].OriginalEvent().EventID)
	})
}
