package subscribers_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/uuid"

	"github.com/orderstore/orders/eventstore/esdbnode/esdbnodetest"
	"github.com/orderstore/orders/subscribers"
)

// okHandler records every event and succeeds.
func okHandler(r *recorder) subscribers.Handler {
	return func(_ context.Context, ev subscribers.Event) error {
		r.record([]subscribers.Event{ev}, true)
		return nil
	}
}

func mustNew(t *testing.T, dial subscribers.Dial, cfg subscribers.Config, h subscribers.Handler) *subscribers.Consumer {
	t.Helper()
	c, err := subscribers.New(dial, cfg, h)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}

func groupInfo(t *testing.T, client *esdb.Client, g subscribers.Group) *esdb.PersistentSubscriptionInfo {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	var info *esdb.PersistentSubscriptionInfo
	var err error
	if g.Stream == "" {
		info, err = client.GetPersistentSubscriptionInfoToAll(ctx, g.Name, esdb.GetPersistentSubscriptionOptions{})
	} else {
		info, err = client.GetPersistentSubscriptionInfo(ctx, g.Stream, g.Name, esdb.GetPersistentSubscriptionOptions{})
	}
	if err != nil {
		t.Fatalf("group info %s: %v", g.Key(), err)
	}
	return info
}

func checkOnce(t *testing.T, ok map[uuid.UUID]int, ids []uuid.UUID) {
	t.Helper()
	if len(ok) != len(ids) {
		t.Errorf("handled %d distinct events, want %d", len(ok), len(ids))
	}
	for i, id := range ids {
		if ok[id] != 1 {
			t.Errorf("event %d (%s) handled %d times, want 1", i, id, ok[id])
		}
	}
}

func TestConsumerHandlesEveryEventOnce(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		group subscribers.Group
		// appends events and returns the ids the group must deliver
		write func(t *testing.T, client *esdb.Client) []uuid.UUID
	}{
		{
			name:  "stream group",
			group: subscribers.Group{Name: "g1", Stream: "order-1"},
			write: func(t *testing.T, client *esdb.Client) []uuid.UUID {
				appendN(t, client, "order-2", "Other", 3)
				return appendN(t, client, "order-1", "Test", 10)
			},
		},
		{
			name:  "filtered $all group",
			group: subscribers.Group{Name: "g2", StreamPrefixes: []string{"order-"}},
			write: func(t *testing.T, client *esdb.Client) []uuid.UUID {
				a := appendN(t, client, "order-a", "Test", 5)
				appendN(t, client, "other-a", "Test", 5)
				b := appendN(t, client, "order-b", "Test", 5)
				return append(a, b...)
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := esdbnodetest.Start(t)
			client := esdbnodetest.Client(t, srv)
			want := tt.write(t, client) // before the group exists: it starts from the beginning
			r := newRecorder()
			c := mustNew(t, dialNode(srv), fast(tt.group), okHandler(r))
			stop := run(t, c)
			r.wait(t, 20*time.Second, "history handled", func() bool { return r.allHandled(want) })

			// The group was created with the consumer's defaults.
			info := groupInfo(t, client, tt.group)
			if got, want := info.Settings.MaxRetryCount, int32(subscribers.DefaultSettings(tt.group.Stream, 3).MaxRetryCount); got != want {
				t.Errorf("created group MaxRetryCount = %d, want %d", got, want)
			}

			// Live events.
			live := appendN(t, client, streamFor(tt.group), "Test", 5)
			want = append(want, live...)
			r.wait(t, 20*time.Second, "live handled", func() bool { return r.allHandled(want) })
			eventually(t, 10*time.Second, "acks counted", func() bool { return c.Stats().Handled == uint64(len(want)) })
			stop()

			_, ok, _ := r.snapshot()
			checkOnce(t, ok, want)
			for _, ev := range r.events {
				if !strings.HasPrefix(ev.Stream, "order-") {
					t.Errorf("delivered event of stream %q", ev.Stream)
				}
			}
			st := c.Stats()
			var maxPos uint64
			for _, ev := range r.events {
				maxPos = max(maxPos, ev.Position)
			}
			if st.Group != tt.group.Key() || st.Connected || st.Connects != 1 || st.Handled != uint64(len(want)) ||
				st.Retried != 0 || st.Parked != 0 || st.LastPosition != maxPos || maxPos == 0 || st.LastHandledAt.IsZero() {
				t.Errorf("Stats = %+v; want group %s, disconnected, 1 connect, %d handled, last position %d",
					st, tt.group.Key(), len(want), maxPos)
			}
		})
	}
}

