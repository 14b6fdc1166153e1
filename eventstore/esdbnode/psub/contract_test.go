package psub_test

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestAdminOperations(t *testing.T) {
	_, c := startNode(t)
	ctx := t.Context()

	t.Run("create twice is AlreadyExists", func(t *testing.T) {
		s, g := uniq("s"), uniq("g")
		createStream(t, c, s, g, esdb.Start{}, nil)
		err := c.CreatePersistentSubscription(ctx, s, g, esdb.PersistentStreamSubscriptionOptions{})
		assert.Equal(t, esdb.ErrorCodeResourceAlreadyExists, errCode(err))
	})
	t.Run("create on a stream that does not exist", func(t *testing.T) {
		createStream(t, c, uniq("absent"), uniq("g"), esdb.End{}, nil)
	})
	t.Run("message timeout zero is accepted", func(t *testing.T) {
		createStream(t, c, uniq("s"), uniq("g"), esdb.Start{}, func(s *esdb.PersistentSubscriptionSettings) { s.MessageTimeout = 0 })
	})
	t.Run("read batch not below history buffer fails", func(t *testing.T) {
		err := c.CreatePersistentSubscription(ctx, uniq("s"), uniq("g"), esdb.PersistentStreamSubscriptionOptions{
			Settings: settings(func(s *esdb.PersistentSubscriptionSettings) { s.ReadBatchSize, s.HistoryBufferSize = 50, 50 }),
		})
		require.Error(t, err)
	})
	t.Run("$all through the stream option fails", func(t *testing.T) {
		err := c.CreatePersistentSubscription(ctx, "$all", uniq("g"), esdb.PersistentStreamSubscriptionOptions{})
		require.Error(t, err)
	})
	t.Run("$all start past the end fails", func(t *testing.T) {
		err := c.CreatePersistentSubscriptionToAll(ctx, uniq("g"), esdb.PersistentAllSubscriptionOptions{
			StartFrom: esdb.Position{Commit: 1 << 60, Prepare: 1 << 60},
		})
		require.Error(t, err)
	})
	t.Run("update, delete, info, replay of a missing group are NotFound", func(t *testing.T) {
		s, g := uniq("s"), uniq("g")
		assert.Equal(t, esdb.ErrorCodeResourceNotFound, errCode(c.UpdatePersistentSubscription(ctx, s, g, esdb.PersistentStreamSubscriptionOptions{})))
		assert.Equal(t, esdb.ErrorCodeResourceNotFound, errCode(c.DeletePersistentSubscription(ctx, s, g, esdb.DeletePersistentSubscriptionOptions{})))
		_, err := c.GetPersistentSubscriptionInfo(ctx, s, g, esdb.GetPersistentSubscriptionOptions{})
		assert.Equal(t, esdb.ErrorCodeResourceNotFound, errCode(err))
		assert.Equal(t, esdb.ErrorCodeResourceNotFound, errCode(c.ReplayParkedMessages(ctx, s, g, esdb.ReplayParkedMessagesOptions{})))
		_, err = c.ListPersistentSubscriptionsForStream(ctx, s, esdb.ListPersistentSubscriptionsOptions{})
		assert.Equal(t, esdb.ErrorCodeResourceNotFound, errCode(err))
		_, err = subscribeErr(c, s, g, 10)
		assert.Equal(t, esdb.ErrorCodeResourceNotFound, errCode(err))
	})
	t.Run("update changes settings and keeps the group", func(t *testing.T) {
		s, g := uniq("s"), uniq("g")
		createStream(t, c, s, g, esdb.Start{}, nil)
		err := c.UpdatePersistentSubscription(ctx, s, g, esdb.PersistentStreamSubscriptionOptions{
			Settings: settings(func(st *esdb.PersistentSubscriptionSettings) {
				st.MaxRetryCount, st.ResolveLinkTos, st.ConsumerStrategyName = 3, true, esdb.ConsumerStrategyPinned
				st.MessageTimeout, st.CheckpointAfter, st.CheckpointLowerBound, st.CheckpointUpperBound = 1234, 555, 7, 77
				st.MaxSubscriberCount, st.LiveBufferSize, st.ReadBatchSize, st.HistoryBufferSize = 5, 100, 10, 200
				st.ExtraStatistics = true
			}),
		})
		require.NoError(t, err)
		i := info(t, c, s, g)
		st := i.Settings
		assert.Equal(t, int32(3), st.MaxRetryCount)
		assert.True(t, st.ResolveLinkTos)
		assert.True(t, st.ExtraStatistics)
		assert.Equal(t, esdb.ConsumerStrategyPinned, st.ConsumerStrategyName)
		assert.Equal(t, int32(1234), st.MessageTimeout)
		assert.Equal(t, int32(555), st.CheckpointAfter)
		assert.Equal(t, int32(7), st.CheckpointLowerBound)
		assert.Equal(t, int32(77), st.CheckpointUpperBound)
		assert.Equal(t, int32(5), st.MaxSubscriberCount)
		assert.Equal(t, int32(100), st.LiveBufferSize)
		assert.Equal(t, int32(10), st.ReadBatchSize)
		assert.Equal(t, int32(200), st.HistoryBufferSize)
	})
	t.Run("delete then create again starts fresh", func(t *testing.T) {
		s, g := uniq("s"), uniq("g")
		appendN(t, c, s, 0, 3)
		createStream(t, c, s, g, esdb.Start{}, func(st *esdb.PersistentSubscriptionSettings) { st.CheckpointLowerBound, st.CheckpointUpperBound = 1, 1 })
		sub := subscribe(t, c, s, g, 10)
		for range 3 {
			sub.ack(t, sub.next(t))
		}
		ck := "$persistentsubscription-" + s + "::" + g + "-checkpoint"
		eventually(t, "checkpoint written", func() (bool, string) { return len(readStream(t, c, ck)) > 0, "" })
		require.NoError(t, c.DeletePersistentSubscription(ctx, s, g, esdb.DeletePersistentSubscriptionOptions{}))
		sub.waitDropped(t)
		assert.Nil(t, readStream(t, c, ck), "checkpoint stream soft-deleted")
		createStream(t, c, s, g, esdb.Start{}, nil)
		sub2 := subscribe(t, c, s, g, 10)
		assert.Equal(t, uint64(0), sub2.next(t).Event.OriginalEvent().EventNumber)
	})
	t.Run("restart subsystem", func(t *testing.T) {
		require.NoError(t, c.RestartPersistentSubscriptionSubsystem(ctx, esdb.RestartPersistentSubscriptionSubsystemOptions{}))
	})
	t.Run("stream and group names with slashes", func(t *testing.T) {
		s, g := "/"+uniq("s")+"/foo", "/"+uniq("g")+"/foo"
		createStream(t, c, s, g, esdb.End{}, nil)
		i := info(t, c, s, g)
		assert.Equal(t, s, i.EventSource)
		assert.Equal(t, g, i.GroupName)
	})
}

