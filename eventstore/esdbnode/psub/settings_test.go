package psub_test

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/persistent"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/shared"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/orderstore/orders/eventstore/esdbnode"
)

// rawClient is a plain gRPC client for what the official client cannot send.
func rawClient(t *testing.T, srv *esdbnode.Server) persistent.PersistentSubscriptionsClient {
	t.Helper()
	conn, err := grpc.NewClient(srv.Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	return persistent.NewPersistentSubscriptionsClient(conn)
}

func rawCreate(stream, group, strategy string) *persistent.CreateReq {
	id := &shared.StreamIdentifier{StreamName: []byte(stream)}
	return &persistent.CreateReq{Options: &persistent.CreateReq_Options{
		StreamOption: &persistent.CreateReq_Options_Stream{Stream: &persistent.CreateReq_StreamOptions{
			StreamIdentifier: id, RevisionOption: &persistent.CreateReq_StreamOptions_Start{Start: &shared.Empty{}},
		}},
		StreamIdentifier: id,
		GroupName:        group,
		Settings: &persistent.CreateReq_Settings{
			MaxRetryCount: 10, MinCheckpointCount: 10, MaxCheckpointCount: 1000, LiveBufferSize: 500,
			ReadBatchSize: 20, HistoryBufferSize: 500, ConsumerStrategy: strategy,
			MessageTimeout:  &persistent.CreateReq_Settings_MessageTimeoutMs{MessageTimeoutMs: 30000},
			CheckpointAfter: &persistent.CreateReq_Settings_CheckpointAfterMs{CheckpointAfterMs: 2000},
		},
	}}
}

func TestErrorTrailers(t *testing.T) {
	srv, _ := startNode(t)
	raw := rawClient(t, srv)
	s, g := uniq("s"), uniq("g")
	cases := []struct {
		name      string
		call      func(opts ...grpc.CallOption) error
		code      codes.Code
		exception string
	}{
		{"unknown strategy", func(o ...grpc.CallOption) error {
			_, err := raw.Create(t.Context(), rawCreate(s, uniq("g"), "Nope"), o...)
			return err
		}, codes.Internal, "persistent-subscription-failed"},
		{"create", func(o ...grpc.CallOption) error {
			_, err := raw.Create(t.Context(), rawCreate(s, g, ""), o...)
			return err
		}, codes.OK, ""},
		{"create again", func(o ...grpc.CallOption) error {
			_, err := raw.Create(t.Context(), rawCreate(s, g, ""), o...)
			return err
		}, codes.AlreadyExists, "persistent-subscription-exists"},
		{"delete missing", func(o ...grpc.CallOption) error {
			_, err := raw.Delete(t.Context(), &persistent.DeleteReq{Options: &persistent.DeleteReq_Options{
				StreamOption: &persistent.DeleteReq_Options_StreamIdentifier{StreamIdentifier: &shared.StreamIdentifier{StreamName: []byte(s)}},
				GroupName:    "missing",
			}}, o...)
			return err
		}, codes.NotFound, "persistent-subscription-does-not-exist"},
		{"replay with negative stop_at", func(o ...grpc.CallOption) error {
			_, err := raw.ReplayParked(t.Context(), &persistent.ReplayParkedReq{Options: &persistent.ReplayParkedReq_Options{
				GroupName:    g,
				StreamOption: &persistent.ReplayParkedReq_Options_StreamIdentifier{StreamIdentifier: &shared.StreamIdentifier{StreamName: []byte(s)}},
				StopAtOption: &persistent.ReplayParkedReq_Options_StopAt{StopAt: -1},
			}}, o...)
			return err
		}, codes.Internal, "persistent-subscription-failed"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var md metadata.MD
			err := tc.call(grpc.Trailer(&md))
			assert.Equal(t, tc.code, status.Code(err), "%v", err)
			if tc.exception != "" {
				assert.Equal(t, []string{tc.exception}, md.Get("exception"))
				assert.Equal(t, []string{s}, md.Get("stream-name"))
			}
		})
	}
}

