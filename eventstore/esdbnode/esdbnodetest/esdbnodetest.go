// Package esdbnodetest runs an embedded EventStoreDB node for tests, the way
// httptest runs an HTTP server: Start gives a node on a free loopback port
// with a fresh data directory, closed when the test ends; Client gives the
// official client connected to it. NewCerts makes a test CA and node
// certificate (crypto/x509), StartSecure runs a secure node with them, and
// SecureURL is the connection string of a client trusting that CA.
package esdbnodetest

import (
	"net/url"
	"testing"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"

	"github.com/orderstore/orders/eventstore/esdbnode"
)

// Start runs a node on 127.0.0.1:0 with a tb.TempDir data directory and
// registers its Close with tb.Cleanup. It fails the test on error.
func Start(tb testing.TB) *esdbnode.Server {
	tb.Helper()
	return run(tb, esdbnode.Config{})
}

// run starts a node with cfg on 127.0.0.1:0 and a tb.TempDir data
// directory, closed at cleanup.
func run(tb testing.TB, cfg esdbnode.Config) *esdbnode.Server {
	tb.Helper()
	cfg.Addr, cfg.DataDir = "127.0.0.1:0", tb.TempDir()
	srv, err := esdbnode.New(cfg)
	if err != nil {
		tb.Fatalf("esdbnodetest: new node: %v", err)
	}
	if err := srv.Start(); err != nil {
		tb.Fatalf("esdbnodetest: start node: %v", err)
	}
	tb.Cleanup(func() {
		if err := srv.Close(); err != nil {
			tb.Errorf("esdbnodetest: close node: %v", err)
		}
	})
	return srv
}

// StartSecure runs a secure node (TLS with certs, users, access control) on
// 127.0.0.1:0, like Start.
func StartSecure(tb testing.TB, certs Certs) *esdbnode.Server {
	tb.Helper()
	return run(tb, esdbnode.Config{
		CertificateFile: certs.CertFile, CertificatePrivateKeyFile: certs.KeyFile,
		TrustedRootCertificatesPath: certs.RootsDir,
	})
}

// SecureURL is the connection string of a secure node for a client that
// trusts certs' CA and logs in as user:password ("" user: no credentials).
func SecureURL(srv *esdbnode.Server, certs Certs, user, password string) string {
	cred := ""
	if user != "" {
		cred = url.UserPassword(user, password).String() + "@"
	}
	return "esdb://" + cred + srv.Addr() + "?tls=true&tlsCAFile=" + url.QueryEscape(certs.CAFile)
}

// Dial returns the official client for a connection string, closed at cleanup.
func Dial(tb testing.TB, connString string) *esdb.Client {
	tb.Helper()
	cfg, err := esdb.ParseConnectionString(connString)
	if err != nil {
		tb.Fatalf("esdbnodetest: parse connection string: %v", err)
	}
	cfg.Logger = esdb.NoopLogging()
	client, err := esdb.NewClient(cfg)
	if err != nil {
		tb.Fatalf("esdbnodetest: new client: %v", err)
	}
	tb.Cleanup(func() { _ = client.Close() })
	return client
}

// Client returns the official client connected to srv, closed at cleanup
// (before srv, since cleanups run last-registered first). Its logging is off.
func Client(tb testing.TB, srv *esdbnode.Server) *esdb.Client {
	tb.Helper()
	return Dial(tb, srv.ConnectionString())
}