func TestStartPositions(t *testing.T) {
	_, c := startNode(t)
	cases := []struct {
		name      string
		before    int // events before creation
		from      esdb.StreamPosition
		after     int    // events appended after creation
		wantFirst uint64 // revision of the first event delivered
	}{
		{"start on existing stream", 10, esdb.Start{}, 0, 0},
		{"start on missing stream then append", 0, esdb.Start{}, 10, 0},
		{"end with events then append", 10, esdb.End{}, 1, 10},
		{"revision 2 on missing stream then append", 0, esdb.Revision(2), 4, 2},
		{"revision 10 with 10 events then append", 10, esdb.Revision(10), 1, 10},
		{"revision 4 with 10 events", 10, esdb.Revision(4), 0, 4},
		{"revision 11 with 11 events then append", 11, esdb.Revision(11), 1, 11},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, g := uniq("s"), uniq("g")
			if tc.before > 0 {
				appendN(t, c, s, 0, tc.before)
			}
			createStream(t, c, s, g, tc.from, nil)
			if tc.after > 0 {
				appendN(t, c, s, tc.before, tc.after)
			}
			sub := subscribe(t, c, s, g, 10)
			ev := sub.next(t)
			assert.Equal(t, tc.wantFirst, ev.Event.OriginalEvent().EventNumber)
			assert.Equal(t, 0, ev.RetryCount)
		})
	}
	t.Run("end is fixed at creation, not at connection", func(t *testing.T) {
		s, g := uniq("s"), uniq("g")
		appendN(t, c, s, 0, 10)
		createStream(t, c, s, g, esdb.End{}, nil)
		appendN(t, c, s, 10, 1) // committed before anyone connects
		sub := subscribe(t, c, s, g, 10)
		assert.Equal(t, 10, payloadN(t, sub.next(t)))
	})
	t.Run("$all from start delivers events", func(t *testing.T) {
		g := uniq("g")
		appendN(t, c, uniq("s"), 0, 3)
		require.NoError(t, c.CreatePersistentSubscriptionToAll(t.Context(), g, esdb.PersistentAllSubscriptionOptions{StartFrom: esdb.Start{}}))
		sub := subscribe(t, c, "$all", g, 2)
		for range 3 {
			ev := sub.next(t)
			require.NotNil(t, ev.Event.Event)
			sub.ack(t, ev)
		}
	})
}

