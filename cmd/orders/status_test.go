package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/orderstore/orders/aggregate"
	"github.com/orderstore/orders/cmd/orders/statusweb"
	"github.com/orderstore/orders/eventstore"
	"github.com/orderstore/orders/eventstore/esdbnode/esdbnodetest"
	"github.com/orderstore/orders/projections"
	"github.com/orderstore/orders/subscribers"
)

// TestHealthzStallsWhenAProjectionHandlerStops runs the real projections (real node, real
// SQLite, real persistent subscriptions) behind serve's status source, stops the handler
// of one projection, and watches /healthz turn unhealthy once that projection lags and
// makes no progress for StallAfter; then resumes it and watches /healthz turn healthy.
func TestHealthzStallsWhenAProjectionHandlerStops(t *testing.T) {
	const stalled = "order_summaries"
	srv := esdbnodetest.Start(t)

	// The gate: while blocked, the stalled projection's handler waits for release.
	var blocked atomic.Bool
	release := make(chan struct{})
	wrap := func(name string, h subscribers.BatchHandler) subscribers.BatchHandler {
		if name != stalled {
			return h
		}
		return func(ctx context.Context, evs []subscribers.Event) error {
			if blocked.Load() {
				select {
				case <-release:
				case <-ctx.Done():
					return ctx.Err()
				}
			}
			return h(ctx, evs)
		}
	}
	runner := runProjections(t, srv.ConnectionString(), projections.RunnerConfig{Wrap: wrap})

	src := &statusSource{runner: runner}
	status, err := statusweb.New(src, statusweb.Options{StallAfter: 500 * time.Millisecond})
	require.NoError(t, err)
	hs := httptest.NewServer(status)
	t.Cleanup(hs.Close)

	client := esdbnodetest.Client(t, srv)
	repo, err := eventstore.NewRepository(client, eventstore.RepositoryConfig{})
	require.NoError(t, err)
	order := func(i int) {
		t.Helper()
		id, now := uuid.NewString(), time.Now()
		md := eventstore.CommandMetadata(uuid.NewString(), "status-test")
		place := aggregate.PlaceOrder{
			Customer: fmt.Sprintf("stall%d@example.com", i),
			Lines:    []aggregate.Line{{SKU: "SKU-1", Quantity: 1, UnitPrice: 500}},
			Currency: "EUR",
		}
		_, err := repo.Execute(t.Context(), id, md, func(o *aggregate.Order) error { return o.Place(place, now) })
		require.NoError(t, err)
		_, err = repo.Execute(t.Context(), id, md, func(o *aggregate.Order) error { return o.Pay("ref-"+id, o.Total(), now) })
		require.NoError(t, err)
	}

	type report struct {
		Healthy     bool     `json:"healthy"`
		Reasons     []string `json:"reasons"`
		Subscribers []struct {
			Name    string `json:"name"`
			Lag     uint64 `json:"lag"`
			Stalled bool   `json:"stalled"`
		} `json:"subscribers"`
	}
	get := func() (int, report) {
		t.Helper()
		resp, err := http.Get(hs.URL + "/healthz")
		require.NoError(t, err)
		defer resp.Body.Close()
		sresp, err := http.Get(hs.URL + "/status.json")
		require.NoError(t, err)
		defer sresp.Body.Close()
		var rep report
		require.NoError(t, json.NewDecoder(sresp.Body).Decode(&rep))
		return resp.StatusCode, rep
	}
	// waitFor polls /healthz and /status.json until cond holds (there is no event to wait
	// on: stalling is the absence of progress over time).
	waitFor := func(what string, cond func(int, report) bool) report {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			code, rep := get()
			if cond(code, rep) {
				return rep
			}
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s; last: %d %+v", what, code, rep)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	caughtUp := func(code int, rep report) bool {
		if code != http.StatusOK || len(rep.Subscribers) != 3 {
			return false
		}
		for _, s := range rep.Subscribers {
			if s.Lag != 0 {
				return false
			}
		}
		return true
	}

	for i := range 3 {
		order(i)
	}
	waitFor("caught up and healthy", caughtUp)

	blocked.Store(true)
	for i := 3; i < 6; i++ {
		order(i)
	}
	rep := waitFor("unhealthy with "+stalled+" stalled", func(code int, rep report) bool {
		if code != http.StatusServiceUnavailable {
			return false
		}
		for _, s := range rep.Subscribers {
			if s.Name == stalled {
				return s.Stalled && s.Lag > 0
			}
		}
		return false
	})
	for _, s := range rep.Subscribers {
		if s.Name != stalled {
			require.False(t, s.Stalled, "%s stalled too: %+v", s.Name, rep)
		}
	}
	require.NotEmpty(t, rep.Reasons)

	blocked.Store(false)
	close(release)
	waitFor("healthy again with no lag", caughtUp)
}

// runProjections runs the real projections (persistent subscriptions on the node at
// connString) into a fresh SQLite store until the test ends.
func runProjections(t *testing.T, connString string, cfg projections.RunnerConfig) *projections.Runner {
	t.Helper()
	store, err := projections.Open(t.Context(), filepath.Join(t.TempDir(), "readmodels.db"))
	require.NoError(t, err)
	t.Cleanup(func() { _ = store.Close() })
	runner, err := projections.NewRunner(store, subscribers.DialString(connString), cfg)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- runner.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
	return runner
}
