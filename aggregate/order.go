package aggregate

import (
	"fmt"
	"math"
	"net/mail"
	"slices"
	"strings"
	"time"
)

// Status is where an order is in its life cycle.
type Status string

// The statuses of an order. Placed -> Paid -> Shipped; Placed or Paid -> Cancelled.
const (
	StatusNone      Status = "" // not placed yet
	StatusPlaced    Status = "placed"
	StatusPaid      Status = "paid"
	StatusShipped   Status = "shipped"
	StatusCancelled Status = "cancelled"
)

// PlaceOrder is the input of Order.Place.
type PlaceOrder struct {
	Customer string
	Lines    []Line
	Currency string
}

// Order is the order aggregate. It is not safe for concurrent use; the repository loads a
// fresh one per command.
type Order struct {
	id      string
	version int64   // stream revision of the last event applied by Apply; -1 for none
	changes []Event // pending events recorded by commands, in order
	st      state
}

// state is everything folded from events; commands read it, only apply writes it.
type state struct {
	status       Status
	customer     string
	lines        []Line
	currency     string
	total        int64
	paymentRef   string
	placedAt     time.Time
	paidAt       time.Time
	shippedAt    time.Time
	cancelledAt  time.Time
	cancelReason string
}

// New returns an order with the given id that has not been placed: Status() == StatusNone,
// Version() == -1.
func New(id string) *Order {
	return &Order{id: id, version: -1}
}

// Load returns the order folded from its whole history, in stream order (revision 0 first),
// so Version() == len(history)-1. An event that cannot follow the ones before it fails the
// load with an error wrapping ErrCorruptHistory.
func Load(id string, history []Event) (*Order, error) {
	o := New(id)
	for i, e := range history {
		if err := o.Apply(e); err != nil {
			return nil, fmt.Errorf("aggregate: load order %q: event %d: %w", id, i, err)
		}
	}
	return o, nil
}

// Apply folds one committed event, the next one of the order's stream, and increments
// Version. It fails with ErrCorruptHistory, changing nothing, when the event does not belong
// to this order or cannot follow the events already applied, and with ErrPendingChanges
// when commands have recorded changes since the load.
func (o *Order) Apply(e Event) error {
	if len(o.changes) > 0 {
		return fmt.Errorf("%w: apply committed event after %d pending change(s)", ErrPendingChanges, len(o.changes))
	}
	v, err := eventValue(e)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrCorruptHistory, err)
	}
	if err := o.canApply(v); err != nil {
		return fmt.Errorf("%w: %s at revision %d: %w", ErrCorruptHistory, v.EventType(), o.version+1, err)
	}
	o.apply(v)
	o.version++
	return nil
}

// canApply reports why v cannot follow the current state, nil if it can. The transitions
// are exactly those the commands can record.
func (o *Order) canApply(v Event) error {
	var id string
	var from []Status
	switch e := v.(type) {
	case OrderPlaced:
		id, from = e.OrderID, []Status{StatusNone}
	case OrderPaid:
		id, from = e.OrderID, []Status{StatusPlaced}
	case OrderShipped:
		id, from = e.OrderID, []Status{StatusPaid}
	case OrderCancelled:
		id, from = e.OrderID, []Status{StatusPlaced, StatusPaid}
	default:
		// A type of EventTypes without a case here: TestEveryEventType fails on it.
		return fmt.Errorf("no transition for %s", v.EventType())
	}
	if id != o.id {
		return fmt.Errorf("event for order %q", id)
	}
	if !slices.Contains(from, o.st.status) {
		return fmt.Errorf("order is %q", o.st.status)
	}
	return nil
}

// apply folds a value event into the state, unconditionally.
func (o *Order) apply(v Event) {
	switch e := v.(type) {
	case OrderPlaced:
		o.st.status = StatusPlaced
		o.st.customer = e.Customer
		o.st.lines = slices.Clone(e.Lines)
		o.st.currency = e.Currency
		o.st.total = e.Total
		o.st.placedAt = e.PlacedAt.UTC()
	case OrderPaid:
		o.st.status = StatusPaid
		o.st.paymentRef = e.PaymentRef
		o.st.paidAt = e.PaidAt.UTC()
	case OrderShipped:
		o.st.status = StatusShipped
		o.st.shippedAt = e.ShippedAt.UTC()
	case OrderCancelled:
		o.st.status = StatusCancelled
		o.st.cancelReason = e.Reason
		o.st.cancelledAt = e.CancelledAt.UTC()
	}
}