func TestDeliveryLimitsAndAcks(t *testing.T) {
	_, c := startNode(t)

	t.Run("in-flight limit: ack frees a slot", func(t *testing.T) {
		s, g := uniq("s"), uniq("g")
		appendN(t, c, s, 0, 5)
		createStream(t, c, s, g, esdb.Start{}, nil)
		sub := subscribe(t, c, s, g, 2)
		a, b := sub.next(t), sub.next(t)
		eventually(t, "two in flight, no free slot", func() (bool, string) {
			i := info(t, c, s, g)
			if len(i.Connections) != 1 {
				return false, "connections"
			}
			return i.Connections[0].InFlightMessages == 2 && i.Connections[0].AvailableSlots == 0, ""
		})
		assert.Empty(t, sub.events, "a third event beyond the buffer size")
		sub.ack(t, a)
		third := sub.next(t)
		assert.Equal(t, uint64(2), third.Event.OriginalEvent().EventNumber)
		sub.nack(t, esdb.NackActionSkip, "skip", b)
		assert.Equal(t, uint64(3), sub.next(t).Event.OriginalEvent().EventNumber)
	})

	t.Run("nack retry comes back with a higher retry count and parks at the budget", func(t *testing.T) {
		s, g := uniq("s"), uniq("g")
		appendN(t, c, s, 0, 1)
		createStream(t, c, s, g, esdb.Start{}, func(st *esdb.PersistentSubscriptionSettings) { st.MaxRetryCount = 2 })
		sub := subscribe(t, c, s, g, 10)
		for want := 0; want <= 2; want++ {
			ev := sub.next(t)
			require.Equal(t, want, ev.RetryCount)
			sub.nack(t, esdb.NackActionRetry, "again", ev)
		}
		parked := "$persistentsubscription-" + s + "::" + g + "-parked"
		var links []*esdb.ResolvedEvent
		eventually(t, "parked", func() (bool, string) { links = readStream(t, c, parked); return len(links) == 1, "" })
		link := links[0].Event
		assert.Equal(t, "$>", link.EventType)
		assert.Equal(t, "0@"+s, string(link.Data))
		var md struct {
			Added                   string
			Reason                  string
			SubscriptionEventNumber int64
		}
		require.NoError(t, json.Unmarshal(link.UserMetadata, &md))
		assert.Equal(t, "Reached retry count of 2", md.Reason)
		assert.NotEmpty(t, md.Added)
		eventually(t, "parked count 1", func() (bool, string) {
			return info(t, c, s, g).Stats.ParkedMessagesCount == 1, ""
		})
	})

	t.Run("nack park keeps the reason; stop is ignored", func(t *testing.T) {
		s, g := uniq("s"), uniq("g")
		appendN(t, c, s, 0, 2)
		createStream(t, c, s, g, esdb.Start{}, nil)
		sub := subscribe(t, c, s, g, 10)
		a, b := sub.next(t), sub.next(t)
		sub.nack(t, esdb.NackActionPark, "poison", a)
		sub.nack(t, esdb.NackActionStop, "stop", b)
		parked := "$persistentsubscription-" + s + "::" + g + "-parked"
		var links []*esdb.ResolvedEvent
		eventually(t, "parked", func() (bool, string) { links = readStream(t, c, parked); return len(links) == 1, "" })
		assert.Contains(t, string(links[0].Event.UserMetadata), `Client explicitly NAK'ed message.\npoison`)
		i := info(t, c, s, g)
		assert.Equal(t, int64(1), i.Connections[0].InFlightMessages, "stop leaves the message in flight")
	})

	t.Run("message not acked within the timeout is redelivered", func(t *testing.T) {
		s, g := uniq("s"), uniq("g")
		appendN(t, c, s, 0, 1)
		createStream(t, c, s, g, esdb.Start{}, func(st *esdb.PersistentSubscriptionSettings) { st.MessageTimeout = 0 })
		sub := subscribe(t, c, s, g, 10)
		first := sub.next(t)
		assert.Equal(t, 0, first.RetryCount)
		again := sub.next(t)
		assert.Equal(t, first.Event.OriginalEvent().EventID, again.Event.OriginalEvent().EventID)
		assert.Equal(t, 1, again.RetryCount)
		sub.ack(t, again)
	})

	t.Run("a consumer that disconnects loses nothing", func(t *testing.T) {
		s, g := uniq("s"), uniq("g")
		appendN(t, c, s, 0, 5)
		createStream(t, c, s, g, esdb.Start{}, nil)
		a := subscribe(t, c, s, g, 10)
		for range 5 {
			a.next(t)
		}
		require.NoError(t, a.ps.Close())
		b := subscribe(t, c, s, g, 10)
		var got []uint64
		for range 5 {
			ev := b.next(t)
			assert.Equal(t, 1, ev.RetryCount)
			got = append(got, ev.Event.OriginalEvent().EventNumber)
			b.ack(t, ev)
		}
		assert.Equal(t, []uint64{0, 1, 2, 3, 4}, got)
	})

	t.Run("max subscriber count", func(t *testing.T) {
		s, g := uniq("s"), uniq("g")
		createStream(t, c, s, g, esdb.Start{}, func(st *esdb.PersistentSubscriptionSettings) { st.MaxSubscriberCount = 1 })
		subscribe(t, c, s, g, 10)
		_, err := subscribeErr(c, s, g, 10)
		require.Error(t, err)
	})

	t.Run("update drops the consumers", func(t *testing.T) {
		s, g := uniq("s"), uniq("g")
		createStream(t, c, s, g, esdb.Start{}, nil)
		sub := subscribe(t, c, s, g, 10)
		require.NoError(t, c.UpdatePersistentSubscription(t.Context(), s, g, esdb.PersistentStreamSubscriptionOptions{Settings: settings(nil)}))
		err := sub.waitDropped(t)
		assert.Contains(t, err.Error(), "Canceled")
	})

	t.Run("restart subsystem drops consumers and resumes", func(t *testing.T) {
		s, g := uniq("s"), uniq("g")
		appendN(t, c, s, 0, 2)
		createStream(t, c, s, g, esdb.Start{}, nil)
		sub := subscribe(t, c, s, g, 10)
		sub.ack(t, sub.next(t))
		sub.next(t) // not acked
		require.NoError(t, c.RestartPersistentSubscriptionSubsystem(t.Context(), esdb.RestartPersistentSubscriptionSubsystemOptions{}))
		sub.waitDropped(t)
		sub2 := subscribe(t, c, s, g, 10)
		assert.Equal(t, uint64(1), sub2.next(t).Event.OriginalEvent().EventNumber)
	})
}

