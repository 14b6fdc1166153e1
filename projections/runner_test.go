package projections_test

import (
	"encoding/json"
	"errors"
	mrand "math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/orderstore/orders/eventstore/esdbnode/esdbnodetest"
	"github.com/orderstore/orders/internal/testutil/runtest"
	"github.com/orderstore/orders/projections"
	"github.com/orderstore/orders/subscribers"
)

func fastConsumer() subscribers.Config {
	return subscribers.Config{
		MaxAttempts: 50, // out-of-order events are retried, never parked, in these tests
		Backoff:     func(int) time.Duration { return 20 * time.Millisecond },
		Reconnect:   func(int) time.Duration { return 100 * time.Millisecond },
	}
}

// startRunner runs r until the returned stop is called (or the test ends).
func startRunner(t *testing.T, r *projections.Runner) (stop func()) {
	t.Helper()
	return runtest.Start(t, r.Run, 30*time.Second)
}

func TestRunnerLiveRebuildAndLag(t *testing.T) {
	for _, be := range backends() {
		t.Run(be.name, func(t *testing.T) {
			t.Parallel()
			rng := mrand.New(mrand.NewPCG(seed(t), 2))
			srv := esdbnodetest.Start(t)
			dial := dialer(srv.ConnectionString())
			liveURL := be.newURL(t)
			live := openStore(t, liveURL)
			runner, err := projections.NewRunner(live, dial, projections.RunnerConfig{Consumer: fastConsumer()})
			if err != nil {
				t.Fatal(err)
			}
			stop := startRunner(t, runner)
			cmd := &commander{dial: dial}
			t.Cleanup(cmd.close)
			ctx := t.Context()

			if err := runOrders(ctx, cmd, rng, 40, 4); err != nil {
				t.Fatal(err)
			}
			waitCaughtUp(t, ctx, live, dial, 60*time.Second)

			t.Run("live equals rebuild from zero", func(t *testing.T) {
				fresh := be.newURL(t)
				rebuildInto(t, fresh, dial)
				compareDumps(t, "rebuild", dump(t, fresh), "live", dump(t, liveURL))
			})

			t.Run("rebuild in tiny pieces", func(t *testing.T) {
				// Chunks of 7 events, rows written whenever 5 orders are cached, 5 rows per
				// transaction, 2 per insert statement: orders span chunks and flushes, so
				// later events find their rows in the shadows (read back, updated), the
				// totals add up across flushes, and inserts go through the prepared
				// statement of full chunks and the one-off statement of the rest.
				url := be.newURL(t)
				s := openStore(t, url)
				projections.SetRebuildSizes(s, 7, 5, 5, 2)
				client, err := dial()
				if err != nil {
					t.Fatal(err)
				}
				defer client.Close()
				if _, err := s.Rebuild(ctx, client, nil, nil); err != nil {
					t.Fatalf("rebuild: %v", err)
				}
				compareDumps(t, "rebuild in tiny pieces", dump(t, url), "live", dump(t, liveURL))
			})

			t.Run("http", func(t *testing.T) {
				h := runner.Handler()
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, httptest.NewRequest("GET", "/healthz", nil))
				if rec.Code != http.StatusOK {
					t.Errorf("/healthz = %d %s, want 200", rec.Code, rec.Body)
				}
				rec = httptest.NewRecorder()
				h.ServeHTTP(rec, httptest.NewRequest("GET", "/status", nil))
				var body struct {
					Projections []projections.LiveStatus `json:"projections"`
				}
				if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || rec.Code != 200 {
					t.Fatalf("/status = %d %s (%v)", rec.Code, rec.Body, err)
				}
				if len(body.Projections) != 3 {
					t.Fatalf("/status: %d projections, want 3", len(body.Projections))
				}
				for _, p := range body.Projections {
					if p.Lag != 0 || p.LogEvents == 0 || !p.Connected || p.Handled == 0 {
						t.Errorf("/status %s: %+v, want caught up and connected", p.Name, p)
					}
				}
			})

			t.Run("rebuild swaps in while serving", func(t *testing.T) {
				var wg sync.WaitGroup
				var werr error
				wg.Go(func() { werr = runOrders(ctx, cmd, rng, 30, 3) })
				client, err := dial()
				if err != nil {
					t.Fatal(err)
				}
				defer client.Close()
				var phases []string
				res, err := live.Rebuild(ctx, client, nil, func(p projections.Progress) {
					if len(phases) == 0 || phases[len(phases)-1] != p.Phase {
						phases = append(phases, p.Phase)
					}
				})
				if err != nil {
					t.Fatalf("rebuild: %v", err)
				}
				wg.Wait()
				if werr != nil {
					t.Fatal(werr)
				}
				if res.EventsApplied == 0 || phases[len(phases)-1] != "done" {
					t.Errorf("rebuild result %+v, phases %v", res, phases)
				}
				waitCaughtUp(t, ctx, live, dial, 60*time.Second)
				fresh := be.newURL(t)
				rebuildInto(t, fresh, dial)
				compareDumps(t, "rebuild", dump(t, fresh), "live after swap", dump(t, liveURL))
				migrated := be.newURL(t)
				openStore(t, migrated)
				want, got := secondaryIndexes(t, migrated), secondaryIndexes(t, liveURL)
				if len(want) == 0 || !slices.Equal(want, got) {
					t.Errorf("secondary indexes after the rebuild %q, after the migrations %q", got, want)
				}
				cps, err := live.Checkpoints(ctx)
				if err != nil {
					t.Fatal(err)
				}
				for _, c := range cps {
					if c.RebuiltAt.IsZero() {
						t.Errorf("%s: rebuilt_at not set", c.Name)
					}
				}
			})

			t.Run("lag grows when stopped and drops when restarted", func(t *testing.T) {
				stop()
				h := runner.Handler()
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, httptest.NewRequest("GET", "/healthz", nil))
				if rec.Code != http.StatusServiceUnavailable {
					t.Errorf("/healthz with consumers stopped = %d, want 503", rec.Code)
				}
				if err := runOrders(ctx, cmd, rng, 5, 1); err != nil {
					t.Fatal(err)
				}
				client, err := dial()
				if err != nil {
					t.Fatal(err)
				}
				defer client.Close()
				if _, err := live.CountLog(ctx, client); err != nil {
					t.Fatal(err)
				}
				st, err := live.Status(ctx)
				if err != nil {
					t.Fatal(err)
				}
				for _, s := range st {
					if s.Lag < 5 {
						t.Errorf("%s: lag %d with the consumers stopped after 5 new orders, want >= 5", s.Name, s.Lag)
					}
				}
				r2, err := projections.NewRunner(live, dial, projections.RunnerConfig{Consumer: fastConsumer()})
				if err != nil {
					t.Fatal(err)
				}
				startRunner(t, r2)
				for _, s := range waitCaughtUp(t, ctx, live, dial, 60*time.Second) {
					if s.Lag != 0 {
						t.Errorf("%s: lag %d after restart", s.Name, s.Lag)
					}
				}
			})
		})
	}
}

func TestRebuildUnknownProjection(t *testing.T) {
	t.Parallel()
	s := openStore(t, backends()[0].newURL(t))
	_, err := s.Rebuild(t.Context(), nil, []string{"nope"}, nil)
	if !errors.Is(err, projections.ErrUnknownProjection) {
		t.Errorf("Rebuild(nope) = %v, want ErrUnknownProjection", err)
	}
}