func streamFor(g subscribers.Group) string {
	if g.Stream != "" {
		return g.Stream
	}
	return "order-live"
}

func TestConsumerReusesExistingGroup(t *testing.T) {
	t.Parallel()
	srv := esdbnodetest.Start(t)
	client := esdbnodetest.Client(t, srv)
	g := subscribers.Group{Name: "existing", Stream: "order-9"}
	settings := esdb.SubscriptionSettingsDefault()
	settings.MaxRetryCount = 7
	err := client.CreatePersistentSubscription(t.Context(), g.Stream, g.Name,
		esdb.PersistentStreamSubscriptionOptions{Settings: &settings, StartFrom: esdb.Start{}})
	if err != nil {
		t.Fatal(err)
	}
	ids := appendN(t, client, g.Stream, "Test", 5)
	r := newRecorder()
	c := mustNew(t, dialNode(srv), fast(g), okHandler(r))
	stop := run(t, c)
	r.wait(t, 20*time.Second, "events handled", func() bool { return r.allHandled(ids) })
	stop()
	if got := groupInfo(t, client, g).Settings.MaxRetryCount; got != 7 {
		t.Errorf("existing group's MaxRetryCount = %d, want it kept at 7", got)
	}
	if st := c.Stats(); st.LastError != "" {
		t.Errorf("LastError = %q, want none (AlreadyExists is fine)", st.LastError)
	}
}

func TestConsumerRetriesAndParks(t *testing.T) {
	t.Parallel()
	boom := errors.New("boom")
	tests := []struct {
		name        string
		maxAttempts int
		fail        func(ev subscribers.Event) error // for the poison event
		wantCalls   []int                            // RetryCount of each call of the poison event
		wantReason  string
		wantRetried uint64
	}{
		{
			name:        "retried then parked after the budget",
			maxAttempts: 3,
			fail:        func(subscribers.Event) error { return boom },
			wantCalls:   []int{0, 1, 2},
			wantReason:  "attempt 3 of 3: boom",
			wantRetried: 2,
		},
		{
			name:        "permanent parks at once",
			maxAttempts: 3,
			fail: func(subscribers.Event) error {
				return fmt.Errorf("decode: %w", subscribers.Permanent(errors.New("bad data")))
			},
			wantCalls:  []int{0},
			wantReason: "decode: bad data",
		},
		{
			name:        "panic is an error",
			maxAttempts: 2,
			fail:        func(subscribers.Event) error { panic("kaboom") },
			wantCalls:   []int{0, 1},
			wantReason:  "attempt 2 of 2: subscribers: handler panicked: kaboom",
			wantRetried: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := esdbnodetest.Start(t)
			client := esdbnodetest.Client(t, srv)
			g := subscribers.Group{Name: "retry", Stream: "order-p"}
			poison := appendN(t, client, g.Stream, "Poison", 1)[0]
			good := appendN(t, client, g.Stream, "Test", 10)

			r := newRecorder()
			h := func(_ context.Context, ev subscribers.Event) error {
				if ev.ID == poison {
					r.record([]subscribers.Event{ev}, false)
					return tt.fail(ev)
				}
				r.record([]subscribers.Event{ev}, true)
				return nil
			}
			cfg := fast(g)
			cfg.MaxAttempts = tt.maxAttempts
			// Long enough that the good events are all handled before the first retry.
			cfg.Backoff = func(attempt int) time.Duration { return time.Duration(attempt) * 300 * time.Millisecond }
			c := mustNew(t, dialNode(srv), cfg, h)
			stop := run(t, c)

			r.wait(t, 20*time.Second, "good events handled", func() bool { return r.allHandled(good) })
			eventually(t, 20*time.Second, "poison parked", func() bool { return c.Stats().Parked == 1 })
			eventually(t, 10*time.Second, "parked stream written", func() bool {
				return len(parkedReasons(t, client, g.ParkedStream())) == 1
			})
			reason := parkedReasons(t, client, g.ParkedStream())[0]
			if !strings.HasSuffix(reason, tt.wantReason) {
				t.Errorf("parked reason = %q, want it to end with %q", reason, tt.wantReason)
			}
			if n := groupInfo(t, client, g).Stats.ParkedMessagesCount; n != 1 {
				t.Errorf("group info parked count = %d, want 1", n)
			}
			stop()

			calls, ok, _ := r.snapshot()
			var retries []int
			firstRetry := -1
			lastGood := -1
			for i, ev := range calls {
				switch {
				case ev.ID == poison:
					retries = append(retries, ev.RetryCount)
					if ev.RetryCount > 0 && firstRetry < 0 {
						firstRetry = i
					}
				default:
					lastGood = i
				}
			}
			if !slices.Equal(retries, tt.wantCalls) {
				t.Errorf("poison delivered with retry counts %v, want %v", retries, tt.wantCalls)
			}
			if firstRetry >= 0 && lastGood > firstRetry {
				t.Errorf("good events waited for the poison's retry (last good call %d after first retry %d)", lastGood, firstRetry)
			}
			if ok[poison] != 0 {
				t.Errorf("poison counted as handled")
			}
			delete(ok, poison)
			checkOnce(t, ok, good)
			st := c.Stats()
			if st.Handled != uint64(len(good)) || st.Parked != 1 || st.Retried != tt.wantRetried || !strings.Contains(st.LastError, poison.String()) {
				t.Errorf("Stats = %+v; want %d handled, 1 parked, %d retried, LastError naming %s", st, len(good), tt.wantRetried, poison)
			}
		})
	}
}

