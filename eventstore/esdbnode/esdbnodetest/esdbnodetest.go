// Package esdbnodetest runs an embedded EventStoreDB node for tests, the way
// httptest runs an HTTP server: Start gives a node on a free loopback port
// with a fresh data directory, closed when the test ends; Client gives the
// official client connected to it.
package esdbnodetest

import (
	"testing"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"

	"github.com/orderstore/orders/eventstore/esdbnode"
)

// Start runs a node on 127.0.0.1:0 with a tb.TempDir data directory and
// registers its Close with tb.Cleanup. It fails the test on error.
func Start(tb testing.TB) *esdbnode.Server {
	tb.Helper()
	srv, err := esdbnode.New(esdbnode.Config{Addr: "127.0.0.1:0", DataDir: tb.TempDir()})
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

// Client returns the official client connected to srv, closed at cleanup
// (before srv, since cleanups run last-registered first). Its logging is off.
func Client(tb testing.TB, srv *esdbnode.Server) *esdb.Client {
	tb.Helper()
	cfg, err := esdb.ParseConnectionString(srv.ConnectionString())
	if err != nil {
		tb.Fatalf("esdbnodetest: parse connection string: %v", err)
	}
	cfg.Logger = esdb.NoopLogging() // the client logs every discovery at debug level
	client, err := esdb.NewClient(cfg)
	if err != nil {
		tb.Fatalf("esdbnodetest: new client: %v", err)
	}
	tb.Cleanup(func() { _ = client.Close() })
	return client
}