func TestPinnedByCorrelation(t *testing.T) {
	srv, c := startNode(t)
	raw := rawClient(t, srv)
	s, g := uniq("s"), uniq("g")
	_, err := raw.Create(t.Context(), rawCreate(s, g, "PinnedByCorrelation"))
	require.NoError(t, err)
	assert.Equal(t, esdb.ConsumerStrategy("PinnedByCorrelation"), info(t, c, s, g).Settings.ConsumerStrategyName)

	a, b := subscribe(t, c, s, g, 100), subscribe(t, c, s, g, 100)
	eventually(t, "both connected", func() (bool, string) { return len(info(t, c, s, g).Connections) == 2, "" })
	const n = 40
	for i := range n {
		md, _ := json.Marshal(map[string]string{"$correlationId": fmt.Sprintf("corr-%d", i%8)})
		_, err := c.AppendToStream(t.Context(), s, esdb.AppendToStreamOptions{}, esdb.EventData{
			EventType: "T", ContentType: esdb.ContentTypeJson, Data: []byte(`{}`), Metadata: md,
		})
		require.NoError(t, err)
	}
	owner := map[string]int{}
	for range n {
		var ev *esdb.EventAppeared
		who := 0
		select {
		case ev = <-a.events:
			a.ack(t, ev)
		case ev = <-b.events:
			who = 1
			b.ack(t, ev)
		case <-t.Context().Done():
			t.Fatal("context done")
		}
		var md map[string]string
		require.NoError(t, json.Unmarshal(ev.Event.Event.UserMetadata, &md))
		corr := md["$correlationId"]
		if prev, ok := owner[corr]; ok {
			require.Equal(t, prev, who, "correlation %s moved between consumers", corr)
		}
		owner[corr] = who
	}
	assert.Len(t, owner, 8)
	used := map[int]bool{}
	for _, w := range owner {
		used[w] = true
	}
	assert.Len(t, used, 2, "one stream, yet both consumers get work by correlation id")
}

func TestBuffersAndStatus(t *testing.T) {
	_, c := startNode(t)

	t.Run("history buffer bounds the read-ahead while behind", func(t *testing.T) {
		s, g := uniq("s"), uniq("g")
		appendN(t, c, s, 0, 100)
		createStream(t, c, s, g, esdb.Start{}, func(st *esdb.PersistentSubscriptionSettings) {
			st.ReadBatchSize, st.HistoryBufferSize = 10, 30
		})
		// As EventStoreDB (StreamBuffer.CanAccept), a page is read only
		// while a whole page fits: 0, 10, 20 buffered, then 30-20 is not
		// more than 10.
		eventually(t, "buffer full", func() (bool, string) {
			i := info(t, c, s, g)
			st := i.Stats
			b, _ := json.Marshal(i)
			return st.ReadBufferCount == 20 && i.Status == "Behind" && st.LastKnownEventRevision != nil && *st.LastKnownEventRevision == 19, string(b)
		})
		sub := subscribe(t, c, s, g, 50)
		for want := range 100 {
			ev := sub.next(t)
			require.Equal(t, uint64(want), ev.Event.OriginalEvent().EventNumber)
			sub.ack(t, ev)
		}
		eventually(t, "live", func() (bool, string) { i := info(t, c, s, g); return i.Status == "Live", i.Status })
	})

	t.Run("live buffer overflow falls behind", func(t *testing.T) {
		s, g := uniq("s"), uniq("g")
		createStream(t, c, s, g, esdb.End{}, func(st *esdb.PersistentSubscriptionSettings) {
			st.ReadBatchSize, st.HistoryBufferSize, st.LiveBufferSize = 5, 30, 10
		})
		appendN(t, c, s, 0, 5)
		eventually(t, "live with 5 buffered", func() (bool, string) {
			i := info(t, c, s, g)
			return i.Status == "Live" && i.Stats.LiveBufferCount == 5, i.Status
		})
		appendN(t, c, s, 5, 50)
		// The live buffer takes 5 more (10, full): behind, pages of 5 while
		// one fits in 30: 15, 20, 25.
		eventually(t, "behind, bounded by the history buffer", func() (bool, string) {
			i := info(t, c, s, g)
			return i.Status == "Behind" && i.Stats.ReadBufferCount == 25, fmt.Sprint(i.Status, i.Stats.ReadBufferCount)
		})
	})

	t.Run("time-based checkpoint after min count", func(t *testing.T) {
		s, g := uniq("s"), uniq("g")
		appendN(t, c, s, 0, 3)
		createStream(t, c, s, g, esdb.Start{}, func(st *esdb.PersistentSubscriptionSettings) {
			st.CheckpointAfter, st.CheckpointLowerBound, st.CheckpointUpperBound = 1, 2, 1000
		})
		sub := subscribe(t, c, s, g, 10)
		for range 3 {
			sub.ack(t, sub.next(t))
		}
		eventually(t, "checkpoint on a tick", func() (bool, string) {
			r := info(t, c, s, g).Stats.LastCheckpointedEventRevision
			return r != nil && *r == 2, ""
		})
	})

	t.Run("tombstoning the stream drops the consumers", func(t *testing.T) {
		s, g := uniq("s"), uniq("g")
		appendN(t, c, s, 0, 1)
		createStream(t, c, s, g, esdb.Start{}, nil)
		sub := subscribe(t, c, s, g, 10)
		sub.ack(t, sub.next(t))
		_, err := c.TombstoneStream(t.Context(), s, esdb.TombstoneStreamOptions{})
		require.NoError(t, err)
		sub.waitDropped(t)
	})
}