func TestBatchConsumer(t *testing.T) {
	t.Parallel()
	t.Run("batches under load", func(t *testing.T) {
		t.Parallel()
		srv := esdbnodetest.Start(t)
		client := esdbnodetest.Client(t, srv)
		g := subscribers.Group{Name: "batch", Stream: "order-b"}
		var ids []uuid.UUID
		for range 4 {
			ids = append(ids, appendN(t, client, g.Stream, "Test", 100)...)
		}
		r := newRecorder()
		h := func(_ context.Context, evs []subscribers.Event) error {
			r.record(evs, true)
			return nil
		}
		cfg := fast(g)
		cfg.MaxBatch = 50
		c, err := subscribers.NewBatch(dialNode(srv), cfg, h)
		if err != nil {
			t.Fatal(err)
		}
		stop := run(t, c)
		r.wait(t, 30*time.Second, "all handled", func() bool { return r.allHandled(ids) })
		eventually(t, 10*time.Second, "acks counted", func() bool { return c.Stats().Handled == uint64(len(ids)) })
		stop()
		_, ok, batches := r.snapshot()
		checkOnce(t, ok, ids)
		if m := slices.Max(batches); m < 2 || m > 50 {
			t.Errorf("largest batch = %d, want 2..50 (batch sizes %v)", m, batches)
		}
	})

	t.Run("poison isolated", func(t *testing.T) {
		t.Parallel()
		srv := esdbnodetest.Start(t)
		client := esdbnodetest.Client(t, srv)
		g := subscribers.Group{Name: "batch-poison", Stream: "order-q"}
		good := appendN(t, client, g.Stream, "Test", 20)
		poison := appendN(t, client, g.Stream, "Poison", 1)[0]
		good = append(good, appendN(t, client, g.Stream, "Test", 20)...)

		r := newRecorder()
		var sizes []int
		mixed := false
		h := func(_ context.Context, evs []subscribers.Event) error {
			sizes = append(sizes, len(evs)) // the consumer calls its handler from one goroutine
			for _, ev := range evs {
				if ev.RetryCount > 0 && len(evs) > 1 {
					mixed = true // a redelivered event must come alone
				}
			}
			for _, ev := range evs {
				if ev.ID == poison {
					r.record(evs, false) // all or nothing: nothing applied
					return errors.New("poison in batch")
				}
			}
			r.record(evs, true)
			return nil
		}
		cfg := fast(g)
		cfg.MaxAttempts = 2
		c, err := subscribers.NewBatch(dialNode(srv), cfg, h)
		if err != nil {
			t.Fatal(err)
		}
		stop := run(t, c)
		r.wait(t, 20*time.Second, "good events handled", func() bool { return r.allHandled(good) })
		eventually(t, 20*time.Second, "poison parked", func() bool { return c.Stats().Parked == 1 })
		eventually(t, 10*time.Second, "parked stream written", func() bool {
			return len(parkedReasons(t, client, g.ParkedStream())) == 1
		})
		stop()
		_, ok, _ := r.snapshot()
		if ok[poison] != 0 {
			t.Errorf("poison applied")
		}
		delete(ok, poison)
		checkOnce(t, ok, good)
		if st := c.Stats(); st.Handled != uint64(len(good)) || st.Parked != 1 {
			t.Errorf("Stats = %+v; want %d handled, 1 parked", st, len(good))
		}
		if reason := parkedReasons(t, client, g.ParkedStream())[0]; !strings.HasSuffix(reason, "attempt 2 of 2: poison in batch") {
			t.Errorf("parked reason = %q", reason)
		}
		if mixed {
			t.Errorf("a redelivered event was batched with others (batch sizes %v)", sizes)
		}
		t.Logf("batch sizes: %v", sizes)
	})
}

