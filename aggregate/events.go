package aggregate

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"time"
)

// Event type names: stable, stored with every event, never derived from Go type names.
const (
	TypeOrderPlaced    = "OrderPlaced"
	TypeOrderPaid      = "OrderPaid"
	TypeOrderShipped   = "OrderShipped"
	TypeOrderCancelled = "OrderCancelled"
)

// Event is a fact about an order. The concrete types are OrderPlaced, OrderPaid, OrderShipped
// and OrderCancelled.
type Event interface{ EventType() string }

// decoders is the list of event types: a type is known to this package, and so to every
// reader of the log, exactly when it is here. A new event type is added here first; the
// exhaustiveness tests (TestEveryEventType here, and the subscribers' tests over
// EventTypes) then fail until every place that must handle it does.
var decoders = map[string]func(data []byte) (Event, error){
	TypeOrderPlaced:    decode[OrderPlaced],
	TypeOrderPaid:      decode[OrderPaid],
	TypeOrderShipped:   decode[OrderShipped],
	TypeOrderCancelled: decode[OrderCancelled],
}

// EventTypes returns the name of every event type, sorted.
func EventTypes() []string {
	return slices.Sorted(maps.Keys(decoders))
}

// IsEventType reports whether name is one of EventTypes.
func IsEventType(name string) bool {
	_, ok := decoders[name]
	return ok
}

// Line is one line of an order. UnitPrice is in integer minor units of the order's currency.
type Line struct {
	SKU       string `json:"sku"`
	Quantity  int64  `json:"quantity"`
	UnitPrice int64  `json:"unitPrice"`
}

// OrderPlaced records a new order. Total = sum(Quantity*UnitPrice) over Lines.
type OrderPlaced struct {
	OrderID  string    `json:"orderId"`
	Customer string    `json:"customer"`
	Lines    []Line    `json:"lines"`
	Currency string    `json:"currency"`
	Total    int64     `json:"total"`
	PlacedAt time.Time `json:"placedAt"`
}

// OrderPaid records the payment of the order's total.
type OrderPaid struct {
	OrderID    string    `json:"orderId"`
	PaymentRef string    `json:"paymentRef"`
	Amount     int64     `json:"amount"`
	Currency   string    `json:"currency"`
	PaidAt     time.Time `json:"paidAt"`
}

// OrderShipped records the shipping of a paid order.
type OrderShipped struct {
	OrderID   string    `json:"orderId"`
	ShippedAt time.Time `json:"shippedAt"`
}

// OrderCancelled records the cancellation of a placed or paid order.
type OrderCancelled struct {
	OrderID     string    `json:"orderId"`
	Reason      string    `json:"reason,omitempty"`
	CancelledAt time.Time `json:"cancelledAt"`
}

// EventType returns TypeOrderPlaced.
func (OrderPlaced) EventType() string { return TypeOrderPlaced }

// EventType returns TypeOrderPaid.
func (OrderPaid) EventType() string { return TypeOrderPaid }

// EventType returns TypeOrderShipped.
func (OrderShipped) EventType() string { return TypeOrderShipped }

// EventType returns TypeOrderCancelled.
func (OrderCancelled) EventType() string { return TypeOrderCancelled }

// DecodeEvent turns a stored event (its type name and JSON data) into an Event of the
// matching value type. It fails with ErrUnknownEventType for any other type name, and with
// ErrInvalidEventData (also wrapping the encoding/json error, if any) when data is not a
// JSON object that decodes into that type. Unknown fields are ignored, so events written by
// a newer version with added fields still decode.
func DecodeEvent(eventType string, data []byte) (Event, error) {
	d, ok := decoders[eventType]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownEventType, eventType)
	}
	return d(data)
}

func decode[E Event](data []byte) (Event, error) {
	var e E
	// json.Unmarshal accepts "null" as a no-op; an event must be an object.
	if t := bytes.TrimLeft(data, " \t\r\n"); len(t) == 0 || t[0] != '{' {
		return nil, fmt.Errorf("%w: %s: not a JSON object", ErrInvalidEventData, e.EventType())
	}
	if err := json.Unmarshal(data, &e); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrInvalidEventData, e.EventType(), err)
	}
	return e, nil
}

// EncodeEvent returns the JSON data of an event: json.Marshal of its value. It accepts the
// four event types of this package, as values or non-nil pointers, and fails with
// ErrUnknownEventType for anything else.
func EncodeEvent(e Event) ([]byte, error) {
	v, err := eventValue(e)
	if err != nil {
		return nil, err
	}
	data, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("aggregate: encode %s: %w", v.EventType(), err)
	}
	return data, nil
}

// eventValue returns e as one of the four value types, dereferencing non-nil pointers.
func eventValue(e Event) (Event, error) {
	var isNilPtr bool
	switch v := e.(type) {
	case OrderPlaced, OrderPaid, OrderShipped, OrderCancelled:
		return v, nil
	case *OrderPlaced:
		if isNilPtr = v == nil; !isNilPtr {
			return *v, nil
		}
	case *OrderPaid:
		if isNilPtr = v == nil; !isNilPtr {
			return *v, nil
		}
	case *OrderShipped:
		if isNilPtr = v == nil; !isNilPtr {
			return *v, nil
		}
	case *OrderCancelled:
		if isNilPtr = v == nil; !isNilPtr {
			return *v, nil
		}
	}
	if e == nil || isNilPtr {
		return nil, fmt.Errorf("%w: nil event (%T)", ErrUnknownEventType, e)
	}
	return nil, fmt.Errorf("%w: %T", ErrUnknownEventType, e)
}

// cloneEvent returns a copy of e that shares no memory with it.
func cloneEvent(e Event) Event {
	if p, ok := e.(OrderPlaced); ok {
		p.Lines = slices.Clone(p.Lines)
		return p
	}
	return e
}
