package contract

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// wait is the deadline for one expected subscription message.
const wait = 15 * time.Second

// subscribeStream opens a stream subscription pumped into a channel.
func subscribeStream(t *testing.T, c *esdb.Client, s string, opts esdb.SubscribeToStreamOptions) *subReader {
	t.Helper()
	sub, err := c.SubscribeToStream(t.Context(), s, opts)
	require.NoError(t, err)
	return pump(t, sub)
}

// subscribeAll opens a $all subscription pumped into a channel.
func subscribeAll(t *testing.T, c *esdb.Client, opts esdb.SubscribeToAllOptions) *subReader {
	t.Helper()
	sub, err := c.SubscribeToAll(t.Context(), opts)
	require.NoError(t, err)
	return pump(t, sub)
}

// nextOf waits for the next event of stream s, skipping others.
func (r *subReader) nextOf(t *testing.T, s string) *esdb.ResolvedEvent {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		ev := r.nextEvent(t, time.Until(deadline))
		if ev.OriginalEvent().StreamID == s {
			return ev
		}
	}
}

// requireDropped waits for the subscription to end and returns its error;
// events before the drop fail the test.
func (r *subReader) requireDropped(t *testing.T) error {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		ev := r.next(t, time.Until(deadline))
		if ev.SubscriptionDropped != nil {
			return ev.SubscriptionDropped.Error
		}
		require.Nil(t, ev.EventAppeared, "no event expected before the drop")
	}
}

// TestSubscribeToStream pins stream subscriptions (docs/protocol.md, section
// 3, "Subscriptions").
func TestSubscribeToStream(t *testing.T) {
	t.Parallel()
	tg := newTarget(t)
	c := tg.client

	tests := []struct {
		name     string
		existing int
		from     esdb.StreamPosition
		catchUp  []uint64
	}{
		{"from start", 3, esdb.Start{}, []uint64{0, 1, 2}},
		{"from revision is exclusive", 3, esdb.Revision(1), []uint64{2}},
		{"from the last revision", 3, esdb.Revision(2), nil},
		{"from end", 3, esdb.End{}, nil},
		{"absent stream from start", 0, esdb.Start{}, nil},
		{"absent stream from end", 0, esdb.End{}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := streamName("sub")
			if tc.existing > 0 {
				appendOK(t, c, s, esdb.NoStream{}, events(tc.existing, "Old")...)
			}
			r := subscribeStream(t, c, s, esdb.SubscribeToStreamOptions{From: tc.from})
			got := r.untilCaughtUp(t, wait)
			require.Equal(t, len(tc.catchUp), len(got), "catch-up revisions %v", revisions(got))
			if len(got) > 0 {
				require.Equal(t, tc.catchUp, revisions(got))
			}
			live := events(2, "Live")
			appendOK(t, c, s, esdb.Any{}, live...)
			for i, want := range live {
				ev := r.nextEvent(t, wait).OriginalEvent()
				require.Equal(t, want.EventID, ev.EventID)
				require.Equal(t, uint64(tc.existing+i), ev.EventNumber)
				require.Equal(t, s, ev.StreamID)
			}
		})
	}

	t.Run("catch-up racing with appends has no gap and no duplicate", func(t *testing.T) {
		s := streamName("subrace")
		const before, during = 300, 150
		for range before / 50 {
			appendOK(t, c, s, esdb.Any{}, events(50, "Before")...)
		}
		r := subscribeStream(t, c, s, esdb.SubscribeToStreamOptions{From: esdb.Start{}})
		var wg sync.WaitGroup
		wg.Go(func() {
			for range during / 5 {
				if _, err := c.AppendToStream(t.Context(), s, esdb.AppendToStreamOptions{}, events(5, "During")...); err != nil {
					t.Errorf("append: %v", err)
					return
				}
			}
		})
		for want := range uint64(before + during) {
			ev := r.nextEvent(t, wait)
			require.Equal(t, want, ev.OriginalEvent().EventNumber)
		}
		wg.Wait()
		stored := readStreamOK(t, c, s, esdb.ReadStreamOptions{}, before+during+1)
		require.Len(t, stored, before+during)
		sentinel := jsonEvent("Sentinel", `{}`)
		appendOK(t, c, s, esdb.Revision(before+during-1), sentinel)
		require.Equal(t, sentinel.EventID, r.nextEvent(t, wait).OriginalEvent().EventID, "nothing between the last event and the sentinel")
	})

	t.Run("resolve links", func(t *testing.T) {
		target, links := streamName("subtarget"), streamName("sublinks")
		tev := jsonEvent("T", `{}`)
		appendOK(t, c, target, esdb.NoStream{}, tev)
		r := subscribeStream(t, c, links, esdb.SubscribeToStreamOptions{From: esdb.Start{}, ResolveLinkTos: true})
		r.untilCaughtUp(t, wait)
		lev := link(0, target)
		appendOK(t, c, links, esdb.NoStream{}, lev)
		ev := r.nextEvent(t, wait)
		require.NotNil(t, ev.Event)
		require.NotNil(t, ev.Link)
		require.Equal(t, tev.EventID, ev.Event.EventID)
		require.Equal(t, lev.EventID, ev.Link.EventID)
	})

	t.Run("tombstone ends the subscription", func(t *testing.T) {
		s := streamName("subtomb")
		appendOK(t, c, s, esdb.NoStream{}, events(2, "E")...)
		r := subscribeStream(t, c, s, esdb.SubscribeToStreamOptions{From: esdb.Start{}})
		require.Len(t, r.untilCaughtUp(t, wait), 2)
		_, err := c.TombstoneStream(opCtx(t), s, esdb.TombstoneStreamOptions{})
		require.NoError(t, err)
		tomb := r.nextEvent(t, wait).OriginalEvent()
		require.Equal(t, "$streamDeleted", tomb.EventType)
		require.Equal(t, maxInt64, tomb.EventNumber)
		err = r.requireDropped(t)
		require.Equal(t, codes.FailedPrecondition, status.Code(err), "stream-deleted: %v", err)
	})

	t.Run("subscription to a tombstoned stream fails", func(t *testing.T) {
		s := streamName("subtombed")
		streamStates["tombstoned"].setup(t, c, s)
		sub, err := c.SubscribeToStream(t.Context(), s, esdb.SubscribeToStreamOptions{From: esdb.Start{}})
		if err != nil {
			// Acceptable only as the stream-deleted error itself.
			require.Equal(t, esdb.ErrorCodeStreamDeleted, code(err), "%v", err)
			return
		}
		err = pump(t, sub).requireDropped(t)
		require.Equal(t, codes.FailedPrecondition, status.Code(err), "stream-deleted: %v", err)
	})
}