// gate makes the handler stop at its n-th call until released, to act on the node or the
// network while an event is in the handler's hands.
type gate struct {
	n       int
	calls   int
	reached chan struct{}
	release chan struct{}
}

func newGate(n int) *gate {
	return &gate{n: n, reached: make(chan struct{}), release: make(chan struct{})}
}

// pass is called by the handler (from the consumer's one goroutine).
func (g *gate) pass(ctx context.Context) {
	g.calls++
	if g.calls != g.n {
		return
	}
	close(g.reached)
	select {
	case <-g.release:
	case <-ctx.Done():
	}
}

func TestConsumerReconnectsAfterNodeRestart(t *testing.T) {
	t.Parallel()
	addr, dir := esdbnodetest.FreeAddr(t), t.TempDir()
	srv := esdbnodetest.StartAt(t, addr, dir)
	writer := newClient(t, srv.ConnectionString())
	g := subscribers.Group{Name: "restart", StreamPrefixes: []string{"order-"}}
	before := appendN(t, writer, "order-r1", "Test", 30)

	r := newRecorder()
	gt := newGate(15)
	h := func(ctx context.Context, ev subscribers.Event) error {
		gt.pass(ctx)
		r.record([]subscribers.Event{ev}, true)
		return nil
	}
	c := mustNew(t, subscribers.DialString(srv.ConnectionString()), fast(g), h)
	stop := run(t, c)

	select {
	case <-gt.reached:
	case <-time.After(20 * time.Second):
		t.Fatal("consumer never reached its 15th event")
	}
	if err := srv.Close(); err != nil { // while the handler holds an event
		t.Fatalf("close node: %v", err)
	}
	close(gt.release)
	eventually(t, 10*time.Second, "consumer disconnected", func() bool { return !c.Stats().Connected })

	srv = esdbnodetest.StartAt(t, addr, dir)
	writer = newClient(t, srv.ConnectionString()) // the old client may be wedged (client bug)
	after := appendN(t, writer, "order-r2", "Test", 30)
	all := append(slices.Clone(before), after...)
	r.wait(t, 30*time.Second, "every event handled after the restart", func() bool { return r.allHandled(all) })
	stop()
	if st := c.Stats(); st.Connects < 2 || st.LastError == "" {
		t.Errorf("Stats = %+v; want at least 2 connects and the drop in LastError", st)
	}
}