func TestStrategies(t *testing.T) {
	_, c := startNode(t)

	t.Run("round robin shares the load", func(t *testing.T) {
		s, g := uniq("s"), uniq("g")
		createStream(t, c, s, g, esdb.Start{}, nil)
		a, b := subscribe(t, c, s, g, 10), subscribe(t, c, s, g, 10)
		appendN(t, c, s, 0, 20)
		seen := map[uint64]int{}
		counts := [2]int{}
		for len(seen) < 20 {
			select {
			case ev := <-a.events:
				seen[ev.Event.OriginalEvent().EventNumber]++
				counts[0]++
				a.ack(t, ev)
			case ev := <-b.events:
				seen[ev.Event.OriginalEvent().EventNumber]++
				counts[1]++
				b.ack(t, ev)
			case <-t.Context().Done():
				t.Fatal("context done")
			}
		}
		assert.Equal(t, 10, counts[0])
		assert.Equal(t, 10, counts[1])
	})

	t.Run("dispatch to single fills the first consumer", func(t *testing.T) {
		s, g := uniq("s"), uniq("g")
		createStream(t, c, s, g, esdb.Start{}, func(st *esdb.PersistentSubscriptionSettings) {
			st.ConsumerStrategyName = esdb.ConsumerStrategyDispatchToSingle
		})
		a := subscribe(t, c, s, g, 10)
		eventually(t, "first connected", func() (bool, string) { return len(info(t, c, s, g).Connections) == 1, "" })
		b := subscribe(t, c, s, g, 10)
		eventually(t, "second connected", func() (bool, string) { return len(info(t, c, s, g).Connections) == 2, "" })
		appendN(t, c, s, 0, 15)
		for range 10 {
			a.next(t)
		}
		for range 5 {
			b.next(t) // a is full: the rest rotate to b
		}
	})

	t.Run("pinned keeps one stream on one consumer", func(t *testing.T) {
		prefix := uniq("pin") + "-"
		g := uniq("g")
		require.NoError(t, c.CreatePersistentSubscriptionToAll(t.Context(), g, esdb.PersistentAllSubscriptionOptions{
			StartFrom: esdb.End{},
			Filter:    &esdb.SubscriptionFilter{Type: esdb.StreamFilterType, Prefixes: []string{prefix}},
			Settings:  settings(func(st *esdb.PersistentSubscriptionSettings) { st.ConsumerStrategyName = esdb.ConsumerStrategyPinned }),
		}))
		a, b := subscribe(t, c, "$all", g, 100), subscribe(t, c, "$all", g, 100)
		eventually(t, "both connected", func() (bool, string) { return len(info(t, c, "$all", g).Connections) == 2, "" })
		for round := range 5 {
			for i := range 8 {
				appendN(t, c, prefix+string(rune('a'+i)), round, 1)
			}
		}
		owner := map[string]int{}
		total := 0
		for total < 40 {
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
			total++
			st := ev.Event.OriginalEvent().StreamID
			if prev, ok := owner[st]; ok {
				require.Equal(t, prev, who, "stream %s moved between consumers", st)
			}
			owner[st] = who
		}
		assert.Len(t, owner, 8)
	})
}

