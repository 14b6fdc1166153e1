package projections

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/orderstore/orders/subscribers"
)

// Apply applies delivered events to the projection name in one transaction, together with
// its checkpoint row: either all of it commits or nothing does. Events already applied are
// ignored (duplicates); an event whose predecessor in its order stream is not applied yet
// fails the whole call with ErrOutOfOrder, which the consumer loop retries; an undecodable
// event fails with a subscribers.Permanent ErrMalformedEvent, which the loop parks.
func (s *Store) Apply(ctx context.Context, name string, evs []subscribers.Event) error {
	p, err := lookup(name)
	if err != nil {
		return err
	}
	in := make([]event, len(evs))
	for i, e := range evs {
		in[i] = event{Stream: e.Stream, Revision: e.Revision, Position: e.Position, Type: e.Type, Data: e.Data}
	}
	return s.applyLive(ctx, p, in)
}

// Handler returns the batch handler of projection name for a subscribers.Consumer.
func (s *Store) Handler(name string) (subscribers.BatchHandler, error) {
	if _, err := lookup(name); err != nil {
		return nil, err
	}
	return func(ctx context.Context, evs []subscribers.Event) error { return s.Apply(ctx, name, evs) }, nil
}

func (s *Store) applyLive(ctx context.Context, p *projection, evs []event) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("projections: %s: begin: %w", p.name, err)
	}
	defer func() { _ = tx.Rollback() }()
	x := &execer{d: s.d, tx: tx}
	applied, maxPos, err := applyEvents(ctx, x, p, func(t string) string { return t }, evs)
	if err != nil {
		return err
	}
	if applied > 0 {
		_, err := x.exec(ctx, `INSERT INTO projection_positions (name, position, events_applied, last_applied_at) VALUES (?, ?, ?, ?)
ON CONFLICT (name) DO UPDATE SET
	position = CASE WHEN excluded.position > projection_positions.position THEN excluded.position ELSE projection_positions.position END,
	events_applied = projection_positions.events_applied + excluded.events_applied,
	last_applied_at = excluded.last_applied_at`, p.name, int64(maxPos), applied, formatTime(s.now()))
		if err != nil {
			return fmt.Errorf("projections: %s: record position: %w", p.name, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("projections: %s: commit: %w", p.name, err)
	}
	return nil
}

// applyEvents applies evs in order through one batch of p and flushes it. It returns how
// many events changed the model and the highest position among them.
func applyEvents(ctx context.Context, x *execer, p *projection, tn func(string) string, evs []event) (int64, uint64, error) {
	// Order rows are locked in (stream, revision) order, so that concurrent batches of
	// several processes touching the same orders do not deadlock; within an order the
	// revision order is kept, and across orders the order of application does not matter.
	if !slices.IsSortedFunc(evs, compareEvents) {
		evs = slices.SortedStableFunc(slices.Values(evs), compareEvents)
	}
	b := p.newBatch(tn)
	var applied int64
	var maxPos uint64
	for _, ev := range evs {
		if _, ok := orderID(ev.Stream); !ok {
			continue // not an order stream: nothing of ours
		}
		e, err := decode(ev)
		if err != nil {
			return 0, 0, subscribers.Permanent(err)
		}
		ok, err := b.apply(ctx, x, ev, e)
		if err != nil {
			if errors.Is(err, ErrMalformedEvent) {
				return 0, 0, subscribers.Permanent(err)
			}
			if errors.Is(err, ErrOutOfOrder) {
				return 0, 0, err
			}
			return 0, 0, fmt.Errorf("projections: %s: apply %s@%d: %w", p.name, ev.Stream, ev.Revision, err)
		}
		if ok {
			applied++
			maxPos = max(maxPos, ev.Position)
		}
	}
	if err := b.flush(ctx, x); err != nil {
		return 0, 0, fmt.Errorf("projections: %s: write totals: %w", p.name, err)
	}
	return applied, maxPos, nil
}

func compareEvents(a, b event) int {
	if c := cmp.Compare(a.Stream, b.Stream); c != 0 {
		return c
	}
	return cmp.Compare(a.Revision, b.Revision)
}
