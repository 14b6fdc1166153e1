package contract

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"golang.org/x/sync/errgroup"
)

// TestRacingWritersAndSubscribers runs 8 concurrent writers (own streams with
// revision expectations, one shared stream with and without expectations)
// against 4 live subscribers: two to $all from the start, one to the shared
// stream from the start, one to $all from the end opened mid-way. At the end
// every subscriber must have seen exactly the committed events of its range,
// once each and in order, as ReadAll/ReadStream return them; every
// acknowledged append must be there and every rejected one absent.
func TestRacingWritersAndSubscribers(t *testing.T) {
	t.Parallel()
	tg := newTarget(t)
	c := tg.client
	const writers, appendsPerWriter = 8, 40
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)

	prefix := streamName("race")
	shared := prefix + "-shared"
	own := func(w, k int) string { return fmt.Sprintf("%s-w%d-%d", prefix, w, k) }

	type sub struct {
		name   string
		r      *subReader
		got    []*esdb.ResolvedEvent
		stream string // "" for $all
	}
	subAll := func(name string, from esdb.AllPosition) *sub {
		return &sub{name: name, r: subscribeAll(t, c, esdb.SubscribeToAllOptions{From: from})}
	}
	subs := []*sub{
		subAll("$all from start #1", esdb.Start{}),
		subAll("$all from start #2", esdb.Start{}),
		{name: "shared from start", stream: shared, r: subscribeStream(t, c, shared, esdb.SubscribeToStreamOptions{From: esdb.Start{}})},
	}

	// Writers.
	var (
		mu       sync.Mutex
		acked    = map[uuid.UUID]bool{} // id → appended (true) / rejected (false)
		progress atomic.Int64
		halfway  = make(chan struct{})
		once     sync.Once
	)
	record := func(evs []esdb.EventData, ok bool) {
		mu.Lock()
		defer mu.Unlock()
		for _, e := range evs {
			acked[e.EventID] = ok
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	var g errgroup.Group
	for w := range writers {
		g.Go(func() error {
			rng := rand.New(rand.NewPCG(seed, uint64(w)))
			next := map[string]esdb.ExpectedRevision{}
			for i := range appendsPerWriter {
				evs := events(1+rng.IntN(3), fmt.Sprintf("W%d", w))
				var s string
				var exp esdb.ExpectedRevision
				switch rng.IntN(4) {
				case 0:
					s, exp = shared, esdb.Any{}
				case 1:
					// Shared stream with a revision expectation taken from a
					// read: races with the others, so WEV is expected.
					s = shared
					last, err := lastOf(ctx, c, shared)
					if err != nil {
						return fmt.Errorf("writer %d read %s: %w", w, shared, err)
					}
					exp = esdb.NoStream{}
					if len(last) == 1 {
						exp = esdb.Revision(last[0].OriginalEvent().EventNumber)
					}
				default:
					s = own(w, rng.IntN(2))
					exp = next[s]
					if exp == nil {
						exp = esdb.NoStream{}
					}
				}
				res, err := c.AppendToStream(ctx, s, esdb.AppendToStreamOptions{ExpectedRevision: exp}, evs...)
				switch {
				case err == nil:
					record(evs, true)
					if s != shared {
						next[s] = esdb.Revision(res.NextExpectedVersion)
					}
				case code(err) == esdb.ErrorCodeWrongExpectedVersion && s == shared:
					record(evs, false)
				default:
					return fmt.Errorf("writer %d append %d to %s: %w", w, i, s, err)
				}
				if progress.Add(1) == writers*appendsPerWriter/2 {
					once.Do(func() { close(halfway) })
				}
			}
			return nil
		})
	}

	// The late $all subscriber starts mid-way.
	select {
	case <-halfway:
	case <-ctx.Done():
		t.Fatal("writers made no progress")
	}
	beforeLate := lastPosition(t, c)
	late := subAll("$all from end, mid-way", esdb.End{})
	subs = append(subs, late)
	require.NoError(t, g.Wait())

	// A sentinel on the shared stream marks the end of every range.
	sentinel := jsonEvent("Sentinel", `{}`)
	end := appendOK(t, c, shared, esdb.Any{}, sentinel)

	var cg errgroup.Group
	for _, s := range subs {
		cg.Go(func() error {
			deadline := time.After(60 * time.Second)
			for {
				select {
				case ev, ok := <-s.r.ch:
					if !ok || ev.SubscriptionDropped != nil {
						return fmt.Errorf("%s dropped: %v", s.name, ev)
					}
					if ev.EventAppeared == nil {
						continue
					}
					s.got = append(s.got, ev.EventAppeared)
					if ev.EventAppeared.OriginalEvent().EventID == sentinel.EventID {
						return nil
					}
				case <-deadline:
					return fmt.Errorf("%s: sentinel not seen after %d events", s.name, len(s.got))
				}
			}
		})
	}
	require.NoError(t, cg.Wait())

	allEvents := readAllOK(t, c, esdb.ReadAllOptions{From: esdb.Start{}}, 10_000_000)
	var upToEnd []*esdb.ResolvedEvent
	for _, e := range allEvents {
		if e.OriginalEvent().Position.Commit > end.CommitPosition {
			break
		}
		upToEnd = append(upToEnd, e)
	}
	requireIncreasing(t, upToEnd)
	sharedEvents := readStreamOK(t, c, shared, esdb.ReadStreamOptions{}, 1_000_000)

	t.Run("acknowledged appends are committed, rejected ones are not", func(t *testing.T) {
		present := map[uuid.UUID]int{}
		for _, e := range upToEnd {
			present[e.OriginalEvent().EventID]++
		}
		nAcked := 0
		for id, ok := range acked {
			if ok {
				nAcked++
				require.Equal(t, 1, present[id], "acknowledged event %s", id)
			} else {
				require.Zero(t, present[id], "rejected event %s", id)
			}
		}
		t.Logf("%d events acknowledged, %d rejected by WEV, %d in $all up to the sentinel", nAcked, len(acked)-nAcked, len(upToEnd))
	})

	for _, s := range subs {
		t.Run(s.name, func(t *testing.T) {
			switch {
			case s.stream != "":
				require.Equal(t, ids(sharedEvents), ids(s.got))
				for i, e := range s.got {
					require.Equal(t, uint64(i), e.OriginalEvent().EventNumber)
				}
			case s == late:
				require.NotEmpty(t, s.got)
				first := s.got[0].OriginalEvent().Position.Commit
				require.Greater(t, first, beforeLate.Commit, "from end delivers nothing committed before the subscription")
				var want []*esdb.ResolvedEvent
				for _, e := range upToEnd {
					if e.OriginalEvent().Position.Commit >= first {
						want = append(want, e)
					}
				}
				require.Equal(t, ids(want), ids(s.got), "a contiguous suffix of $all")
				require.Equal(t, positions(want), positions(s.got))
			default:
				want, got := upToEnd, s.got
				if tg.external {
					want, got = ofPrefix(want, prefix), ofPrefix(got, prefix)
				}
				require.Equal(t, ids(want), ids(got))
				require.Equal(t, positions(want), positions(got))
			}
		})
	}
}

// ofPrefix keeps the events of streams starting with prefix.
func ofPrefix(evs []*esdb.ResolvedEvent, prefix string) []*esdb.ResolvedEvent {
	var out []*esdb.ResolvedEvent
	for _, e := range evs {
		if len(e.OriginalEvent().StreamID) >= len(prefix) && e.OriginalEvent().StreamID[:len(prefix)] == prefix {
			out = append(out, e)
		}
	}
	return out
}

// lastOf reads the last event of a stream (none if the stream is absent); it
// does not touch testing.T, so writers can call it from their goroutines.
func lastOf(ctx context.Context, c *esdb.Client, s string) ([]*esdb.ResolvedEvent, error) {
	rs, err := c.ReadStream(ctx, s, esdb.ReadStreamOptions{Direction: esdb.Backwards, From: esdb.End{}}, 1)
	if err != nil {
		return nil, err
	}
	evs, err := drain(rs)
	if code(err) == esdb.ErrorCodeResourceNotFound {
		return nil, nil
	}
	return evs, err
}
