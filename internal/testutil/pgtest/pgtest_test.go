package pgtest

import (
	"fmt"
	"net"
	"strings"
	"testing"
)

// recorder is a testing.TB that records Skip and Fatalf instead of stopping the goroutine.
type recorder struct {
	testing.TB
	skipped, failed string
}

func (r *recorder) Helper()                      {}
func (r *recorder) Skip(args ...any)             { r.skipped = fmt.Sprint(args...) }
func (r *recorder) Fatalf(f string, args ...any) { r.failed = fmt.Sprintf(f, args...) }

func closedURL(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return "postgres://postgres@" + addr + "/test?sslmode=disable"
}

// TestMissingServer: without a server the test is skipped with one line saying what is
// missing and how to provide it; with ORDERS_TEST_REQUIRE_ALL set it fails instead.
func TestMissingServer(t *testing.T) {
	t.Setenv(Env, closedURL(t))

	t.Setenv(RequireEnv, "")
	r := &recorder{TB: t}
	if Require(r) || Schema(r) != "" {
		t.Fatal("Require let a test go on without PostgreSQL")
	}
	if r.failed != "" || !strings.Contains(r.skipped, "PostgreSQL not reachable at") || !strings.Contains(r.skipped, Env) || strings.Contains(r.skipped, "\n") {
		t.Fatalf("skipped %q, failed %q", r.skipped, r.failed)
	}

	t.Setenv(RequireEnv, "1")
	r = &recorder{TB: t}
	if Require(r) {
		t.Fatal("Require let a test go on without PostgreSQL")
	}
	if r.skipped != "" || !strings.Contains(r.failed, RequireEnv+" is set") {
		t.Fatalf("skipped %q, failed %q", r.skipped, r.failed)
	}
}