func TestReplayParked(t *testing.T) {
	_, c := startNode(t)

	park := func(t *testing.T, s, g string, n int) *consumer {
		appendN(t, c, s, 0, n)
		createStream(t, c, s, g, esdb.Start{}, nil)
		sub := subscribe(t, c, s, g, 10)
		for range n {
			sub.nack(t, esdb.NackActionPark, "test", sub.next(t))
		}
		eventually(t, "parked", func() (bool, string) {
			return info(t, c, s, g).Stats.ParkedMessagesCount == int64(n), ""
		})
		return sub
	}

	t.Run("replay brings parked messages back exactly once each", func(t *testing.T) {
		s, g := uniq("s"), uniq("g")
		sub := park(t, s, g, 3)
		require.NoError(t, c.ReplayParkedMessages(t.Context(), s, g, esdb.ReplayParkedMessagesOptions{}))
		var got []int
		for range 3 {
			ev := sub.next(t)
			require.NotNil(t, ev.Event.Link, "replayed with the parked link")
			assert.Equal(t, 0, ev.RetryCount)
			got = append(got, payloadN(t, ev))
			sub.ack(t, ev)
		}
		slices.Sort(got)
		assert.Equal(t, []int{0, 1, 2}, got)
		eventually(t, "parked stream truncated", func() (bool, string) {
			return info(t, c, s, g).Stats.ParkedMessagesCount == 0, ""
		})
		pmd, err := c.GetStreamMetadata(t.Context(), "$persistentsubscription-"+s+"::"+g+"-parked", esdb.ReadStreamOptions{})
		require.NoError(t, err)
		require.NotNil(t, pmd.TruncateBefore())
		assert.Equal(t, uint64(3), *pmd.TruncateBefore(), "$tb past the replayed entries")
		// A second replay finds nothing; a new event is the next delivery.
		require.NoError(t, c.ReplayParkedMessages(t.Context(), s, g, esdb.ReplayParkedMessagesOptions{}))
		appendN(t, c, s, 3, 1)
		assert.Equal(t, 3, payloadN(t, sub.next(t)))
	})

	t.Run("replay honours stopAt", func(t *testing.T) {
		s, g := uniq("s"), uniq("g")
		sub := park(t, s, g, 3)
		require.NoError(t, c.ReplayParkedMessages(t.Context(), s, g, esdb.ReplayParkedMessagesOptions{StopAt: 2}))
		for range 2 {
			ev := sub.next(t)
			assert.Less(t, payloadN(t, ev), 2)
			sub.ack(t, ev)
		}
		eventually(t, "one left parked", func() (bool, string) {
			n := info(t, c, s, g).Stats.ParkedMessagesCount
			return n == 1, ""
		})
	})

	t.Run("replay flows through the in-flight limit and parks again once", func(t *testing.T) {
		s, g := uniq("s"), uniq("g")
		sub := park(t, s, g, 4)
		require.NoError(t, sub.ps.Close())
		sub2 := subscribe(t, c, s, g, 1)
		require.NoError(t, c.ReplayParkedMessages(t.Context(), s, g, esdb.ReplayParkedMessagesOptions{}))
		first := sub2.next(t)
		eventually(t, "one in flight", func() (bool, string) {
			i := info(t, c, s, g)
			return len(i.Connections) == 1 && i.Connections[0].InFlightMessages == 1, ""
		})
		assert.Empty(t, sub2.events)
		sub2.nack(t, esdb.NackActionPark, "again", first)
		for range 3 {
			sub2.ack(t, sub2.next(t))
		}
		eventually(t, "only the re-parked one left", func() (bool, string) {
			return info(t, c, s, g).Stats.ParkedMessagesCount == 1, ""
		})
	})

	t.Run("$all group", func(t *testing.T) {
		prefix := uniq("rp") + "-"
		g := uniq("g")
		require.NoError(t, c.CreatePersistentSubscriptionToAll(t.Context(), g, esdb.PersistentAllSubscriptionOptions{
			StartFrom: esdb.End{},
			Filter:    &esdb.SubscriptionFilter{Type: esdb.StreamFilterType, Prefixes: []string{prefix}},
		}))
		sub := subscribe(t, c, "$all", g, 10)
		appendN(t, c, prefix+"x", 0, 2)
		for range 2 {
			sub.nack(t, esdb.NackActionPark, "p", sub.next(t))
		}
		eventually(t, "parked", func() (bool, string) { return info(t, c, "$all", g).Stats.ParkedMessagesCount == 2, "" })
		require.NoError(t, c.ReplayParkedMessagesToAll(t.Context(), g, esdb.ReplayParkedMessagesOptions{}))
		for range 2 {
			sub.ack(t, sub.next(t))
		}
	})
}