// TestSubscribeToAll pins $all subscriptions (docs/protocol.md, section 3,
// "Subscriptions", and section 6, item 7).
func TestSubscribeToAll(t *testing.T) {
	t.Parallel()
	tg := newTarget(t)
	c := tg.client

	t.Run("from start: catch-up then live equals $all", func(t *testing.T) {
		s := streamName("suball")
		appendOK(t, c, s, esdb.NoStream{}, events(3, "Old")...)
		r := subscribeAll(t, c, esdb.SubscribeToAllOptions{From: esdb.Start{}})
		delivered := r.untilCaughtUp(t, 60*time.Second)
		require.Len(t, ofStream(delivered, s), 3)
		live := events(2, "Live")
		appendOK(t, c, s, esdb.Revision(2), live...)
		sentinel := jsonEvent("Sentinel", `{}`)
		last := appendOK(t, c, s, esdb.Revision(4), sentinel)
		for {
			ev := r.nextEvent(t, wait)
			delivered = append(delivered, ev)
			if ev.OriginalEvent().EventID == sentinel.EventID {
				break
			}
		}
		requireIncreasing(t, delivered)
		require.Equal(t, last.CommitPosition, delivered[len(delivered)-1].OriginalEvent().Position.Commit)
		want := readAllOK(t, c, esdb.ReadAllOptions{From: esdb.Start{}}, uint64(len(delivered)))
		if tg.external {
			delivered, want = ofStream(delivered, s), ofStream(want, s)
		}
		require.Equal(t, ids(want), ids(delivered), "the subscription delivers exactly $all, once each, in order")
		require.Equal(t, positions(want), positions(delivered))
	})

	t.Run("from position is exclusive", func(t *testing.T) {
		s := streamName("suballpos")
		appendOK(t, c, s, esdb.NoStream{}, events(3, "Old")...)
		stored := readStreamOK(t, c, s, esdb.ReadStreamOptions{}, 10)
		p1 := stored[1].OriginalEvent().Position
		r := subscribeAll(t, c, esdb.SubscribeToAllOptions{From: p1})
		got := r.untilCaughtUp(t, wait)
		require.NotEmpty(t, got)
		require.Greater(t, got[0].OriginalEvent().Position.Commit, p1.Commit, "the start position itself is not delivered")
		require.Equal(t, []uint64{2}, revisions(ofStream(got, s)))
		appendOK(t, c, s, esdb.Revision(2), jsonEvent("Live", `{}`))
		require.Equal(t, uint64(3), r.nextOf(t, s).OriginalEvent().EventNumber)
	})

	t.Run("from end", func(t *testing.T) {
		s := streamName("suballend")
		appendOK(t, c, s, esdb.NoStream{}, events(1, "Old")...)
		head := lastPosition(t, c)
		r := subscribeAll(t, c, esdb.SubscribeToAllOptions{From: esdb.End{}})
		got := r.untilCaughtUp(t, wait)
		for _, e := range got {
			require.Greater(t, e.OriginalEvent().Position.Commit, head.Commit)
		}
		if !tg.external {
			require.Empty(t, got)
		}
		ev := jsonEvent("Live", `{}`)
		appendOK(t, c, s, esdb.Revision(0), ev)
		next := r.nextOf(t, s)
		require.Equal(t, ev.EventID, next.OriginalEvent().EventID)
		require.Greater(t, next.OriginalEvent().Position.Commit, head.Commit)
	})

	t.Run("tombstone and metadata records are delivered", func(t *testing.T) {
		s := streamName("suballtomb")
		r := subscribeAll(t, c, esdb.SubscribeToAllOptions{From: esdb.End{}})
		r.untilCaughtUp(t, wait)
		appendOK(t, c, s, esdb.NoStream{}, jsonEvent("E", `{}`))
		var m esdb.StreamMetadata
		m.SetMaxCount(5)
		setMeta(t, c, s, m)
		_, err := c.TombstoneStream(opCtx(t), s, esdb.TombstoneStreamOptions{})
		require.NoError(t, err)
		require.Equal(t, "E", r.nextOf(t, s).OriginalEvent().EventType)
		require.Equal(t, "$metadata", r.nextOf(t, "$$"+s).OriginalEvent().EventType)
		require.Equal(t, "$streamDeleted", r.nextOf(t, s).OriginalEvent().EventType)
	})
}

