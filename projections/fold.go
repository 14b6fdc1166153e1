package projections

import (
	"errors"
	"fmt"

	"github.com/orderstore/orders/aggregate"
)

// orderRow is one order's per-order state in memory: the union of the three projections'
// per-order columns. A projection loads and stores only its own columns (stateSpec); the
// fold is the same for all, so they cannot disagree about an order.
type orderRow struct {
	id     string
	stored int64 // applied_revision of the row in the table as loaded or last written; -1: no row
	rev    int64 // applied revision after the fold; -1: nothing applied
	pos    int64 // $all position of the last applied event

	customer, status, currency string
	total, lines               int64
	paymentRef                 string
	paidAmount                 int64
	placedAt                   string
	paidAt, shippedAt          nullString
	cancelledAt                nullString
	cancelReason               string
	updatedAt                  string
}

func newOrderRow(id string) *orderRow { return &orderRow{id: id, stored: -1, rev: -1} }

// decoded is an order event with its order id and decoded value (nil: unknown type).
type decoded struct {
	event
	id string
	e  aggregate.Event
}

// decodeEvent decodes an order event. Unknown event types give a nil value and known false:
// they advance the applied revision without other effect, so a newer writer's events do not
// block the model (the Store logs each unknown type once and counts them).
func decodeEvent(ev event) (e aggregate.Event, known bool, err error) {
	e, err = aggregate.DecodeEvent(ev.Type, ev.Data)
	if errors.Is(err, aggregate.ErrUnknownEventType) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("%w: %s@%d: %w", ErrMalformedEvent, ev.Stream, ev.Revision, err)
	}
	return e, true, nil
}

// fold applies one event to r. It reports false for a duplicate (r is at ev's revision or
// later), ErrOutOfOrder when ev's predecessor is not applied yet, and ErrMalformedEvent for
// an OrderPlaced that is not its stream's first event or a first event that is not an
// OrderPlaced. The columns change exactly as the events say; transitions are the
// aggregate's business, the read model records what was committed.
func fold(r *orderRow, ev decoded) (bool, error) {
	rev := int64(ev.Revision)
	placed, isPlaced := ev.e.(aggregate.OrderPlaced)
	switch {
	case isPlaced && rev != 0:
		return false, fmt.Errorf("%w: %s@%d: %s must be the first event of its stream", ErrMalformedEvent, ev.Stream, ev.Revision, ev.Type)
	case !isPlaced && rev == 0:
		return false, fmt.Errorf("%w: %s@0: %s cannot be the first event of its stream", ErrMalformedEvent, ev.Stream, ev.Type)
	case r.rev >= rev:
		return false, nil
	case r.rev != rev-1:
		return false, fmt.Errorf("%w: %s@%d arrived while revision %d is applied", ErrOutOfOrder, ev.Stream, ev.Revision, r.rev)
	}
	r.rev, r.pos = rev, int64(ev.Position)
	switch e := ev.e.(type) {
	case aggregate.OrderPlaced:
		at := formatTime(placed.PlacedAt)
		*r = orderRow{id: r.id, stored: r.stored, rev: rev, pos: r.pos,
			customer: e.Customer, status: string(aggregate.StatusPlaced), currency: e.Currency,
			total: e.Total, lines: int64(len(e.Lines)), placedAt: at, updatedAt: at}
	case aggregate.OrderPaid:
		at := formatTime(e.PaidAt)
		r.status, r.paymentRef, r.paidAmount = string(aggregate.StatusPaid), e.PaymentRef, e.Amount
		r.paidAt, r.updatedAt = nullString{String: at, Valid: true}, at
	case aggregate.OrderShipped:
		at := formatTime(e.ShippedAt)
		r.status, r.shippedAt, r.updatedAt = string(aggregate.StatusShipped), nullString{String: at, Valid: true}, at
	case aggregate.OrderCancelled:
		at := formatTime(e.CancelledAt)
		r.status, r.cancelReason = string(aggregate.StatusCancelled), e.Reason
		r.cancelledAt, r.updatedAt = nullString{String: at, Valid: true}, at
	}
	return true, nil
}
