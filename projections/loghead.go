package projections

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"

	"github.com/orderstore/orders/eventstore"
)

// readPage is the number of events asked for per ReadAll request.
const readPage = 2048

// LogHead is the cached count of the log: the last $all position read and the number of
// order events (streams "order-<id>") up to it.
type LogHead struct {
	Position    uint64    `json:"position"`
	OrderEvents int64     `json:"orderEvents"`
	CountedAt   time.Time `json:"countedAt,omitzero"`
}

// LogHead returns the cached count (zero before the first CountLog).
func (s *Store) LogHead(ctx context.Context) (LogHead, error) {
	var h LogHead
	var pos int64
	var at sql.NullString
	err := s.r.QueryRowContext(ctx, "SELECT position, order_events, counted_at FROM log_head WHERE id = 1").Scan(&pos, &h.OrderEvents, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return LogHead{}, nil
	}
	if err != nil {
		return LogHead{}, fmt.Errorf("projections: log head: %w", err)
	}
	h.Position, h.CountedAt = uint64(pos), parseTime(at)
	return h, nil
}

// CountLog brings the cached count up to the end of $all, reading only what was appended
// since the last count (the first count reads the whole log), and returns it. Positions are
// compared, never subtracted, so this is right for the embedded node's dense positions and
// for a real node's byte offsets alike.
func (s *Store) CountLog(ctx context.Context, client *esdb.Client) (LogHead, error) {
	h, err := s.LogHead(ctx)
	if err != nil {
		return LogHead{}, err
	}
	last, n, readErr := readAll(ctx, client, h.Position, readPage, func(ev *esdb.RecordedEvent) (bool, error) {
		_, ok := orderID(ev.StreamID) // the same streams the projections apply
		return ok, nil
	})
	// Even a read cut short (deadline, node gone) counted a correct prefix: keep it, so that
	// a large log is counted across several calls.
	if last > h.Position {
		// The context may be done: record with a short, fresh one.
		wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		err := s.recordLogHead(wctx, s.w, last, h.OrderEvents+n)
		cancel()
		if err != nil {
			return LogHead{}, err
		}
	}
	if readErr != nil {
		return LogHead{}, readErr
	}
	return s.LogHead(ctx)
}

type execContexter interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// recordLogHead stores a count unless another counter got further meanwhile.
func (s *Store) recordLogHead(ctx context.Context, db execContexter, position uint64, orderEvents int64) error {
	_, err := db.ExecContext(ctx, s.q(`INSERT INTO log_head (id, position, order_events, counted_at) VALUES (1, ?, ?, ?)
ON CONFLICT (id) DO UPDATE SET position = excluded.position, order_events = excluded.order_events, counted_at = excluded.counted_at
WHERE excluded.position >= log_head.position`), int64(position), orderEvents, formatTime(s.now()))
	if err != nil {
		return fmt.Errorf("projections: record log head: %w", err)
	}
	return nil
}

// readAll reads $all forwards from after position from (0: from the start) to its end, in
// pages of page events, calling fn for each event; fn reports whether the event counts. It returns the
// position of the last event read (from if none) and the number of counted events.
func readAll(ctx context.Context, client *esdb.Client, from uint64, page uint64, fn func(*esdb.RecordedEvent) (bool, error)) (uint64, int64, error) {
	last := from
	var counted int64
	for {
		var start esdb.AllPosition = esdb.Start{}
		if last > 0 {
			start = esdb.Position{Commit: last, Prepare: last}
		}
		stream, err := client.ReadAll(ctx, esdb.ReadAllOptions{Direction: esdb.Forwards, From: start}, page)
		if err != nil {
			return last, counted, fmt.Errorf("%w: %w", ErrLog, eventstore.Translate(ctx, "read $all", err))
		}
		got := 0
		for {
			re, err := stream.Recv()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				stream.Close()
				return last, counted, fmt.Errorf("%w: %w", ErrLog, eventstore.Translate(ctx, "read $all", err))
			}
			got++
			ev := re.OriginalEvent()
			if ev == nil {
				continue
			}
			p := ev.Position.Commit
			if last > 0 && p <= last {
				continue // the start position is inclusive
			}
			ok, err := fn(ev)
			if err != nil {
				stream.Close()
				return last, counted, err
			}
			if ok {
				counted++
			}
			last = p
		}
		stream.Close()
		if uint64(got) < page {
			return last, counted, nil
		}
	}
}
