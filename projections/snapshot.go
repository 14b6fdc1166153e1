package projections

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
)

// Tables returns the tables of projection name: its per-order table first, then its totals
// table if it has one.
func Tables(name string) ([]string, error) {
	p, err := lookup(name)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(p.tables))
	for i, t := range p.tables {
		out[i] = t.name
	}
	return out, nil
}

// Row is one table row as text: column name → value, NULL absent.
type Row = map[string]string

// Snapshot reads every row of the named tables in one read transaction (a consistent
// snapshot: a batch's per-order rows and totals are either both in it or both not), as text,
// together with the projections' checkpoints at that moment.
func (s *Store) Snapshot(ctx context.Context, tables []string) (map[string][]Row, []Checkpoint, error) {
	opts := &sql.TxOptions{ReadOnly: true}
	if s.d == dialectPostgres {
		opts.Isolation = sql.LevelRepeatableRead
	}
	tx, err := s.r.BeginTx(ctx, opts)
	if err != nil {
		return nil, nil, fmt.Errorf("projections: snapshot: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	out := make(map[string][]Row, len(tables))
	for _, t := range tables {
		if _, err := tableOwner(t); err != nil {
			return nil, nil, err
		}
		rows, err := tx.QueryContext(ctx, "SELECT * FROM "+t)
		if err != nil {
			return nil, nil, fmt.Errorf("projections: snapshot %s: %w", t, err)
		}
		cols, err := rows.Columns()
		if err != nil {
			rows.Close()
			return nil, nil, fmt.Errorf("projections: snapshot %s: %w", t, err)
		}
		var list []Row
		for rows.Next() {
			vals := make([]sql.NullString, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				rows.Close()
				return nil, nil, fmt.Errorf("projections: snapshot %s: %w", t, err)
			}
			r := make(Row, len(cols))
			for i, v := range vals {
				if v.Valid {
					r[cols[i]] = v.String
				}
			}
			list = append(list, r)
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, nil, fmt.Errorf("projections: snapshot %s: %w", t, err)
		}
		out[t] = list
	}
	cps, err := checkpoints(ctx, tx)
	if err != nil {
		return nil, nil, err
	}
	return out, cps, nil
}

// tableOwner is the projection owning table t.
func tableOwner(t string) (string, error) {
	for _, n := range Names() {
		for _, spec := range registry[n].tables {
			if spec.name == t {
				return n, nil
			}
		}
	}
	return "", fmt.Errorf("%w: no projection owns table %q", ErrUnknownProjection, t)
}

// LogEvent is an event of an order stream as read from $all.
type LogEvent struct {
	Stream   string
	Revision uint64
	Position uint64
	Type     string
	Data     []byte
}

// ReadOrderEvents reads $all forwards after position from (0: from the start) to its end,
// calling fn for every event of an order stream, and returns the position of the last
// event read (from if none).
func ReadOrderEvents(ctx context.Context, client *esdb.Client, from uint64, fn func(LogEvent) error) (uint64, error) {
	last, _, err := readAll(ctx, client, from, rebuildPage, func(ev *esdb.RecordedEvent) (bool, error) {
		if _, ok := orderID(ev.StreamID); !ok {
			return false, nil
		}
		return true, fn(LogEvent{Stream: ev.StreamID, Revision: ev.EventNumber, Position: ev.Position.Commit, Type: ev.EventType, Data: ev.Data})
	})
	return last, err
}
