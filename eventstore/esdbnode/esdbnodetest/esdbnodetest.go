// Package esdbnodetest runs an embedded EventStoreDB node for tests, the way
// httptest runs an HTTP server: Start gives a node on a free loopback port
// with a fresh data directory, closed when the test ends; Client gives the
// official client connected to it, Dial one connected to any connection
// string. NewCerts makes a test CA and node certificate (crypto/x509),
// StartSecure runs a secure node with them, and SecureURL is the connection
// string of a client trusting that CA.
//
// It is also the home of the test helpers that the node's own tests share with
// the application's: the node may import nothing outside eventstore/esdbnode
// (TestNodeImportsNoApplicationPackage), so what both sides need lives here
// (Buffer, and the browser helpers in package browsertest below), and the
// application's other cross-package helpers live in internal/testutil.
package esdbnodetest

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/url"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"

	"github.com/orderstore/orders/eventstore/esdbnode"
)

// Start runs a node on 127.0.0.1:0 with a tb.TempDir data directory and
// registers its Close with tb.Cleanup. It fails the test on error.
func Start(tb testing.TB) *esdbnode.Server {
	tb.Helper()
	return StartAt(tb, "127.0.0.1:0", tb.TempDir())
}

// StartAt runs a node on addr with data directory dir (a restart: the same
// address and data as a node closed or killed before), registering its Close
// (idempotent) with tb.Cleanup. A port still held by the kernel after the
// previous node went is retried for up to 10 s. It fails the test on error.
func StartAt(tb testing.TB, addr, dir string) *esdbnode.Server {
	tb.Helper()
	return start(tb, esdbnode.Config{Addr: addr, DataDir: dir})
}

// StartSecure runs a secure node (TLS with certs, users, access control) on
// 127.0.0.1:0 with a fresh data directory, like Start.
func StartSecure(tb testing.TB, certs Certs) *esdbnode.Server {
	tb.Helper()
	return start(tb, esdbnode.Config{
		Addr: "127.0.0.1:0", DataDir: tb.TempDir(),
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

// start runs a node with cfg, registering its Close (idempotent) with
// tb.Cleanup. A port still held by the kernel after a previous node on the
// same address went is retried for up to 10 s. It fails the test on error.
func start(tb testing.TB, cfg esdbnode.Config) *esdbnode.Server {
	tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		srv, err := esdbnode.New(cfg)
		if err != nil {
			tb.Fatalf("esdbnodetest: new node: %v", err)
		}
		err = srv.Start()
		if err == nil {
			tb.Cleanup(func() {
				if err := srv.Close(); err != nil {
					tb.Errorf("esdbnodetest: close node: %v", err)
				}
			})
			return srv
		}
		_ = srv.Close()
		if !errors.Is(err, syscall.EADDRINUSE) || time.Now().After(deadline) {
			tb.Fatalf("esdbnodetest: start node on %s: %v", cfg.Addr, err)
		}
		time.Sleep(50 * time.Millisecond) // waiting for the kernel to free the port: no event to wait on
	}
}

// FreeAddr returns a loopback address that was free a moment ago, for a node
// that will be restarted on the same address (StartAt).
func FreeAddr(tb testing.TB) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("esdbnodetest: %v", err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr
}

// Client returns the official client connected to srv, closed at cleanup
// (before srv, since cleanups run last-registered first). Its logging is off.
func Client(tb testing.TB, srv *esdbnode.Server) *esdb.Client {
	tb.Helper()
	return Dial(tb, srv.ConnectionString())
}

// Dial returns the official client for connString (its logging off), closed
// at cleanup. It is the tests' one dialer; the application's is
// eventstore.Connect, which the node's tests may not import.
func Dial(tb testing.TB, connString string) *esdb.Client {
	tb.Helper()
	client, err := NewClient(connString)
	if err != nil {
		tb.Fatalf("esdbnodetest: %v", err)
	}
	tb.Cleanup(func() { _ = client.Close() })
	return client
}

// NewClient is Dial without a test: the caller closes the client (a crash
// test's child process, a client closed before the test ends).
func NewClient(connString string) (*esdb.Client, error) {
	cfg, err := esdb.ParseConnectionString(connString)
	if err != nil {
		return nil, fmt.Errorf("parse connection string %q: %w", connString, err)
	}
	cfg.Logger = esdb.NoopLogging() // the client logs every discovery at debug level
	client, err := esdb.NewClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("new client for %q: %w", connString, err)
	}
	return client, nil
}

// Buffer is a bytes.Buffer safe for concurrent use: a child process's stderr
// or a logger's output, written by one goroutine while the test reads it.
type Buffer struct {
	// Limit, when positive, bounds the memory of a chatty writer: a write that
	// finds Limit bytes or more held empties the buffer first.
	Limit int

	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.Limit > 0 && b.b.Len() >= b.Limit {
		b.b.Reset()
	}
	return b.b.Write(p)
}

// String returns what was written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