// filterCase is one server-side filter with the events it must select.
type filterCase struct {
	name   string
	filter *esdb.SubscriptionFilter
	match  func(e *esdb.RecordedEvent) bool
}

// TestSubscribeToAllFiltered pins filtered $all subscriptions: selection by
// event-type/stream prefix or regex, and checkpoints whose positions never
// decrease and never fall behind what was delivered.
func TestSubscribeToAllFiltered(t *testing.T) {
	t.Parallel()
	tg := newTarget(t)
	c := tg.client

	tag := strings.ReplaceAll(uuid.NewString(), "-", "")[:12]
	sA, sB := "flt"+tag+"-a", "flt"+tag+"-b"
	typ := func(k string) string { return "ftype" + tag + "-" + k }
	var appended []esdb.EventData
	write := func(t *testing.T, s string, k string, n int) {
		evs := events(n, typ(k))
		appendOK(t, c, s, esdb.Any{}, evs...)
		appended = append(appended, evs...)
	}
	write(t, sA, "x", 3)
	write(t, sB, "y", 4)
	write(t, sA, "y", 2)
	appendOK(t, c, sB, esdb.Any{}, events(5, "other"+tag)...)
	write(t, sB, "x", 1)

	cases := []filterCase{
		{"event type prefix", &esdb.SubscriptionFilter{Type: esdb.EventFilterType, Prefixes: []string{typ("")}},
			func(e *esdb.RecordedEvent) bool { return strings.HasPrefix(e.EventType, typ("")) }},
		{"event type two prefixes", &esdb.SubscriptionFilter{Type: esdb.EventFilterType, Prefixes: []string{typ("x"), "other" + tag}},
			func(e *esdb.RecordedEvent) bool {
				return e.EventType == typ("x") || e.EventType == "other"+tag
			}},
		{"event type regex", &esdb.SubscriptionFilter{Type: esdb.EventFilterType, Regex: "^ftype" + tag + "-(y)$"},
			func(e *esdb.RecordedEvent) bool { return e.EventType == typ("y") }},
		{"stream prefix", &esdb.SubscriptionFilter{Type: esdb.StreamFilterType, Prefixes: []string{sA}},
			func(e *esdb.RecordedEvent) bool { return strings.HasPrefix(e.StreamID, sA) }},
		{"stream regex (unanchored search)", &esdb.SubscriptionFilter{Type: esdb.StreamFilterType, Regex: tag + "-b"},
			func(e *esdb.RecordedEvent) bool { return strings.Contains(e.StreamID, tag+"-b") }},
	}
	for _, fc := range cases {
		t.Run(fc.name, func(t *testing.T) {
			all := readAllOK(t, c, esdb.ReadAllOptions{From: esdb.Start{}}, 1_000_000)
			var want []*esdb.ResolvedEvent
			for _, e := range all {
				if fc.match(e.OriginalEvent()) {
					want = append(want, e)
				}
			}
			require.NotEmpty(t, want)

			r := subscribeAll(t, c, esdb.SubscribeToAllOptions{From: esdb.Start{}, Filter: fc.filter, MaxSearchWindow: 4, CheckpointInterval: 1})
			var cp checkpoints
			got := cp.collectUntilCaughtUp(t, r)
			require.Positive(t, cp.n, "a filtered catch-up reports checkpoints")
			for _, e := range got {
				require.True(t, fc.match(e.OriginalEvent()), "delivered %s/%s", e.OriginalEvent().StreamID, e.OriginalEvent().EventType)
			}
			require.Equal(t, ids(want), ids(got))

			// Live: non-matching events still move the checkpoint.
			before := cp.n
			appendOK(t, c, "nomatch"+tag, esdb.Any{}, events(20, "nomatch"+tag)...)
			ev := esdb.EventData{EventID: uuid.New(), EventType: typ("x"), ContentType: esdb.ContentTypeJson, Data: []byte(`{}`)}
			appendOK(t, c, sB, esdb.Any{}, ev)
			if !fc.match(&esdb.RecordedEvent{EventType: ev.EventType, StreamID: sB}) {
				ev = esdb.EventData{EventID: uuid.New(), EventType: typ("y"), ContentType: esdb.ContentTypeJson, Data: []byte(`{}`)}
				appendOK(t, c, sA, esdb.Any{}, ev)
			}
			next := cp.nextEvent(t, r)
			require.Equal(t, ev.EventID, next.OriginalEvent().EventID)
			require.Greater(t, cp.n, before, "live checkpoints while skipping non-matching events")
		})
	}

	t.Run("exclude system events", func(t *testing.T) {
		s := streamName("nosys")
		appendOK(t, c, s, esdb.NoStream{}, jsonEvent("Visible1", `{}`))
		var m esdb.StreamMetadata
		m.SetMaxCount(10)
		setMeta(t, c, s, m)
		appendOK(t, c, s, esdb.Any{}, jsonEvent("$hidden", `{}`), jsonEvent("Visible2", `{}`))
		r := subscribeAll(t, c, esdb.SubscribeToAllOptions{From: esdb.Start{}, Filter: esdb.ExcludeSystemEventsFilter()})
		var cp checkpoints
		got := cp.collectUntilCaughtUp(t, r)
		for _, e := range got {
			require.False(t, strings.HasPrefix(e.OriginalEvent().EventType, "$"), "system event %s delivered", e.OriginalEvent().EventType)
		}
		mine := append(ofStream(got, s), ofStream(got, "$$"+s)...)
		require.Len(t, mine, 2)
		require.Equal(t, "Visible1", mine[0].OriginalEvent().EventType)
		require.Equal(t, "Visible2", mine[1].OriginalEvent().EventType)
	})
}

