package bench

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// DefaultPostgresURL is the PostgreSQL the peer suite uses when none is given.
const DefaultPostgresURL = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// pgSpareConns are the pool's connections beyond one per writer.
const pgSpareConns = 2

// pgPreloadChunk is the rows per COPY of Preload.
const pgPreloadChunk = 10_000

// pgSchema is the event table as a Marten-like store keeps it: one row per
// event, a global sequence, and a unique (stream, revision) for optimistic
// concurrency.
const pgSchema = `
CREATE TABLE events (
	global_position bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	id       uuid        NOT NULL,
	stream   text        NOT NULL,
	revision bigint      NOT NULL,
	type     text        NOT NULL,
	data     jsonb       NOT NULL,
	metadata jsonb       NOT NULL DEFAULT '{}',
	created  timestamptz NOT NULL DEFAULT now(),
	UNIQUE (stream, revision)
)`

// pgAppend appends the events of $3/$4/$5 (ids, types, data) to stream $1
// only if the stream's last revision is $2 (-1: no stream), in one statement
// (one round trip, one transaction). A concurrent writer that passes the same
// check loses on the unique constraint.
const pgAppend = `
INSERT INTO events (id, stream, revision, type, data)
SELECT e.id, $1, $2 + e.ord, e.type, e.data::jsonb
FROM unnest($3::uuid[], $4::text[], $5::text[]) WITH ORDINALITY AS e(id, type, data, ord)
WHERE (SELECT coalesce(max(revision), -1) FROM events WHERE stream = $1) = $2`

const pgReadPage = `
SELECT global_position, id, stream, revision, type, data, metadata, created
FROM events WHERE global_position > $1 ORDER BY global_position LIMIT $2`

// pgTarget is a PostgreSQL event table written and read with pgx, every
// commit synchronous (synchronous_commit=on), in a schema of its own that
// Close drops.
type pgTarget struct {
	pool   *pgxpool.Pool
	admin  *pgx.Conn
	schema string
	notes  []string
}

// newPGTarget connects with a pool of maxWriters+pgSpareConns connections,
// all opened before it returns.
func newPGTarget(ctx context.Context, url string, maxWriters int) (_ *pgTarget, err error) {
	poolSize := max(maxWriters, 1) + pgSpareConns
	if url == "" {
		url = DefaultPostgresURL
	}
	admin, err := pgx.Connect(ctx, url)
	if err != nil {
		return nil, fmt.Errorf("bench: postgres: %w", err)
	}
	t := &pgTarget{admin: admin, schema: "bench_" + strings.ReplaceAll(uuid.NewString()[:13], "-", "")}
	defer func() {
		if err != nil {
			err = errors.Join(err, t.Close())
		}
	}()
	if _, err := admin.Exec(ctx, "CREATE SCHEMA "+t.schema); err != nil {
		return nil, fmt.Errorf("bench: postgres: %w", err)
	}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("bench: postgres: %w", err)
	}
	cfg.MaxConns = int32(poolSize)
	cfg.ConnConfig.RuntimeParams["search_path"] = t.schema
	cfg.ConnConfig.RuntimeParams["synchronous_commit"] = "on"
	if t.pool, err = pgxpool.NewWithConfig(ctx, cfg); err != nil {
		return nil, fmt.Errorf("bench: postgres: %w", err)
	}
	if _, err := t.pool.Exec(ctx, pgSchema); err != nil {
		return nil, fmt.Errorf("bench: postgres: %w", err)
	}
	// Open every connection now, as the node's client is warmed up, so that
	// no workload times connection set-up.
	conns := make([]*pgxpool.Conn, 0, poolSize)
	for range poolSize {
		c, err := t.pool.Acquire(ctx)
		if err != nil {
			for _, c := range conns {
				c.Release()
			}
			return nil, fmt.Errorf("bench: postgres: %w", err)
		}
		conns = append(conns, c)
	}
	for _, c := range conns {
		c.Release()
	}
	// Say what durability the server gives, not what we hope it gives.
	for _, setting := range []string{"fsync", "synchronous_commit", "wal_sync_method", "server_version"} {
		var v string
		if err := t.pool.QueryRow(ctx, "SHOW "+setting).Scan(&v); err != nil {
			return nil, fmt.Errorf("bench: postgres: %w", err)
		}
		t.notes = append(t.notes, setting+"="+v)
	}
	return t, nil
}

func (t *pgTarget) Name() string { return "postgres" }

// Notes are the server's durability settings.
func (t *pgTarget) Notes() []string { return t.notes }