func TestAllGroupOwnCheckpointsDoNotFeedThemselves(t *testing.T) {
	_, c := startNode(t)
	g := uniq("g")
	prefix := uniq("own") + "-"
	require.NoError(t, c.CreatePersistentSubscriptionToAll(t.Context(), g, esdb.PersistentAllSubscriptionOptions{
		StartFrom: esdb.End{},
		Filter:    &esdb.SubscriptionFilter{Type: esdb.StreamFilterType, Prefixes: []string{prefix}},
		Settings:  settings(func(st *esdb.PersistentSubscriptionSettings) { st.CheckpointLowerBound, st.CheckpointUpperBound = 0, 0 }),
	}))
	sub := subscribe(t, c, "$all", g, 10)
	ck := "$persistentsubscription-$all::" + g + "-checkpoint"
	// lastCk waits until the checkpoint covers ev and returns the checkpoint
	// stream's last revision.
	lastCk := func(ev *esdb.EventAppeared) uint64 {
		var rev uint64
		eventually(t, "checkpoint covers the event", func() (bool, string) {
			p := info(t, c, "$all", g).Stats.LastCheckpointedPosition
			evs := readStream(t, c, ck)
			if p == nil || len(evs) == 0 {
				return false, "none"
			}
			rev = evs[len(evs)-1].Event.EventNumber
			return p.Commit >= ev.Event.OriginalEvent().Position.Commit, fmt.Sprint(p.Commit)
		})
		return rev
	}
	appendN(t, c, prefix+"a", 0, 1)
	first := sub.next(t)
	sub.ack(t, first)
	r1 := lastCk(first)
	appendN(t, c, prefix+"a", 1, 1)
	second := sub.next(t)
	sub.ack(t, second)
	r2 := lastCk(second)
	assert.LessOrEqual(t, r2, r1+2, "checkpoints of checkpoints keep being written")
}

// TestReadAheadKeepsOrderAndBounds runs groups over more events than the
// reader reads ahead at once (500), with small pages, so that pages are
// served from what was read ahead, from fresh reads, and across the live
// tail: every event arrives once, in order, and the buffer never holds more
// than the history buffer.
func TestReadAheadKeepsOrderAndBounds(t *testing.T) {
	_, c := startNode(t)
	const history, live = 1234, 17
	small := func(st *esdb.PersistentSubscriptionSettings) {
		st.ReadBatchSize, st.HistoryBufferSize, st.LiveBufferSize = 7, 600, 600
	}
	check := func(t *testing.T, sub *consumer, stream string, from, n int, info func() *esdb.PersistentSubscriptionInfo) {
		t.Helper()
		for want := from; want < from+n; want++ {
			ev := sub.next(t)
			require.Equal(t, stream, ev.Event.OriginalEvent().StreamID)
			require.Equal(t, want, payloadN(t, ev), "events out of order or repeated")
			if want%250 == 0 {
				st := info().Stats
				require.LessOrEqual(t, st.ReadBufferCount, int64(600), "buffer beyond the history buffer")
			}
			sub.ack(t, ev)
		}
	}

	t.Run("stream group", func(t *testing.T) {
		s, g := uniq("s"), uniq("g")
		for done := 0; done < history; done += 100 {
			appendN(t, c, s, done, min(100, history-done))
		}
		createStream(t, c, s, g, esdb.Start{}, small)
		sub := subscribe(t, c, s, g, 20)
		check(t, sub, s, 0, history, func() *esdb.PersistentSubscriptionInfo { return info(t, c, s, g) })
		appendN(t, c, s, history, live)
		check(t, sub, s, history, live, func() *esdb.PersistentSubscriptionInfo { return info(t, c, s, g) })
	})

	t.Run("$all group", func(t *testing.T) {
		prefix := uniq("ra") + "-"
		s, g := prefix+"yes", uniq("g")
		require.NoError(t, c.CreatePersistentSubscriptionToAll(t.Context(), g, esdb.PersistentAllSubscriptionOptions{
			StartFrom: esdb.End{}, Settings: settings(small),
			Filter: &esdb.SubscriptionFilter{Type: esdb.StreamFilterType, Prefixes: []string{s}},
		}))
		allInfo := func() *esdb.PersistentSubscriptionInfo {
			i, err := c.GetPersistentSubscriptionInfoToAll(t.Context(), g, esdb.GetPersistentSubscriptionOptions{})
			require.NoError(t, err)
			return i
		}
		for done := 0; done < history; done += 100 {
			appendN(t, c, s, done, min(100, history-done))
			appendN(t, c, prefix+"no", done, 50) // filtered out, between the pages
		}
		sub := subscribe(t, c, "$all", g, 20)
		check(t, sub, s, 0, history, allInfo)
		appendN(t, c, s, history, live)
		check(t, sub, s, history, live, allInfo)
	})
}