func TestAllFiltersAndLinks(t *testing.T) {
	_, c := startNode(t)

	t.Run("stream prefix and event type regex", func(t *testing.T) {
		prefix := uniq("flt") + "-"
		gs, ge := uniq("g"), uniq("g")
		require.NoError(t, c.CreatePersistentSubscriptionToAll(t.Context(), gs, esdb.PersistentAllSubscriptionOptions{
			StartFrom: esdb.End{},
			Filter:    &esdb.SubscriptionFilter{Type: esdb.StreamFilterType, Prefixes: []string{prefix + "yes"}},
		}))
		typ := "Typ" + strings.ReplaceAll(uniq("x"), "-", "")
		require.NoError(t, c.CreatePersistentSubscriptionToAll(t.Context(), ge, esdb.PersistentAllSubscriptionOptions{
			StartFrom: esdb.End{},
			Filter:    &esdb.SubscriptionFilter{Type: esdb.EventFilterType, Regex: "^" + typ + "$"},
		}))
		subS, subE := subscribe(t, c, "$all", gs, 10), subscribe(t, c, "$all", ge, 10)
		appendN(t, c, prefix+"no", 0, 3)
		appendN(t, c, prefix+"yes", 0, 2)
		_, err := c.AppendToStream(t.Context(), prefix+"no", esdb.AppendToStreamOptions{},
			esdb.EventData{EventType: typ, ContentType: esdb.ContentTypeJson, Data: []byte(`{"n":9}`)})
		require.NoError(t, err)
		for i := range 2 {
			ev := subS.next(t)
			assert.Equal(t, prefix+"yes", ev.Event.OriginalEvent().StreamID)
			assert.Equal(t, i, payloadN(t, ev))
			subS.ack(t, ev)
		}
		ev := subE.next(t)
		assert.Equal(t, typ, ev.Event.OriginalEvent().EventType)
		subE.ack(t, ev)
		// The filtered-out events still move the checkpoint.
		require.NoError(t, c.UpdatePersistentSubscriptionToAll(t.Context(), gs, esdb.PersistentAllSubscriptionOptions{
			Settings: settings(func(st *esdb.PersistentSubscriptionSettings) { st.CheckpointLowerBound, st.CheckpointUpperBound = 1, 1 }),
		}))
		subS.waitDropped(t)
		subS = subscribe(t, c, "$all", gs, 10)
		appendN(t, c, prefix+"yes", 2, 1)
		assert.Equal(t, 2, payloadN(t, subS.next(t)), "updated $all group keeps its filter and checkpoint")
	})

	t.Run("resolve links delivers the target with the link", func(t *testing.T) {
		target, links, g := uniq("target"), uniq("links"), uniq("g")
		appendN(t, c, target, 0, 1)
		_, err := c.AppendToStream(t.Context(), links, esdb.AppendToStreamOptions{},
			esdb.EventData{EventType: "$>", ContentType: esdb.ContentTypeBinary, Data: []byte("0@" + target)})
		require.NoError(t, err)
		createStream(t, c, links, g, esdb.Start{}, func(st *esdb.PersistentSubscriptionSettings) { st.ResolveLinkTos = true })
		sub := subscribe(t, c, links, g, 10)
		ev := sub.next(t)
		require.NotNil(t, ev.Event.Link)
		require.NotNil(t, ev.Event.Event)
		assert.Equal(t, target, ev.Event.Event.StreamID)
		assert.Equal(t, links, ev.Event.Link.StreamID)
		assert.Equal(t, ev.Event.Link.Position, ev.Event.Event.Position, "both carry the link's position")
		sub.ack(t, ev)
		eventually(t, "acked by the link id", func() (bool, string) {
			return info(t, c, links, g).Stats.TotalInFlightMessages == 0, ""
		})
	})
}