func TestConsumerReconnectsAfterNetworkCut(t *testing.T) {
	t.Parallel()
	srv := esdbnodetest.Start(t)
	writer := esdbnodetest.Client(t, srv)
	px := startProxy(t, srv.Addr())
	g := subscribers.Group{Name: "cut", Stream: "order-c"}
	before := appendN(t, writer, g.Stream, "Test", 40)

	r := newRecorder()
	gt := newGate(10)
	h := func(ctx context.Context, ev subscribers.Event) error {
		gt.pass(ctx)
		r.record([]subscribers.Event{ev}, true)
		return nil
	}
	c := mustNew(t, subscribers.DialString("esdb://"+px.Addr()+"?tls=false"), fast(g), h)
	stop := run(t, c)
	select {
	case <-gt.reached:
	case <-time.After(20 * time.Second):
		t.Fatal("consumer never reached its 10th event")
	}
	if n := px.sever(); n == 0 {
		t.Fatal("no connection through the proxy to sever")
	}
	close(gt.release)
	after := appendN(t, writer, g.Stream, "Test", 20)
	all := append(slices.Clone(before), after...)
	r.wait(t, 30*time.Second, "every event handled after the cut", func() bool { return r.allHandled(all) })
	eventually(t, 10*time.Second, "reconnected", func() bool { return c.Stats().Connects >= 2 })
	stop()
}

func TestConsumerRejoinsAfterServerSideDrop(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		drop func(ctx context.Context, client *esdb.Client, g subscribers.Group) error
	}{
		{
			name: "group updated",
			drop: func(ctx context.Context, client *esdb.Client, g subscribers.Group) error {
				settings := subscribers.ClientSettings(subscribers.DefaultSettings(g.Stream, 3))
				settings.MessageTimeout = 20_000
				return client.UpdatePersistentSubscription(ctx, g.Stream, g.Name,
					esdb.PersistentStreamSubscriptionOptions{Settings: &settings, StartFrom: esdb.Start{}})
			},
		},
		{
			name: "subsystem restarted",
			drop: func(ctx context.Context, client *esdb.Client, _ subscribers.Group) error {
				return client.RestartPersistentSubscriptionSubsystem(ctx, esdb.RestartPersistentSubscriptionSubsystemOptions{})
			},
		},
		{
			name: "group deleted: created again",
			drop: func(ctx context.Context, client *esdb.Client, g subscribers.Group) error {
				return client.DeletePersistentSubscription(ctx, g.Stream, g.Name, esdb.DeletePersistentSubscriptionOptions{})
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := esdbnodetest.Start(t)
			client := esdbnodetest.Client(t, srv)
			g := subscribers.Group{Name: "drop", Stream: "order-d"}
			before := appendN(t, client, g.Stream, "Test", 5)
			r := newRecorder()
			c := mustNew(t, dialNode(srv), fast(g), okHandler(r))
			run(t, c)
			r.wait(t, 20*time.Second, "first events handled", func() bool { return r.allHandled(before) })
			if err := tt.drop(t.Context(), client, g); err != nil {
				t.Fatal(err)
			}
			eventually(t, 20*time.Second, "joined again", func() bool { st := c.Stats(); return st.Connects >= 2 && st.Connected })
			after := appendN(t, client, g.Stream, "Test", 5)
			r.wait(t, 20*time.Second, "later events handled", func() bool { return r.allHandled(after) })
		})
	}
}

