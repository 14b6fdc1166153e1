package projections

import (
	"context"
	"database/sql"
	"fmt"
)

// migration is one schema version: statements run in one transaction with the version row.
type migration struct {
	version int
	stmts   []string
}

// migrations are applied in order. A shipped migration is frozen: its SQL is literal here,
// never built from the table definitions the rebuild uses (projection.go), so changing a
// table cannot change what an old migration does. A change of schema is a new migration
// that brings both a fresh database and an existing one to the tables projection.go
// defines (TestMigrationsMatchCurrentSchema checks both, on SQLite and PostgreSQL).
var migrations = []migration{
	{version: 1, stmts: []string{
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
		`CREATE TABLE order_summaries (
	order_id TEXT NOT NULL,
	customer TEXT NOT NULL,
	status TEXT NOT NULL,
	currency TEXT NOT NULL,
	total BIGINT NOT NULL,
	line_count BIGINT NOT NULL,
	payment_ref TEXT NOT NULL DEFAULT '',
	paid_amount BIGINT NOT NULL DEFAULT 0,
	placed_at TEXT NOT NULL,
	paid_at TEXT,
	shipped_at TEXT,
	cancelled_at TEXT,
	cancel_reason TEXT NOT NULL DEFAULT '',
	updated_at TEXT NOT NULL,
	applied_revision BIGINT NOT NULL,
	applied_position BIGINT NOT NULL,
	CONSTRAINT order_summaries_pk_v1 PRIMARY KEY (order_id))`,
		`CREATE INDEX order_summaries_status_v1 ON order_summaries (status, placed_at)`,
		`CREATE INDEX order_summaries_customer_v1 ON order_summaries (customer, placed_at)`,
		`INSERT INTO projection_positions (name, position, events_applied) VALUES ('order_summaries', 0, 0)`,
		`CREATE TABLE customer_orders_state (
	order_id TEXT NOT NULL,
	customer TEXT NOT NULL,
	currency TEXT NOT NULL,
	applied_revision BIGINT NOT NULL,
	CONSTRAINT customer_orders_state_pk_v1 PRIMARY KEY (order_id))`,
		`CREATE TABLE customer_orders (
	customer TEXT NOT NULL,
	currency TEXT NOT NULL,
	orders BIGINT NOT NULL,
	paid_orders BIGINT NOT NULL,
	shipped_orders BIGINT NOT NULL,
	cancelled_orders BIGINT NOT NULL,
	ordered_amount BIGINT NOT NULL,
	paid_amount BIGINT NOT NULL,
	CONSTRAINT customer_orders_pk_v1 PRIMARY KEY (customer, currency))`,
		`INSERT INTO projection_positions (name, position, events_applied) VALUES ('customer_orders', 0, 0)`,
		`CREATE TABLE daily_revenue_state (
	order_id TEXT NOT NULL,
	applied_revision BIGINT NOT NULL,
	CONSTRAINT daily_revenue_state_pk_v1 PRIMARY KEY (order_id))`,
		`CREATE TABLE daily_revenue (
	day TEXT NOT NULL,
	currency TEXT NOT NULL,
	payments BIGINT NOT NULL,
	amount BIGINT NOT NULL,
	CONSTRAINT daily_revenue_pk_v1 PRIMARY KEY (day, currency))`,
		`INSERT INTO projection_positions (name, position, events_applied) VALUES ('daily_revenue', 0, 0)`,
	}},
}

// SchemaVersion is the schema version this program migrates to.
func SchemaVersion() int { return migrations[len(migrations)-1].version }

// migrate brings the schema to SchemaVersion. Two processes starting at once are serialised:
// on PostgreSQL by an advisory lock, on SQLite by the immediate write transaction.
func (s *Store) migrate(ctx context.Context) error { return s.migrateTo(ctx, SchemaVersion()) }

// migrateTo applies the migrations up to version target.
func (s *Store) migrateTo(ctx context.Context, target int) error {
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
		if m.version <= int(current.Int64) || m.version > target {
			continue
		}
		for _, stmt := range m.stmts {
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
