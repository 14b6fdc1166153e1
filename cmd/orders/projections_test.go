package main

import (
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/orderstore/orders/projections"
)

type statusOut struct {
	Projections []projections.ProjectionStatus `json:"projections"`
}

func lags(t *testing.T, url, db string) map[string]int64 {
	t.Helper()
	var st statusOut
	ok(t, &st, "--esdb", url, "projections", "status", "--db", db)
	require.Len(t, st.Projections, 3)
	out := map[string]int64{}
	for _, p := range st.Projections {
		out[p.Name] = p.Lag
	}
	return out
}

// TestServeProjectionsCLI: serve runs the projections and the HTTP server; list and
// projections status read them; the lag is 0 when caught up, grows while serve is stopped,
// and a rebuild from zero catches up again.
func TestServeProjectionsCLI(t *testing.T) {
	n := startNode(t)
	dir := t.TempDir()
	db := filepath.Join(dir, "readmodels.db")
	d := startDaemon(t, "serve", "--esdb", n.url, "--data", dir, "--http", "127.0.0.1:0")

	httpAddr := d.httpAddr(t)

	p1, p2 := place(t, n.url), place(t, n.url)
	r := cli(t, "--esdb", n.url, "pay", p1.ID)
	require.Equal(t, 0, r.code, r.stderr)

	caughtUp := func() {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for time.Now().Before(deadline) {
			l := lags(t, n.url, db)
			if l[projections.OrderSummaries] == 0 && l[projections.CustomerOrders] == 0 && l[projections.DailyRevenue] == 0 {
				return
			}
			time.Sleep(50 * time.Millisecond) // polling the status: no event to wait on
		}
		t.Fatalf("projections not caught up: %v", lags(t, n.url, db))
	}
	caughtUp()

	var list struct {
		Orders []listOutput `json:"orders"`
	}
	ok(t, &list, "list", "--db", db)
	require.Len(t, list.Orders, 2)
	ok(t, &list, "list", "--db", db, "--status", "paid")
	require.Len(t, list.Orders, 1)
	require.Equal(t, p1.ID, list.Orders[0].ID)
	ok(t, &list, "list", "--db", db, "--customer", "nobody@example.com")
	require.Empty(t, list.Orders)
	r = cli(t, "list", "--db", db)
	require.Equal(t, 0, r.code, r.stderr)
	require.Contains(t, r.stdout, p2.ID)

	resp, err := http.Get("http://" + httpAddr + "/healthz")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	resp, err = http.Get("http://" + httpAddr + "/status")
	require.NoError(t, err)
	var web struct {
		Projections []projections.LiveStatus `json:"projections"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&web))
	resp.Body.Close()
	require.Len(t, web.Projections, 3)
	require.EqualValues(t, 0, web.Projections[0].Lag)

	require.Equal(t, 0, d.stop(t, syscall.SIGTERM), "stderr: %s", d.stderr)

	// Stopped: new orders make the lag grow.
	place(t, n.url)
	place(t, n.url)
	for name, lag := range lags(t, n.url, db) {
		require.EqualValues(t, 2, lag, "lag of %s with serve stopped", name)
	}

	// A rebuild from zero catches up.
	r = cli(t, "--esdb", n.url, "projections", "rebuild", "--all", "--db", db)
	require.Equal(t, 0, r.code, r.stderr)
	require.Contains(t, r.stdout, "rebuilt order_summaries, customer_orders, daily_revenue")
	for name, lag := range lags(t, n.url, db) {
		require.EqualValues(t, 0, lag, "lag of %s after the rebuild", name)
	}
	ok(t, &list, "list", "--db", db)
	require.Len(t, list.Orders, 4)

	// Usage errors.
	for _, args := range [][]string{
		{"projections", "rebuild", "--db", db},
		{"projections", "rebuild", "nope", "--db", db},
		{"projections", "rebuild", "order_summaries", "--all", "--db", db},
		{"list", "--status", "lost", "--db", db},
		{"projections", "frobnicate"},
	} {
		r := cli(t, append([]string{"--esdb", n.url}, args...)...)
		require.Equal(t, 2, r.code, "%v: %s", args, r.stderr)
		require.Equal(t, 1, strings.Count(r.stderr, "\n"), r.stderr)
	}
	r = cli(t, "list", "--db", filepath.Join(t.TempDir(), "missing.db"))
	require.Equal(t, 1, r.code, r.stderr)
	require.Contains(t, r.stderr, "no read-model database")
}
