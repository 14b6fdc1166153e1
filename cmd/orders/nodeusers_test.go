package main

import (
	"context"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/stretchr/testify/require"

	"github.com/orderstore/orders/eventstore/esdbnode/esdbnodetest"
)

// TestNodeUsersRoundTrip: a user added offline logs in from the official
// client; disabled through the running node's users API, its next call fails.
func TestNodeUsersRoundTrip(t *testing.T) {
	dir := t.TempDir()
	certs := esdbnodetest.NewCerts(t)

	r := cli(t, "node", "users", "add", "bob", "--password", "bob-pw", "--full-name", "Bob", "--data", dir)
	require.Equal(t, 0, r.code, "stderr: %s", r.stderr)
	require.Equal(t, "orders: user bob added\n", r.stdout)
	r = cli(t, "node", "users", "add", "bob", "--password", "x", "--data", dir)
	require.NotEqual(t, 0, r.code, "adding bob twice")
	require.Contains(t, r.stderr, "exists")

	d := startDaemon(t, "node", "--addr", "127.0.0.1:0", "--data", dir,
		"--certificate-file", certs.CertFile, "--certificate-private-key-file", certs.KeyFile,
		"--trusted-root-certificates-path", certs.RootsDir)
	addr, ok := strings.CutSuffix(strings.TrimPrefix(d.url, "esdb://"), "?tls=true")
	require.True(t, ok, "a secure node's ready line: %s", d.url)
	url := func(user, pw string) string {
		return "esdb://" + user + ":" + pw + "@" + addr + "?tls=true&tlsCAFile=" + certs.CAFile
	}

	bob := esdbnodetest.Dial(t, url("bob", "bob-pw"))
	appendAs := func(c *esdb.Client) error {
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		_, err := c.AppendToStream(ctx, "bob-notes", esdb.AppendToStreamOptions{},
			esdb.EventData{EventType: "Note", ContentType: esdb.ContentTypeJson, Data: []byte(`{}`)})
		return err
	}
	require.NoError(t, appendAs(bob))

	r = cli(t, "--esdb", url("admin", "changeit"), "node", "users", "disable", "bob")
	require.Equal(t, 0, r.code, "stderr: %s", r.stderr)
	err := appendAs(bob)
	esErr, ok := esdb.FromError(err)
	require.False(t, ok)
	require.Equal(t, esdb.ErrorCodeUnauthenticated, esErr.Code(), "%v", err)

	r = cli(t, "--esdb", url("admin", "changeit"), "node", "users", "list")
	require.Equal(t, 0, r.code, "stderr: %s", r.stderr)
	require.Contains(t, r.stdout, "bob\t\tBob (disabled)")
	require.Contains(t, r.stdout, "admin\t$admins\t")

	r = cli(t, "--esdb", url("bob", "bob-pw"), "node", "users", "enable", "bob")
	require.NotEqual(t, 0, r.code, "a disabled non-admin enabled itself")
	r = cli(t, "--esdb", url("admin", "changeit"), "node", "users", "enable", "bob")
	require.Equal(t, 0, r.code, "stderr: %s", r.stderr)
	require.NoError(t, appendAs(bob))

	r = cli(t, "node", "users", "list", "--data", dir)
	require.NotEqual(t, 0, r.code, "offline change of a running node's directory")
	require.True(t, strings.Contains(r.stderr, "--esdb"), "stderr: %s", r.stderr)

	require.Equal(t, 0, d.stop(t, syscall.SIGTERM), "stderr: %s", d.stderr)
}

// TestServeSecureEmbeddedNode: serve runs a secure embedded node when its connection string
// names the node with an administrator's credentials and TLS; its own clients use that
// string, so the projections apply what an order command (same string) appends. Without
// credentials, or without a connection string, it refuses with one line, exit 2, nothing
// started.
func TestServeSecureEmbeddedNode(t *testing.T) {
	certs := esdbnodetest.NewCerts(t)
	secure := []string{"--certificate-file", certs.CertFile, "--certificate-private-key-file", certs.KeyFile,
		"--trusted-root-certificates-path", certs.RootsDir}
	addr := esdbnodetest.FreeAddr(t)
	for _, c := range []struct {
		name, esdb, want string
	}{
		{"no connection string", "", "--esdb"},
		{"no credentials", "esdb://" + addr + "?tls=true&tlsCAFile=" + certs.CAFile, "no credentials"},
		{"tls=false", "esdb://admin:changeit@" + addr + "?tls=false", "tls=false"},
	} {
		args := []string{"serve", "--data", t.TempDir(), "--addr", addr, "--http", "127.0.0.1:0"}
		if c.esdb != "" {
			args = append([]string{"--esdb", c.esdb}, args...)
		}
		r := cli(t, append(args, secure...)...)
		require.Equal(t, 2, r.code, "%s: stderr: %s", c.name, r.stderr)
		require.Equal(t, 1, strings.Count(r.stderr, "\n"), "%s: stderr: %q", c.name, r.stderr)
		require.Contains(t, r.stderr, c.want, c.name)
	}

	url := "esdb://admin:changeit@" + addr + "?tls=true&tlsCAFile=" + certs.CAFile
	dir := t.TempDir()
	d := startDaemon(t, append([]string{"--esdb", url, "serve", "--data", dir, "--addr", addr, "--http", "127.0.0.1:0"}, secure...)...)
	require.Equal(t, "esdb://"+addr+"?tls=true", d.url)
	var p placed
	ok(t, &p, "--esdb", url, "place", "--customer", "ann@example.com", "--item", "TEA:1:110")
	r := cli(t, "--esdb", "esdb://"+addr+"?tls=true&tlsCAFile="+certs.CAFile, "show", p.ID)
	require.Equal(t, 1, r.code, "an anonymous client may not read an order: stderr %s", r.stderr)
	orders := waitListed(t, 1, "--data", dir)
	require.Equal(t, p.ID, orders[0].ID)
	require.Equal(t, 0, d.stop(t, syscall.SIGTERM), "stderr: %s", d.stderr)
}