// checkpoints tracks CheckPointReached messages of a filtered subscription and
// checks them against the events delivered.
type checkpoints struct {
	n         int
	last      uint64 // last checkpoint commit position
	delivered uint64 // position of the last delivered event
}

func (cp *checkpoints) observe(t *testing.T, ev *subEvent) {
	t.Helper()
	switch {
	case ev.SubscriptionDropped != nil:
		t.Fatalf("subscription dropped: %v", ev.SubscriptionDropped.Error)
	case ev.CheckPointReached != nil:
		p := ev.CheckPointReached
		require.Equal(t, p.Commit, p.Prepare)
		require.GreaterOrEqual(t, p.Commit, cp.last, "checkpoints never decrease")
		require.GreaterOrEqual(t, p.Commit, cp.delivered, "a checkpoint is not behind a delivered event")
		cp.last = p.Commit
		cp.n++
	case ev.EventAppeared != nil:
		p := ev.EventAppeared.OriginalEvent().Position.Commit
		require.Greater(t, p, cp.delivered)
		require.Greater(t, p, cp.last, "events come after the last checkpoint")
		cp.delivered = p
	}
}

func (cp *checkpoints) collectUntilCaughtUp(t *testing.T, r *subReader) []*esdb.ResolvedEvent {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	var out []*esdb.ResolvedEvent
	for {
		ev := r.next(t, time.Until(deadline))
		cp.observe(t, ev)
		if ev.CaughtUp != nil {
			return out
		}
		if ev.EventAppeared != nil {
			out = append(out, ev.EventAppeared)
		}
	}
}

func (cp *checkpoints) nextEvent(t *testing.T, r *subReader) *esdb.ResolvedEvent {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		ev := r.next(t, time.Until(deadline))
		cp.observe(t, ev)
		if ev.EventAppeared != nil {
			return ev.EventAppeared
		}
	}
}

// String is for failure messages.
func (cp *checkpoints) String() string {
	return fmt.Sprintf("%d checkpoints, last %d, delivered %d", cp.n, cp.last, cp.delivered)
}
