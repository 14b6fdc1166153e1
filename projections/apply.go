package projections

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/orderstore/orders/subscribers"
)

// liveAttempts is how many times a batch is applied in fresh transactions when another
// process changed the same rows meanwhile (ErrConcurrentUpdate) before the error goes to
// the consumer loop, which retries it later.
const liveAttempts = 3

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

// decodeBatch keeps the order events of evs, decoded once each, sorted by (stream,
// revision): within an order the revision order is kept, and across orders the order of
// application does not matter. Unknown event types are noted for projection name.
func (s *Store) decodeBatch(name string, evs []event) ([]decoded, error) {
	out := make([]decoded, 0, len(evs))
	for _, ev := range evs {
		id, ok := orderID(ev.Stream)
		if !ok {
			continue // not an order stream: nothing of ours
		}
		e, known, err := decodeEvent(ev)
		if err != nil {
			return nil, subscribers.Permanent(err)
		}
		if !known {
			s.noteUnknown(name, ev.Type)
		}
		out = append(out, decoded{event: ev, id: id, e: e})
	}
	if !slices.IsSortedFunc(out, compareDecoded) {
		slices.SortStableFunc(out, compareDecoded)
	}
	return out, nil
}

func compareDecoded(a, b decoded) int {
	if c := cmp.Compare(a.Stream, b.Stream); c != 0 {
		return c
	}
	return cmp.Compare(a.Revision, b.Revision)
}

func (s *Store) applyLive(ctx context.Context, p *projection, evs []event) error {
	in, err := s.decodeBatch(p.name, evs)
	if err != nil {
		return err
	}
	for attempt := 1; ; attempt++ {
		err := s.applyLiveOnce(ctx, p, in)
		if !errors.Is(err, ErrConcurrentUpdate) || attempt == liveAttempts || ctx.Err() != nil {
			return err
		}
	}
}

func (s *Store) applyLiveOnce(ctx context.Context, p *projection, in []decoded) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("projections: %s: begin: %w", p.name, err)
	}
	defer func() { _ = tx.Rollback() }()
	x := &execer{d: s.d, tx: tx}
	a := newApplier(x, p, func(t string) string { return t })
	a.live = true
	applied, maxPos, err := a.apply(ctx, in)
	if err != nil {
		return wrapApplyError(p.name, err)
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

// wrapApplyError makes a malformed event permanent (parked) and keeps the retryable ones
// recognisable.
func wrapApplyError(name string, err error) error {
	switch {
	case errors.Is(err, ErrMalformedEvent):
		return subscribers.Permanent(err)
	case errors.Is(err, ErrOutOfOrder):
		return err
	}
	return fmt.Errorf("projections: %s: %w", name, err)
}
