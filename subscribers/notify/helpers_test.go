package notify_test

import (
	"database/sql"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"
	_ "modernc.org/sqlite"

	"github.com/orderstore/orders/internal/testutil/pgtest"
	"github.com/orderstore/orders/subscribers/notify"
)

func postgresURL() string { return pgtest.URL() }

// backend is a kind of read-model database holding the sent-log.
type backend struct {
	name   string
	newURL func(t testing.TB) string
}

var (
	sqliteBackend   = backend{"sqlite", func(t testing.TB) string { return filepath.Join(t.TempDir(), "readmodels.db") }}
	postgresBackend = backend{"postgres", newPostgresSchema}
	backends        = []backend{sqliteBackend, postgresBackend}
)

// newPostgresSchema is a fresh schema of the test PostgreSQL, dropped at cleanup.
func newPostgresSchema(t testing.TB) string { return pgtest.Schema(t) }

// sqlDB opens the database at url: a PostgreSQL URL, else a SQLite file (WAL, with a busy
// timeout, since a child process may write it at the same time).
func sqlDB(url string) (*sql.DB, error) {
	if strings.HasPrefix(url, "postgres") {
		return sql.Open("pgx", url)
	}
	return sql.Open("sqlite", "file:"+url+"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)")
}

// openDB opens the database at url (see sqlDB), closed at cleanup.
func openDB(t testing.TB, url string) *sql.DB {
	t.Helper()
	db, err := sqlDB(url)
	if err != nil {
		t.Fatalf("open %s: %v", url, err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// openSentLog opens the sent-log in the database at url.
func openSentLog(t testing.TB, url string) *notify.SQLSentLog {
	t.Helper()
	db := openDB(t, url)
	l, err := notify.OpenSentLog(t.Context(), db, db)
	if err != nil {
		t.Fatalf("open sent-log %s: %v", url, err)
	}
	return l
}

// sentCount counts the sent-log's records, straight from its table.
func sentCount(t testing.TB, url string) int {
	t.Helper()
	var n int
	if err := openDB(t, url).QueryRowContext(t.Context(), `SELECT count(*) FROM sent_messages`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// waitUntil polls cond (there is no event to wait on) until it holds or timeout passes.
func waitUntil(t testing.TB, timeout time.Duration, what string, cond func() (bool, error)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		ok, err := cond()
		if ok && err == nil {
			return
		}
		last = err
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s (last error: %v)", timeout, what, last)
		}
		<-tick.C
	}
}
