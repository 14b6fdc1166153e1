package main

import (
	"database/sql"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestProjectionsVerify: verify runs while serve runs and finds the read models equal to a
// replay of the log (exit 0); a row changed behind the projections' back is printed and
// the exit status is 1; a bad argument is a usage error.
func TestProjectionsVerify(t *testing.T) {
	n := startNode(t)
	dir := t.TempDir()
	db := filepath.Join(dir, "readmodels.db")
	d := startDaemon(t, "serve", "--esdb", n.url, "--data", dir, "--http", "127.0.0.1:0")

	p1, _ := place(t, n.url), place(t, n.url)
	r := cli(t, "--esdb", n.url, "pay", p1.ID)
	require.Equal(t, 0, r.code, r.stderr)

	// serve keeps running: verify waits until the projections applied what it read.
	r = cli(t, "--esdb", n.url, "projections", "verify", "--all", "--db", db)
	require.Equal(t, 0, r.code, "stdout: %s\nstderr: %s", r.stdout, r.stderr)
	require.Contains(t, r.stdout, "verified order_summaries, customer_orders, daily_revenue")
	require.Contains(t, r.stdout, "(2 orders)")

	require.Equal(t, 0, d.stop(t, syscall.SIGTERM), "stderr: %s", d.stderr)
	raw, err := sql.Open("sqlite", "file:"+db+"?_pragma=busy_timeout(10000)")
	require.NoError(t, err)
	_, err = raw.ExecContext(t.Context(), "UPDATE order_summaries SET status = 'shipped' WHERE order_id = ?", p1.ID)
	require.NoError(t, err)
	require.NoError(t, raw.Close())

	r = cli(t, "--esdb", n.url, "projections", "verify", "order_summaries", "--db", db)
	require.Equal(t, 1, r.code, "stdout: %s\nstderr: %s", r.stdout, r.stderr)
	require.Contains(t, r.stdout, "order_summaries "+p1.ID+": status: got \"shipped\", want \"paid\"")
	require.Equal(t, 1, strings.Count(r.stderr, "\n"), r.stderr)
	require.Contains(t, r.stderr, "1 row(s) differ")

	// Another projection is not affected.
	r = cli(t, "--esdb", n.url, "projections", "verify", "customer_orders", "--db", db)
	require.Equal(t, 0, r.code, "stdout: %s\nstderr: %s", r.stdout, r.stderr)

	for _, args := range [][]string{
		{"projections", "verify", "--db", db},
		{"projections", "verify", "nope", "--db", db},
		{"projections", "verify", "--all", "--wait", "0s", "--db", db},
	} {
		r := cli(t, append([]string{"--esdb", n.url}, args...)...)
		require.Equal(t, 2, r.code, "%v: %s", args, r.stderr)
		require.Equal(t, 1, strings.Count(r.stderr, "\n"), r.stderr)
	}
}