func TestInfoAndList(t *testing.T) {
	_, c := startNode(t)
	s, g := uniq("s"), uniq("g")
	appendN(t, c, s, 0, 10)
	createStream(t, c, s, g, esdb.Start{}, func(st *esdb.PersistentSubscriptionSettings) {
		st.CheckpointLowerBound, st.CheckpointUpperBound = 1, 1
		st.ExtraStatistics = true
	})
	sub := subscribe(t, c, s, g, 4)
	for range 3 {
		sub.ack(t, sub.next(t))
	}
	sub.next(t) // in flight
	sub.nack(t, esdb.NackActionPark, "x", sub.next(t))

	eventually(t, "figures", func() (bool, string) {
		i := info(t, c, s, g)
		st := i.Stats
		if len(i.Connections) != 1 || st.LastCheckpointedEventRevision == nil || st.LastKnownEventRevision == nil {
			return false, "not yet"
		}
		conn := i.Connections[0]
		ok := *st.LastCheckpointedEventRevision == 2 && *st.LastKnownEventRevision == 9 &&
			st.ParkedMessagesCount == 1 && conn.InFlightMessages == 4 && conn.AvailableSlots == 0 &&
			conn.TotalItemsProcessed == 3 && len(conn.ExtraStatistics) > 0 &&
			st.TotalInFlightMessages == 4 && i.Status == "Live" && conn.ConnectionName == "<unknown>"
		b, _ := json.Marshal(i)
		return ok, string(b)
	})
	i := info(t, c, s, g)
	assert.Equal(t, esdb.Start{}, i.Settings.StartFrom)
	assert.Equal(t, esdb.ConsumerStrategyRoundRobin, i.Settings.ConsumerStrategyName)

	gAll := uniq("g")
	require.NoError(t, c.CreatePersistentSubscriptionToAll(t.Context(), gAll, esdb.PersistentAllSubscriptionOptions{StartFrom: esdb.End{}}))
	ia := info(t, c, "$all", gAll)
	assert.Equal(t, "$all", ia.EventSource)
	assert.Equal(t, esdb.End{}, ia.Settings.StartFrom)

	all, err := c.ListAllPersistentSubscriptions(t.Context(), esdb.ListPersistentSubscriptionsOptions{})
	require.NoError(t, err)
	var keys []string
	for _, x := range all {
		keys = append(keys, x.EventSource+"::"+x.GroupName)
	}
	assert.Contains(t, keys, s+"::"+g)
	assert.Contains(t, keys, "$all::"+gAll)

	forStream, err := c.ListPersistentSubscriptionsForStream(t.Context(), s, esdb.ListPersistentSubscriptionsOptions{})
	require.NoError(t, err)
	require.Len(t, forStream, 1)
	assert.Equal(t, g, forStream[0].GroupName)

	toAll, err := c.ListPersistentSubscriptionsToAll(t.Context(), esdb.ListPersistentSubscriptionsOptions{})
	require.NoError(t, err)
	require.Len(t, toAll, 1)
	assert.Equal(t, gAll, toAll[0].GroupName)
}

