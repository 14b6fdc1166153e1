package projections

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
)

// SentLog records which events a notification sender has sent a message for (table
// sent_messages, keyed by event id). Rebuilds never touch it.
type SentLog struct{ s *Store }

// SentLog returns the store's sent-log.
func (s *Store) SentLog() *SentLog { return &SentLog{s: s} }

// WasSent reports whether a message was recorded for eventID.
func (l *SentLog) WasSent(ctx context.Context, eventID uuid.UUID) (bool, error) {
	var one int
	err := l.s.r.QueryRowContext(ctx, l.s.q("SELECT 1 FROM sent_messages WHERE event_id = ?"), eventID.String()).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("projections: sent-log: %w", err)
	}
	return true, nil
}

// RecordSent records that messageID was sent for eventID at at. Recording an event again is
// a no-op that keeps the first record.
func (l *SentLog) RecordSent(ctx context.Context, eventID uuid.UUID, messageID string, at time.Time) error {
	_, err := l.s.w.ExecContext(ctx, l.s.q("INSERT INTO sent_messages (event_id, message_id, sent_at) VALUES (?, ?, ?) ON CONFLICT (event_id) DO NOTHING"),
		eventID.String(), messageID, formatTime(at))
	if err != nil {
		return fmt.Errorf("projections: sent-log: %w", err)
	}
	return nil
}

// SentMessage is one record of the sent-log.
type SentMessage struct {
	EventID   uuid.UUID `json:"eventId"`
	MessageID string    `json:"messageId"`
	SentAt    time.Time `json:"sentAt"`
}

// Sent returns the record for eventID, ErrNotFound if none.
func (l *SentLog) Sent(ctx context.Context, eventID uuid.UUID) (SentMessage, error) {
	m := SentMessage{EventID: eventID}
	var at sql.NullString
	err := l.s.r.QueryRowContext(ctx, l.s.q("SELECT message_id, sent_at FROM sent_messages WHERE event_id = ?"), eventID.String()).Scan(&m.MessageID, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return SentMessage{}, fmt.Errorf("%w: sent message for event %s", ErrNotFound, eventID)
	}
	if err != nil {
		return SentMessage{}, fmt.Errorf("projections: sent-log: %w", err)
	}
	m.SentAt = parseTime(at)
	return m, nil
}
