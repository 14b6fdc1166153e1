package notify

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
)

// sentLogTable creates the sent-log's table when it is missing. The read-model database's
// first migration created the same table, so on a database serve has already used it is a
// no-op.
const sentLogTable = `CREATE TABLE IF NOT EXISTS sent_messages (
	event_id TEXT NOT NULL PRIMARY KEY,
	message_id TEXT NOT NULL,
	sent_at TEXT NOT NULL)`

// sentTimeFormat is how sent_at is stored: fixed-width UTC text, the read models' format.
const sentTimeFormat = "2006-01-02T15:04:05.000000Z"

// SQLSentLog is the durable SentLog: the table sent_messages (keyed by event id) in a SQLite
// or PostgreSQL database, in production the read-model database, whose connection pools it
// shares. Rebuilds of the read models never touch it. Its queries use $n placeholders, which
// both databases take.
type SQLSentLog struct {
	w, r *sql.DB
}

var _ SentLog = (*SQLSentLog)(nil)

// OpenSentLog returns the sent-log kept in the database of the pools write (statements that
// write; for SQLite the store's single writer connection) and read (queries; may be the same
// pool), creating its table when missing. The pools stay the caller's to close.
func OpenSentLog(ctx context.Context, write, read *sql.DB) (*SQLSentLog, error) {
	if write == nil || read == nil {
		return nil, fmt.Errorf("%w: sent-log needs a write and a read pool", ErrInvalidConfig)
	}
	if _, err := write.ExecContext(ctx, sentLogTable); err != nil {
		return nil, fmt.Errorf("%w: create table: %w", ErrSentLog, err)
	}
	return &SQLSentLog{w: write, r: read}, nil
}

// WasSent reports whether a message was recorded for eventID.
func (l *SQLSentLog) WasSent(ctx context.Context, eventID uuid.UUID) (bool, error) {
	var one int
	err := l.r.QueryRowContext(ctx, "SELECT 1 FROM sent_messages WHERE event_id = $1", eventID.String()).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("sent_messages: %w", err) // the sender wraps it in ErrSentLog
	}
	return true, nil
}

// RecordSent records that messageID was sent for eventID at at. Recording an event again is
// a no-op that keeps the first record.
func (l *SQLSentLog) RecordSent(ctx context.Context, eventID uuid.UUID, messageID string, at time.Time) error {
	_, err := l.w.ExecContext(ctx, "INSERT INTO sent_messages (event_id, message_id, sent_at) VALUES ($1, $2, $3) ON CONFLICT (event_id) DO NOTHING",
		eventID.String(), messageID, at.UTC().Format(sentTimeFormat))
	if err != nil {
		return fmt.Errorf("sent_messages: %w", err) // the sender wraps it in ErrSentLog
	}
	return nil
}

// SentMessage is one record of the sent-log.
type SentMessage struct {
	EventID   uuid.UUID `json:"eventId"`
	MessageID string    `json:"messageId"`
	SentAt    time.Time `json:"sentAt"`
}

// Sent returns the record for eventID, ErrNotSent if there is none.
func (l *SQLSentLog) Sent(ctx context.Context, eventID uuid.UUID) (SentMessage, error) {
	m := SentMessage{EventID: eventID}
	var at string
	err := l.r.QueryRowContext(ctx, "SELECT message_id, sent_at FROM sent_messages WHERE event_id = $1", eventID.String()).Scan(&m.MessageID, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return SentMessage{}, fmt.Errorf("%w: event %s", ErrNotSent, eventID)
	}
	if err != nil {
		return SentMessage{}, fmt.Errorf("%w: %w", ErrSentLog, err)
	}
	if m.SentAt, err = time.Parse(sentTimeFormat, at); err != nil {
		return SentMessage{}, fmt.Errorf("%w: event %s: sent_at %q: %w", ErrSentLog, eventID, at, err)
	}
	return m, nil
}
