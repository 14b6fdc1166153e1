package projections

import (
	"context"
	"database/sql"
	"fmt"
)

// migration is one schema version: statements run in one transaction with the version row.
type migration struct {
	version int
	stmts   func() []string
}

// migrations are applied in order; never edit one that has shipped, append a new one.
var migrations = []migration{
	{version: 1, stmts: func() []string {
		stmts := []string{
			`CREATE TABLE projection_positions (
	name TEXT NOT NULL PRIMARY KEY,
	position BIGINT NOT NULL,
	events_applied BIGINT NOT NULL,
	last_applied_at TEXT,
	rebuilt_at TEXT)`,
			`CREATE TABLE log_head (
	id INTEGER NOT NULL PRIMARY KEY,
	position BIGINT NOT NULL,
	order_events BIGINT NOT NULL,
	counted_at TEXT NOT NULL)`,
			`CREATE TABLE sent_messages (
	event_id TEXT NOT NULL PRIMARY KEY,
	message_id TEXT NOT NULL,
	sent_at TEXT NOT NULL)`,
		}
		for _, name := range Names() {
			p := registry[name]
			for _, t := range p.tables {
				stmts = append(stmts, t.create(t.name, "v1")...)
			}
			stmts = append(stmts, `INSERT INTO projection_positions (name, position, events_applied) VALUES ('`+name+`', 0, 0)`)
		}
		return stmts
	}},
}

// SchemaVersion is the schema version this program migrates to.
func SchemaVersion() int { return migrations[len(migrations)-1].version }

// migrate brings the schema to SchemaVersion. Two processes starting at once are serialised:
// on PostgreSQL by an advisory lock, on SQLite by the immediate write transaction.
func (s *Store) migrate(ctx context.Context) error {
	conn, err := s.w.Conn(ctx)
	if err != nil {
		return fmt.Errorf("projections: connect %s: %w", s.d, err)
	}
	defer conn.Close()
	if s.d == dialectPostgres {
		if _, err := conn.ExecContext(ctx, "SELECT pg_advisory_lock("+lockKeySQL+")", lockKey("migrate")); err != nil {
			return fmt.Errorf("projections: migration lock: %w", err)
		}
		defer func() {
			// A fresh context: the unlock must happen even when ctx is done.
			_, _ = conn.ExecContext(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock("+lockKeySQL+")", lockKey("migrate"))
		}()
	}
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("projections: migrate: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
	version BIGINT NOT NULL PRIMARY KEY,
	applied_at TEXT NOT NULL)`); err != nil {
		return fmt.Errorf("projections: migrate: %w", err)
	}
	var current sql.NullInt64
	if err := tx.QueryRowContext(ctx, "SELECT MAX(version) FROM schema_migrations").Scan(&current); err != nil {
		return fmt.Errorf("projections: migrate: %w", err)
	}
	if int(current.Int64) > SchemaVersion() {
		return fmt.Errorf("%w: version %d, this program knows up to %d", ErrSchemaTooNew, current.Int64, SchemaVersion())
	}
	for _, m := range migrations {
		if m.version <= int(current.Int64) {
			continue
		}
		for _, stmt := range m.stmts() {
			if _, err := tx.ExecContext(ctx, stmt); err != nil {
				return fmt.Errorf("projections: migration %d: %w", m.version, err)
			}
		}
		if _, err := tx.ExecContext(ctx, s.q("INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)"),
			m.version, formatTime(s.now())); err != nil {
			return fmt.Errorf("projections: migration %d: %w", m.version, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("projections: migrate: %w", err)
	}
	return nil
}
