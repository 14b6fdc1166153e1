// Package projections keeps the order store's read models in SQL (SQLite by default,
// PostgreSQL when a URL names one), each fed by its own persistent subscription group, and
// rebuilds them from position zero.
//
// # Contract
//
// At every moment a projection claims to be caught up (lag 0), its tables equal what a
// replay of the log from position zero produces, whatever the delivery did: duplicates,
// reordering, retries, crashes of the consumer, the node or the database connection.
//
//   - Each projection applies a batch of events and records its checkpoint row
//     (projection_positions) in ONE transaction: the consumer loop acks only after the
//     commit, so a crash either loses the whole batch (redelivered later) or nothing.
//   - A batch is applied per batch, not per event: each event is decoded once, the
//     per-order rows the batch touches are loaded with one query per table, the events are
//     folded into them in memory (one fold for the three projections, fold.go), each touched
//     row is written once (multi-row statements) and each totals key gets one delta.
//   - Per-order ordering: every projection keeps, per order, the stream revision it has
//     applied (order_summaries.applied_revision, customer_orders_state,
//     daily_revenue_state). An event with revision <= applied is a duplicate and ignored;
//     revision > applied+1 fails with ErrOutOfOrder (retryable: its predecessor is in flight
//     and the loop redelivers it later); exactly applied+1 is applied. The write is
//     conditional on the revision the batch loaded ("WHERE applied_revision = loaded"; a
//     new row is inserted ON CONFLICT DO NOTHING), and on PostgreSQL the loaded rows are
//     locked FOR UPDATE in order_id order, so concurrent transactions of several processes
//     on one PostgreSQL cannot both apply an event: a write that finds another revision
//     fails the batch with ErrConcurrentUpdate, and the batch is applied again in a fresh
//     transaction (a few times, then the loop retries it).
//   - Cross-order totals (customer_orders, daily_revenue) change only when the per-order row
//     of the same projection advanced in the same transaction, so they are exact under
//     duplicates and reordering. A batch adds its deltas in key order (no deadlocks between
//     concurrent batches).
//   - A batch is all or nothing: one event out of order or failing fails the batch, and the
//     loop (package subscribers) then handles its events one at a time.
//   - Undecodable events fail with a subscribers.Permanent ErrMalformedEvent (parked).
//     Unknown event types advance the revision without other effect; the store logs each
//     unknown type once per projection (WithLogger) and counts them (UnknownEventTypes,
//     and LiveStatus.Unknown, which serve exports as
//     orders_subscriber_unknown_events_total{kind="projection"} beside the sender's), so
//     that an event the read side does not know yet is visible.
//   - Batches are sized by the backlog (see DefaultMaxBatch): caught up, an event is applied
//     alone as soon as it arrives; behind, batches grow to up to DefaultMaxBatch events.
//
// # Read models
//
//   - order_summaries: one row per order: customer, status (placed, paid, shipped,
//     cancelled), currency, total, line count, payment reference and amount, the time of
//     each step (from the events), updated_at (time of the last applied event), and the
//     applied revision and position.
//   - customer_orders: per (customer, currency): orders placed, orders paid, shipped and
//     cancelled (a paid order cancelled later counts as paid and as cancelled), the sum of
//     totals ordered and the sum of payments received.
//   - daily_revenue: per (UTC day of PaidAt, currency): the number and sum of payments. A
//     cancellation after payment does not reverse it (the domain has no refund event; a
//     refund would be its own event on its own day).
//
// # Positions and lag
//
// projection_positions.position is the highest $all commit position among the events a
// projection applied. Persistent subscriptions deliver out of order, so it is a high-water
// mark, not a watermark. Lag is therefore counted in events, not positions:
// events_applied counts distinct events that changed the model (duplicates excluded), which
// by the per-order ordering is the number of order events of the log reflected in it, and
// CountLog counts the order events in $all (incrementally, caching the count in log_head).
// Lag = order events in the log − events applied. Positions are only compared, never
// subtracted, so this holds for the embedded node's dense positions and for a real node's
// byte offsets. Time since the last applied event comes from last_applied_at.
//
// # Stores
//
// Open takes "postgres://..." (pgx), or "sqlite://path", a file path or "" (modernc.org's
// pure-Go SQLite, WAL, synchronous=FULL, one writer connection and a separate reader pool,
// immediate write transactions). The SQL is the same on both; placeholders are rewritten
// for PostgreSQL. The schema is versioned (schema_migrations) and migrated at Open, under an
// advisory lock on PostgreSQL, in one immediate transaction on SQLite. Times are stored as
// fixed-width UTC text ("2006-01-02T15:04:05.000000Z"), days as "2006-01-02", money as
// BIGINT minor units.
//
// The database also holds the e-mail sender's sent-log (sent_messages, owned by package
// subscribers/notify, which shares the store's pools through Store.DB); rebuilds never touch it.
//
// # Rebuild
//
// Store.Rebuild replays $all from zero with catch-up reads (pages of 8,192 events) into
// shadow tables "<table>_rebuild", created from the current table definitions, while the
// live tables serve and the live consumers keep writing them, then takes the write lock,
// applies the tail, and swaps the shadows in with the checkpoint in one transaction; see
// Rebuild. The replay reads $all, decodes chunks of 20,000 order events as it reads, and
// folds them into in-memory rows per order; every 20,000 orders the folded rows go to a
// flush that bulk-loads them in order_id order (multi-row inserts through one prepared
// statement on SQLite, COPY on PostgreSQL, 20,000 rows per transaction) while the next
// chunks are read and folded. Memory is bounded whatever the size of the log: three chunks
// of events, plus per projection two sets of folded rows (one filling, at most 40,000
// orders, one being written; a few hundred bytes per order), plus, on SQLite, a page
// cache of 256 MiB while the rebuild runs (64 MiB otherwise). Rows of orders that receive
// events after their flush are read back from the shadows. The shadows' secondary indexes
// are built once they are loaded, before the lock.
//
// # Verification
//
// Package verify replays the log with the aggregate alone and compares every row of every
// table with it (`orders projections verify`).
//
// # Schema
//
// Shipped migrations are literal SQL, never built from the table definitions; a change of
// schema is a new migration, tested on a fresh and on an existing database.
package projections
