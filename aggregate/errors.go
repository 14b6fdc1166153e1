package aggregate

import "errors"

// Argument errors: a command's input is invalid whatever the order's state.
var (
	ErrInvalidOrderID    = errors.New("aggregate: invalid order id")
	ErrInvalidCustomer   = errors.New("aggregate: invalid customer e-mail address")
	ErrNoLines           = errors.New("aggregate: order has no lines")
	ErrInvalidLine       = errors.New("aggregate: invalid order line")
	ErrInvalidCurrency   = errors.New("aggregate: invalid currency")
	ErrInvalidAmount     = errors.New("aggregate: invalid amount")
	ErrInvalidPaymentRef = errors.New("aggregate: invalid payment reference")
	ErrAmountMismatch    = errors.New("aggregate: payment amount does not match order total")
)

// State errors: the command is not allowed in the order's current state.
var (
	ErrOrderExists      = errors.New("aggregate: order already placed")
	ErrOrderNotFound    = errors.New("aggregate: order not found")
	ErrAlreadyPaid      = errors.New("aggregate: order already paid")
	ErrOrderCancelled   = errors.New("aggregate: order cancelled")
	ErrNotPaid          = errors.New("aggregate: order not paid")
	ErrAlreadyShipped   = errors.New("aggregate: order already shipped")
	ErrAlreadyCancelled = errors.New("aggregate: order already cancelled")
)

// Event and history errors.
var (
	ErrUnknownEventType = errors.New("aggregate: unknown event type")
	// ErrInvalidEventData: the data of a known event type is not a JSON object of its shape.
	// The underlying encoding/json error, if any, is wrapped as well.
	ErrInvalidEventData = errors.New("aggregate: invalid event data")
	ErrCorruptHistory   = errors.New("aggregate: corrupt history")
	// ErrPendingChanges: Apply was called on an order with pending changes; committed events
	// must be folded before any command runs.
	ErrPendingChanges = errors.New("aggregate: order has pending changes")
)