func TestConsumerStops(t *testing.T) {
	t.Run("idle, no goroutine left", func(t *testing.T) {
		srv := esdbnodetest.Start(t)
		client := esdbnodetest.Client(t, srv)
		g := subscribers.Group{Name: "stop", Stream: "order-s"}
		ids := appendN(t, client, g.Stream, "Test", 3)
		// The group's own goroutines run in the node, in this process: create it first.
		settings := subscribers.ClientSettings(subscribers.DefaultSettings(g.Stream, 3))
		if err := client.CreatePersistentSubscription(t.Context(), g.Stream, g.Name,
			esdb.PersistentStreamSubscriptionOptions{Settings: &settings, StartFrom: esdb.Start{}}); err != nil {
			t.Fatal(err)
		}
		baseline := runtime.NumGoroutine()

		r := newRecorder()
		c := mustNew(t, dialNode(srv), fast(g), okHandler(r))
		stop := run(t, c)
		r.wait(t, 20*time.Second, "events handled", func() bool { return r.allHandled(ids) })
		started := time.Now()
		stop()
		if d := time.Since(started); d > 2*time.Second {
			t.Errorf("Run took %v to return after cancel", d)
		}
		if c.Stats().Connected {
			t.Error("Stats.Connected after Run returned")
		}
		// Polling with a deadline: goroutines exiting send no event.
		deadline := time.Now().Add(10 * time.Second)
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for runtime.NumGoroutine() > baseline {
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<20)
				buf = buf[:runtime.Stack(buf, true)]
				t.Fatalf("%d goroutines after Run returned, %d before it started:\n%s", runtime.NumGoroutine(), baseline, buf)
			}
			<-tick.C
		}
	})

	t.Run("handler in flight is left for redelivery", func(t *testing.T) {
		t.Parallel()
		srv := esdbnodetest.Start(t)
		client := esdbnodetest.Client(t, srv)
		g := subscribers.Group{Name: "inflight", Stream: "order-i"}
		id := appendN(t, client, g.Stream, "Test", 1)[0]

		entered := make(chan struct{})
		h := func(ctx context.Context, ev subscribers.Event) error {
			close(entered)
			<-ctx.Done()
			return ctx.Err()
		}
		c := mustNew(t, dialNode(srv), fast(g), h)
		stop := run(t, c)
		select {
		case <-entered:
		case <-time.After(20 * time.Second):
			t.Fatal("handler never called")
		}
		stop()
		if st := c.Stats(); st.Handled != 0 || st.Retried != 0 || st.Parked != 0 {
			t.Errorf("Stats = %+v; want nothing settled", st)
		}

		// The server re-queued it: a new consumer gets it again.
		r := newRecorder()
		c2 := mustNew(t, dialNode(srv), fast(g), okHandler(r))
		run(t, c2)
		r.wait(t, 20*time.Second, "redelivery", func() bool { return r.ok[id] == 1 })
		if rc := r.events[id].RetryCount; rc < 1 {
			t.Errorf("redelivered with retry count %d, want >= 1", rc)
		}
	})

	t.Run("while reconnecting", func(t *testing.T) {
		t.Parallel()
		addr := esdbnodetest.FreeAddr(t) // nothing listens there
		c := mustNew(t, subscribers.DialString("esdb://"+addr+"?tls=false"),
			fast(subscribers.Group{Name: "nobody"}), okHandler(newRecorder()))
		stop := run(t, c)
		eventually(t, 20*time.Second, "a failed connection", func() bool { return c.Stats().LastError != "" })
		started := time.Now()
		stop()
		// The client's discovery ignores contexts; against a refused port it gives up in
		// about a second.
		if d := time.Since(started); d > 5*time.Second {
			t.Errorf("Run took %v to return after cancel", d)
		}
		if st := c.Stats(); st.Connects != 0 || !strings.Contains(st.LastError, "subscribers: connection") {
			t.Errorf("Stats = %+v", st)
		}
	})
}

func TestRunErrors(t *testing.T) {
	t.Parallel()
	t.Run("dial error ends Run", func(t *testing.T) {
		c := mustNew(t, subscribers.DialString("nonsense://"), fast(subscribers.Group{Name: "g"}), okHandler(newRecorder()))
		err := c.Run(t.Context())
		if !errors.Is(err, subscribers.ErrDial) {
			t.Errorf("Run = %v, want ErrDial", err)
		}
	})
	t.Run("second concurrent Run", func(t *testing.T) {
		srv := esdbnodetest.Start(t)
		c := mustNew(t, dialNode(srv), fast(subscribers.Group{Name: "twice"}), okHandler(newRecorder()))
		run(t, c)
		eventually(t, 20*time.Second, "connected", func() bool { return c.Stats().Connected })
		if err := c.Run(t.Context()); !errors.Is(err, subscribers.ErrRunning) {
			t.Errorf("second Run = %v, want ErrRunning", err)
		}
	})
}