func (t *pgTarget) Append(ctx context.Context, stream string, expected int64, events []Event) (int64, error) {
	ids := make([]uuid.UUID, len(events))
	types := make([]string, len(events))
	data := make([]string, len(events))
	for i, e := range events {
		ids[i], types[i], data[i] = e.ID, e.Type, string(e.Data)
	}
	tag, err := t.pool.Exec(ctx, pgAppend, stream, expected, ids, types, data)
	if err != nil {
		if strings.Contains(err.Error(), "23505") { // unique_violation: a concurrent writer won
			return 0, fmt.Errorf("%w: %v", ErrWrongExpectedRevision, err)
		}
		return 0, err
	}
	if tag.RowsAffected() != int64(len(events)) {
		return 0, fmt.Errorf("%w: stream %s is not at revision %d", ErrWrongExpectedRevision, stream, expected)
	}
	return expected + int64(len(events)), nil
}

func (t *pgTarget) ReadPage(ctx context.Context, after Cursor, count int) (Page, error) {
	var p Page
	err := t.readPage(ctx, after, count, &p)
	return p, err
}

func (t *pgTarget) readPage(ctx context.Context, after Cursor, count int, p *Page) error {
	rows, err := t.pool.Query(ctx, pgReadPage, int64(after.Commit), count)
	if err != nil {
		return err
	}
	defer rows.Close()
	var (
		pos      int64
		id       uuid.UUID
		stream   string
		rev      int64
		typ      string
		data, md []byte
		created  time.Time
	)
	*p = Page{Last: after}
	for rows.Next() {
		if err := rows.Scan(&pos, &id, &stream, &rev, &typ, &data, &md, &created); err != nil {
			return err
		}
		p.Events++
		p.Bytes += int64(len(data))
		p.Last = Cursor{Commit: uint64(pos), Set: true}
	}
	return rows.Err()
}

// CatchUp is what a PostgreSQL subscriber does (Marten's async daemon, a
// polling projector): keyset polling by global_position, one page after the
// other, until it has seen n events.
func (t *pgTarget) CatchUp(ctx context.Context, n int) error {
	var (
		from Cursor
		p    Page
	)
	for got := 0; got < n; {
		if err := t.readPage(ctx, from, min(DefaultPageSize, n-got), &p); err != nil {
			return err
		}
		if p.Events == 0 {
			return fmt.Errorf("caught up after %d events, before %d", got, n)
		}
		got += p.Events
		from = p.Last
	}
	return nil
}

// Preload COPYs n events in chunks, 100 events per stream.
func (t *pgTarget) Preload(ctx context.Context, n int) error {
	for done := 0; done < n; {
		chunk := min(pgPreloadChunk, n-done)
		rows := make([][]any, 0, chunk)
		var (
			id     string
			stream string
		)
		for i := range chunk {
			rev := int64(i % preloadBatch)
			if rev == 0 {
				id = uuid.NewString()
				stream = streamPrefix + id
			}
			rows = append(rows, []any{uuid.New(), stream, rev, eventType(rev), string(orderPayload(nil, id, rev))})
		}
		if _, err := t.pool.CopyFrom(ctx, pgx.Identifier{"events"},
			[]string{"id", "stream", "revision", "type", "data"}, pgx.CopyFromRows(rows)); err != nil {
			return fmt.Errorf("bench: postgres preload: %w", err)
		}
		done += chunk
	}
	return nil
}

// Settle does what PostgreSQL's autovacuum and checkpointer would do soon
// after a bulk load, before the figures rather than during them: VACUUM
// (ANALYZE) of the event table, then a CHECKPOINT.
func (t *pgTarget) Settle(ctx context.Context) error {
	if _, err := t.admin.Exec(ctx, "VACUUM (ANALYZE) "+t.schema+".events"); err != nil {
		return fmt.Errorf("bench: postgres settle: vacuum: %w", err)
	}
	if _, err := t.admin.Exec(ctx, "CHECKPOINT"); err != nil {
		// Only superusers and pg_checkpoint may: without it the server's
		// own checkpoints come when they come.
		const note = "CHECKPOINT after a preload refused (needs superuser or pg_checkpoint)"
		if !slices.Contains(t.notes, note) {
			t.notes = append(t.notes, note)
		}
	}
	return nil
}

func (t *pgTarget) Close() error {
	var errs []error
	if t.pool != nil {
		t.pool.Close()
	}
	if t.admin != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if _, err := t.admin.Exec(ctx, "DROP SCHEMA IF EXISTS "+t.schema+" CASCADE"); err != nil {
			errs = append(errs, fmt.Errorf("bench: postgres: drop schema: %w", err))
		}
		errs = append(errs, t.admin.Close(ctx))
	}
	return errors.Join(errs...)
}

// DiskBytes is the size of the tables of the target's schema with their
// indexes and TOAST (pg_total_relation_size); the WAL, shared by the whole
// server, is not counted.
func (t *pgTarget) DiskBytes(ctx context.Context) (int64, error) {
	var n int64
	err := t.pool.QueryRow(ctx, `SELECT COALESCE(sum(pg_total_relation_size(c.oid)), 0)::bigint
FROM pg_class c JOIN pg_namespace ns ON ns.oid = c.relnamespace
WHERE ns.nspname = $1 AND c.relkind IN ('r', 'p', 'm')`, t.schema).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("bench: postgres size: %w", err)
	}
	return n, nil
}