func TestOwnStreams(t *testing.T) {
	_, c := startNode(t)
	s, g := uniq("s"), uniq("g")
	appendN(t, c, s, 0, 5)
	createStream(t, c, s, g, esdb.Start{}, func(st *esdb.PersistentSubscriptionSettings) { st.CheckpointLowerBound, st.CheckpointUpperBound = 1, 1 })
	sub := subscribe(t, c, s, g, 10)
	for range 5 {
		sub.ack(t, sub.next(t))
	}
	ck := "$persistentsubscription-" + s + "::" + g + "-checkpoint"
	eventually(t, "checkpoint at 4", func() (bool, string) {
		evs := readStream(t, c, ck)
		if len(evs) == 0 {
			return false, "none"
		}
		last := evs[len(evs)-1].Event
		return last.EventType == "$SubscriptionCheckpoint" && string(last.Data) == `"4"`, string(last.Data)
	})
	md, err := c.GetStreamMetadata(context.Background(), ck, esdb.ReadStreamOptions{})
	require.NoError(t, err)
	require.NotNil(t, md.MaxCount())
	assert.Equal(t, uint64(2), *md.MaxCount())

	cfg := readStream(t, c, "$persistentSubscriptionConfig")
	require.NotEmpty(t, cfg)
	last := cfg[len(cfg)-1].Event
	assert.Equal(t, "$PersistentConfig", last.EventType)
	assert.Contains(t, string(last.Data), `"Group":"`+g+`"`)
	cmd, err := c.GetStreamMetadata(context.Background(), "$persistentSubscriptionConfig", esdb.ReadStreamOptions{})
	require.NoError(t, err)
	require.NotNil(t, cmd.MaxCount())
	assert.Equal(t, uint64(2), *cmd.MaxCount())
}
