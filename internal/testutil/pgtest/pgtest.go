// Package pgtest gives tests a fresh PostgreSQL schema of their own (see internal/testutil).
//
// Contract: URL is the server tests use: env ORDERS_TEST_POSTGRES (which .ci/run
// sets), else postgres://postgres@127.0.0.1:5432/test?sslmode=disable. Schema
// creates a new schema there, drops it (CASCADE) at the test's cleanup, and
// returns a URL whose search_path selects it, so parallel test packages never
// share tables. A server that cannot be reached SKIPS the test with one line
// saying what is missing and how to provide it, unless ORDERS_TEST_REQUIRE_ALL
// is set (.ci/run sets it): then it FAILS, so CI can never pass by skipping.
package pgtest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"
)

// Env names the environment variable that gives the server's URL.
const Env = "ORDERS_TEST_POSTGRES"

// DefaultURL is the machine's PostgreSQL (trust auth, database test).
const DefaultURL = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// RequireEnv names the variable that turns a skip for a missing PostgreSQL into a failure.
const RequireEnv = "ORDERS_TEST_REQUIRE_ALL"

// Require skips t (or fails it when RequireEnv is set) unless the server at URL answers.
// It reports whether the test may go on.
func Require(t testing.TB) bool {
	t.Helper()
	url := URL()
	db, err := sql.Open("pgx", url)
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err = db.PingContext(ctx)
		cancel()
		_ = db.Close()
	}
	if err == nil {
		return true
	}
	msg := fmt.Sprintf("PostgreSQL not reachable at %s (%v): start one with trust auth and a database \"test\", or set %s to its URL (bash .ci/run starts it)", url, err, Env)
	if os.Getenv(RequireEnv) != "" {
		t.Fatalf("%s; %s is set, so this is a failure", msg, RequireEnv)
		return false
	}
	t.Skip(msg)
	return false
}

// URL is the server's URL for tests.
func URL() string {
	if v := os.Getenv(Env); v != "" {
		return v
	}
	return DefaultURL
}

// Schema creates a fresh schema, dropped at cleanup, and returns a URL whose
// search_path selects it.
func Schema(t testing.TB) string {
	t.Helper()
	if !Require(t) {
		return ""
	}
	base := URL()
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	schema := "t_" + hex.EncodeToString(b)
	exec(t, base, "CREATE SCHEMA "+schema)
	t.Cleanup(func() { exec(t, base, "DROP SCHEMA "+schema+" CASCADE") })
	sep := "?"
	if strings.Contains(base, "?") {
		sep = "&"
	}
	return base + sep + "search_path=" + schema
}

func exec(t testing.TB, url, stmt string) {
	t.Helper()
	db, err := sql.Open("pgx", url)
	if err != nil {
		t.Fatalf("open postgres: %v", err)
	}
	defer db.Close()
	// Not t.Context(): cleanups run after it is cancelled.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := db.ExecContext(ctx, stmt); err != nil {
		t.Fatalf("%s (is PostgreSQL running at %s?): %v", stmt, url, err)
	}
}