// record applies a decided event to the state and keeps it as a pending change. Version
// does not move: it stays the revision the changes are appended after.
func (o *Order) record(e Event) {
	o.apply(e)
	o.changes = append(o.changes, e)
}

// ID returns the order's id.
func (o *Order) ID() string { return o.id }

// Status returns the order's status, StatusNone before it is placed.
func (o *Order) Status() Status { return o.st.status }

// Customer returns the customer's e-mail address.
func (o *Order) Customer() string { return o.st.customer }

// Lines returns a copy of the order's lines.
func (o *Order) Lines() []Line { return slices.Clone(o.st.lines) }

// Currency returns the order's ISO 4217 currency code.
func (o *Order) Currency() string { return o.st.currency }

// Total returns the order's total in minor units.
func (o *Order) Total() int64 { return o.st.total }

// PaymentRef returns the reference of the payment, empty if not paid.
func (o *Order) PaymentRef() string { return o.st.paymentRef }

// PlacedAt returns when the order was placed (UTC), zero if not placed.
func (o *Order) PlacedAt() time.Time { return o.st.placedAt }

// PaidAt returns when the order was paid (UTC), zero if not paid.
func (o *Order) PaidAt() time.Time { return o.st.paidAt }

// ShippedAt returns when the order was shipped (UTC), zero if not shipped.
func (o *Order) ShippedAt() time.Time { return o.st.shippedAt }

// CancelledAt returns when the order was cancelled (UTC), zero if not cancelled.
func (o *Order) CancelledAt() time.Time { return o.st.cancelledAt }

// CancelReason returns the reason given when the order was cancelled, if any.
func (o *Order) CancelReason() string { return o.st.cancelReason }

// Version returns the stream revision of the last event applied from history, -1 if none.
// The repository appends Changes() with this as the expected revision.
func (o *Order) Version() int64 { return o.version }

// Changes returns a copy of the pending events recorded by commands since the load, in
// order.
func (o *Order) Changes() []Event {
	out := make([]Event, len(o.changes))
	for i, e := range o.changes {
		out[i] = cloneEvent(e)
	}
	return out
}

// MarkCommitted tells the order that its pending changes were appended to its stream (with
// expected revision Version()): Version advances by their number and Changes becomes empty.
// The state already includes them.
func (o *Order) MarkCommitted() {
	o.version += int64(len(o.changes))
	o.changes = nil
}

// Place places the order: it records OrderPlaced with the order's total.
func (o *Order) Place(cmd PlaceOrder, now time.Time) error {
	if o.st.status != StatusNone {
		return fmt.Errorf("%w: order %q is %s", ErrOrderExists, o.id, o.st.status)
	}
	if o.id == "" {
		return fmt.Errorf("%w: empty", ErrInvalidOrderID)
	}
	if err := validateCustomer(cmd.Customer); err != nil {
		return err
	}
	if err := validateCurrency(cmd.Currency); err != nil {
		return err
	}
	total, err := orderTotal(cmd.Lines)
	if err != nil {
		return err
	}
	o.record(OrderPlaced{
		OrderID:  o.id,
		Customer: cmd.Customer,
		Lines:    slices.Clone(cmd.Lines),
		Currency: cmd.Currency,
		Total:    total,
		PlacedAt: now.UTC(),
	})
	return nil
}

// Pay records OrderPaid for a payment of the order's whole total. Paying again with the
// reference already recorded is a no-op: nil, nothing recorded, whatever happened since.
func (o *Order) Pay(paymentRef string, amount int64, now time.Time) error {
	switch {
	case o.st.status == StatusNone:
		return fmt.Errorf("%w: %q", ErrOrderNotFound, o.id)
	case o.st.paymentRef != "" && o.st.paymentRef == paymentRef:
		return nil
	case o.st.status == StatusCancelled:
		return fmt.Errorf("%w: %q", ErrOrderCancelled, o.id)
	case o.st.paymentRef != "":
		return fmt.Errorf("%w: order %q paid with reference %q", ErrAlreadyPaid, o.id, o.st.paymentRef)
	}
	if paymentRef == "" {
		return fmt.Errorf("%w: empty", ErrInvalidPaymentRef)
	}
	if amount <= 0 {
		return fmt.Errorf("%w: %d", ErrInvalidAmount, amount)
	}
	if amount != o.st.total {
		return fmt.Errorf("%w: paid %d, total %d", ErrAmountMismatch, amount, o.st.total)
	}
	o.record(OrderPaid{
		OrderID:    o.id,
		PaymentRef: paymentRef,
		Amount:     amount,
		Currency:   o.st.currency,
		PaidAt:     now.UTC(),
	})
	return nil
}

