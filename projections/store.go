package projections

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"
	_ "modernc.org/sqlite"             // database/sql driver "sqlite"
)

// DefaultSQLiteFile is the SQLite file Open uses for an empty URL.
const DefaultSQLiteFile = "readmodels.db"

// timeFormat is how every time is stored: fixed-width UTC text, so that text order is time
// order and both databases hold byte-identical values.
const timeFormat = "2006-01-02T15:04:05.000000Z"

// dayFormat is the format of daily_revenue.day.
const dayFormat = "2006-01-02"

// sqliteCacheKiB is the SQLite writer's page cache (64 MiB).
const sqliteCacheKiB = 64 << 10

type dialect int

const (
	dialectSQLite dialect = iota
	dialectPostgres
)

func (d dialect) String() string {
	if d == dialectPostgres {
		return "postgres"
	}
	return "sqlite"
}

// Store is a read-model database: the projections' tables, their recorded positions and the
// cached count of order events in the log (the e-mail sender's sent-log shares it, see DB).
// It is safe for concurrent use, also by several processes on one database.
type Store struct {
	d   dialect
	w   *sql.DB // writes (SQLite: one connection, so writers queue here instead of spinning on SQLITE_BUSY)
	r   *sql.DB // reads (SQLite: a separate pool; WAL lets readers run beside the writer)
	now func() time.Time
	log *slog.Logger

	rebuildSizes rebuildSizes // zero: defaultRebuildSizes (tests make them small)

	unknownMu sync.Mutex
	unknown   map[unknownKey]uint64 // events of unknown types applied, per projection and type
}

// Option configures a Store.
type Option func(*Store)

// WithClock sets the clock used for last_applied_at and similar bookkeeping (default
// time.Now).
func WithClock(now func() time.Time) Option { return func(s *Store) { s.now = now } }

// WithLogger sets the logger (default: discard). The store logs each unknown event type
// once per projection.
func WithLogger(l *slog.Logger) Option { return func(s *Store) { s.log = l } }

// Open opens (creating it when needed) the read-model database named by rawURL and migrates
// its schema to the current version:
//
//   - "postgres://..." or "postgresql://...": PostgreSQL through pgx; the URL's query
//     parameters are passed on (search_path=... selects a schema).
//   - "sqlite:///abs/path", "sqlite://rel/path", a plain file path, or "" (DefaultSQLiteFile):
//     SQLite in WAL mode with synchronous=FULL, foreign keys on and a 30 s busy timeout.
func Open(ctx context.Context, rawURL string, opts ...Option) (*Store, error) {
	s, err := open(rawURL, opts...)
	if err != nil {
		return nil, err
	}
	if err := s.migrate(ctx); err != nil {
		_ = s.Close()
		return nil, err
	}
	return s, nil
}

// open opens the database without migrating it.
func open(rawURL string, opts ...Option) (*Store, error) {
	s := &Store{now: time.Now, unknown: map[unknownKey]uint64{}}
	for _, o := range opts {
		o(s)
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	switch {
	case strings.HasPrefix(rawURL, "postgres://"), strings.HasPrefix(rawURL, "postgresql://"):
		if _, err := url.Parse(rawURL); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrBadURL, err)
		}
		db, err := sql.Open("pgx", rawURL)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrBadURL, err)
		}
		db.SetMaxOpenConns(8)
		db.SetMaxIdleConns(8)
		s.d, s.w, s.r = dialectPostgres, db, db
	default:
		path := rawURL
		if p, ok := strings.CutPrefix(rawURL, "sqlite://"); ok {
			path = p
		}
		if path == "" {
			path = DefaultSQLiteFile
		}
		if strings.ContainsAny(path, "?#") {
			return nil, fmt.Errorf("%w: SQLite path %q must not contain '?' or '#'", ErrBadURL, path)
		}
		if strings.Contains(path, "://") {
			return nil, fmt.Errorf("%w: unsupported scheme in %q (want postgres://, sqlite:// or a file path)", ErrBadURL, rawURL)
		}
		if dir := filepath.Dir(path); dir != "." {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return nil, fmt.Errorf("projections: create directory for %s: %w", path, err)
			}
		}
		base := "file:" + path + "?_pragma=journal_mode(WAL)&_pragma=busy_timeout(30000)" +
			"&_pragma=foreign_keys(1)&_pragma=synchronous(FULL)&_pragma=cache_size(" + strconv.Itoa(-sqliteCacheKiB) + ")"
		w, err := sql.Open("sqlite", base+"&_txlock=immediate")
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrBadURL, err)
		}
		w.SetMaxOpenConns(1)
		w.SetMaxIdleConns(1)
		w.SetConnMaxLifetime(0)
		r, err := sql.Open("sqlite", base+"&_pragma=query_only(1)")
		if err != nil {
			_ = w.Close()
			return nil, fmt.Errorf("%w: %v", ErrBadURL, err)
		}
		r.SetMaxOpenConns(4)
		r.SetMaxIdleConns(4)
		s.d, s.w, s.r = dialectSQLite, w, r
	}
	return s, nil
}

// Close closes the database pools. It is idempotent.
func (s *Store) Close() error {
	err := s.w.Close()
	if s.r != s.w {
		err = errors.Join(err, s.r.Close())
	}
	return err
}

// Dialect is "sqlite" or "postgres".
func (s *Store) Dialect() string { return s.d.String() }

// DB returns the store's connection pools (write: statements that write, on SQLite the one
// writer connection; read: queries), for a neighbour that keeps its own table in the
// read-model database: the e-mail sender's sent-log. They stay the store's; Close closes them.
func (s *Store) DB() (write, read *sql.DB) { return s.w, s.r }

// q rewrites a query written with ? placeholders for the store's dialect.
func (s *Store) q(query string) string { return rebind(s.d, query) }

func rebind(d dialect, query string) string {
	if d != dialectPostgres || !strings.Contains(query, "?") {
		return query
	}
	var b strings.Builder
	b.Grow(len(query) + 16)
	n := 0
	for i := 0; i < len(query); i++ {
		if query[i] == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(query[i])
	}
	return b.String()
}

// lockKey is the PostgreSQL advisory-lock key argument for name; advisory locks are global
// to the database, so SQL that takes one adds the current schema with lockKeySQL.
func lockKey(name string) string { return "orders/projections/" + name }

// lockKeySQL computes the advisory-lock key of the text parameter $1 within the current
// schema (several schemas in one database must not share locks).
const lockKeySQL = "hashtextextended(current_schema() || '/' || $1::text, 0)"

func formatTime(t time.Time) string { return t.UTC().Format(timeFormat) }

func parseTime(s sql.NullString) time.Time {
	if !s.Valid || s.String == "" {
		return time.Time{}
	}
	t, err := time.Parse(timeFormat, s.String)
	if err != nil {
		return time.Time{}
	}
	return t
}

func nullTime(t time.Time) sql.NullString {
	if t.IsZero() {
		return sql.NullString{}
	}
	return sql.NullString{String: formatTime(t), Valid: true}
}