// Ship records OrderShipped for a paid order.
func (o *Order) Ship(now time.Time) error {
	switch o.st.status {
	case StatusNone:
		return fmt.Errorf("%w: %q", ErrOrderNotFound, o.id)
	case StatusCancelled:
		return fmt.Errorf("%w: %q", ErrOrderCancelled, o.id)
	case StatusShipped:
		return fmt.Errorf("%w: %q", ErrAlreadyShipped, o.id)
	case StatusPlaced:
		return fmt.Errorf("%w: %q", ErrNotPaid, o.id)
	}
	o.record(OrderShipped{OrderID: o.id, ShippedAt: now.UTC()})
	return nil
}

// Cancel records OrderCancelled for a placed or paid order; reason may be empty.
func (o *Order) Cancel(reason string, now time.Time) error {
	switch o.st.status {
	case StatusNone:
		return fmt.Errorf("%w: %q", ErrOrderNotFound, o.id)
	case StatusCancelled:
		return fmt.Errorf("%w: %q", ErrAlreadyCancelled, o.id)
	case StatusShipped:
		return fmt.Errorf("%w: %q", ErrAlreadyShipped, o.id)
	}
	o.record(OrderCancelled{OrderID: o.id, Reason: reason, CancelledAt: now.UTC()})
	return nil
}

// validateCustomer accepts a bare e-mail address only: what net/mail parses, with no
// display name, comment, quoting or surrounding space.
func validateCustomer(c string) error {
	a, err := mail.ParseAddress(c)
	if err != nil {
		return fmt.Errorf("%w: %q: %w", ErrInvalidCustomer, c, err)
	}
	if a.Name != "" || a.Address != c || !strings.Contains(c, "@") {
		return fmt.Errorf("%w: %q is not a bare address", ErrInvalidCustomer, c)
	}
	return nil
}

// validateCurrency accepts the ISO 4217 codes of the currencies list (three upper-case
// letters, e.g. EUR).
func validateCurrency(c string) error {
	if !IsCurrency(c) {
		return fmt.Errorf("%w: %q", ErrInvalidCurrency, c)
	}
	return nil
}

// orderTotal validates the lines and returns sum(Quantity*UnitPrice), which must be > 0,
// checking int64 overflow explicitly.
func orderTotal(lines []Line) (int64, error) {
	if len(lines) == 0 {
		return 0, ErrNoLines
	}
	var total int64
	for i, l := range lines {
		switch {
		case strings.TrimSpace(l.SKU) == "":
			return 0, fmt.Errorf("%w: line %d: empty SKU", ErrInvalidLine, i)
		case l.Quantity <= 0:
			return 0, fmt.Errorf("%w: line %d (%s): quantity %d", ErrInvalidLine, i, l.SKU, l.Quantity)
		case l.UnitPrice < 0:
			return 0, fmt.Errorf("%w: line %d (%s): unit price %d", ErrInvalidLine, i, l.SKU, l.UnitPrice)
		case l.UnitPrice > 0 && l.Quantity > math.MaxInt64/l.UnitPrice:
			return 0, fmt.Errorf("%w: line %d (%s): %d x %d overflows", ErrInvalidLine, i, l.SKU, l.Quantity, l.UnitPrice)
		}
		amount := l.Quantity * l.UnitPrice
		if total > math.MaxInt64-amount {
			return 0, fmt.Errorf("%w: line %d (%s): total overflows", ErrInvalidLine, i, l.SKU)
		}
		total += amount
	}
	if total == 0 {
		return 0, fmt.Errorf("%w: total is 0, nothing to pay", ErrInvalidLine)
	}
	return total, nil
}
