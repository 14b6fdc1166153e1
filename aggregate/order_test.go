package aggregate

import (
	"errors"
	"math"
	"testing"
	"time"
)

func cmds(c ...func(*Order) error) []func(*Order) error { return c }

func validPlace() PlaceOrder {
	return PlaceOrder{Customer: "ann@example.com", Lines: twoLines(), Currency: "EUR"}
}

func placeWith(edit func(*PlaceOrder)) func(*Order) error {
	cmd := validPlace()
	edit(&cmd)
	return place(cmd, t0)
}

func TestPlace(t *testing.T) {
	berlin := time.FixedZone("CET", 3600)
	runScenarios(t, []scenario{
		{
			name: "new order is placed with its total",
			when: place(validPlace(), t0),
			then: []Event{placed()},
		},
		{
			name: "time is stored in UTC",
			when: place(validPlace(), t0.In(berlin)),
			then: []Event{placed()},
		},
		{
			name: "free line with a paid one",
			when: placeWith(func(c *PlaceOrder) {
				c.Lines = []Line{{SKU: "GIFT", Quantity: 1, UnitPrice: 0}, {SKU: "A", Quantity: 1, UnitPrice: 5}}
			}),
			then: []Event{OrderPlaced{OrderID: orderID, Customer: "ann@example.com", Currency: "EUR", Total: 5, PlacedAt: t0,
				Lines: []Line{{SKU: "GIFT", Quantity: 1, UnitPrice: 0}, {SKU: "A", Quantity: 1, UnitPrice: 5}}}},
		},
		{
			name: "line total of exactly MaxInt64",
			when: placeWith(func(c *PlaceOrder) { c.Lines = []Line{{SKU: "A", Quantity: 1, UnitPrice: math.MaxInt64}} }),
			then: []Event{OrderPlaced{OrderID: orderID, Customer: "ann@example.com", Currency: "EUR", Total: math.MaxInt64, PlacedAt: t0,
				Lines: []Line{{SKU: "A", Quantity: 1, UnitPrice: math.MaxInt64}}}},
		},
		{
			name: "customer address with plus, subdomain and no TLD dot",
			when: placeWith(func(c *PlaceOrder) { c.Customer = "a.b+shop@mail.example.co.uk" }),
			then: []Event{func() Event { e := placed(); e.Customer = "a.b+shop@mail.example.co.uk"; return e }()},
		},
		{name: "already placed", given: []Event{placed()}, when: place(validPlace(), t1), wantErr: ErrOrderExists},
		{name: "already paid", given: []Event{placed(), paid("p1")}, when: place(validPlace(), t2), wantErr: ErrOrderExists},
		{name: "already cancelled", given: []Event{placed(), cancelled("x")}, when: place(validPlace(), t3), wantErr: ErrOrderExists},
		{
			name: "state error before argument error", given: []Event{placed()},
			when: place(PlaceOrder{}, t1), wantErr: ErrOrderExists,
		},
		{
			name: "customer checked before currency and lines",
			when: place(PlaceOrder{Customer: "nope", Currency: "x"}, t0), wantErr: ErrInvalidCustomer,
		},
		{
			name: "currency checked before lines",
			when: place(PlaceOrder{Customer: "ann@example.com", Currency: "x"}, t0), wantErr: ErrInvalidCurrency,
		},
	})
}

func TestPlaceInvalidCustomer(t *testing.T) {
	for name, customer := range map[string]string{
		"empty":            "",
		"no at sign":       "ann.example.com",
		"no domain":        "ann@",
		"no local part":    "@example.com",
		"display name":     "Ann <ann@example.com>",
		"angle brackets":   "<ann@example.com>",
		"comment":          "ann@example.com (Ann)",
		"leading space":    " ann@example.com",
		"trailing space":   "ann@example.com ",
		"two addresses":    "ann@example.com, bob@example.com",
		"quoted local":     `"ann smith"@example.com`,
		"space inside":     "ann smith@example.com",
		"two at signs":     "ann@bob@example.com",
		"newline injected": "ann@example.com\r\nBcc: eve@example.com",
	} {
		t.Run(name, func(t *testing.T) {
			given(t).when(placeWith(func(c *PlaceOrder) { c.Customer = customer })).thenErr(ErrInvalidCustomer)
		})
	}
}

func TestPlaceInvalidCurrency(t *testing.T) {
	for name, currency := range map[string]string{
		"empty":      "",
		"two":        "EU",
		"four":       "EURO",
		"lower case": "eur",
		"mixed case": "Eur",
		"digit":      "EU1",
		"non-ASCII":  "ÉUR",
		"space":      "EU ",
	} {
		t.Run(name, func(t *testing.T) {
			given(t).when(placeWith(func(c *PlaceOrder) { c.Currency = currency })).thenErr(ErrInvalidCurrency)
		})
	}
}

func TestPlaceInvalidLines(t *testing.T) {
	half := int64(math.MaxInt64/2 + 1)
	tests := []struct {
		name  string
		lines []Line
		want  error
	}{
		{"nil lines", nil, ErrNoLines},
		{"empty lines", []Line{}, ErrNoLines},
		{"empty SKU", []Line{{SKU: "", Quantity: 1, UnitPrice: 1}}, ErrInvalidLine},
		{"blank SKU", []Line{{SKU: " \t", Quantity: 1, UnitPrice: 1}}, ErrInvalidLine},
		{"zero quantity", []Line{{SKU: "A", Quantity: 0, UnitPrice: 1}}, ErrInvalidLine},
		{"negative quantity", []Line{{SKU: "A", Quantity: -1, UnitPrice: 1}}, ErrInvalidLine},
		{"negative unit price", []Line{{SKU: "A", Quantity: 1, UnitPrice: -1}}, ErrInvalidLine},
		{"second line invalid", []Line{{SKU: "A", Quantity: 1, UnitPrice: 1}, {SKU: "B", Quantity: 0, UnitPrice: 1}}, ErrInvalidLine},
		{"quantity times price overflows", []Line{{SKU: "A", Quantity: 2, UnitPrice: half}}, ErrInvalidLine},
		{"quantity times price overflows, large quantity", []Line{{SKU: "A", Quantity: math.MaxInt64, UnitPrice: 2}}, ErrInvalidLine},
		{"quantity times price wraps to a small positive value", []Line{{SKU: "A", Quantity: 1 << 32, UnitPrice: 1<<32 + 1}}, ErrInvalidLine},
		{"total overflows", []Line{{SKU: "A", Quantity: 1, UnitPrice: half}, {SKU: "B", Quantity: 1, UnitPrice: half}}, ErrInvalidLine},
		{"total overflows by one", []Line{{SKU: "A", Quantity: 1, UnitPrice: math.MaxInt64}, {SKU: "B", Quantity: 1, UnitPrice: 1}}, ErrInvalidLine},
		{"total is zero", []Line{{SKU: "GIFT", Quantity: 3, UnitPrice: 0}}, ErrInvalidLine},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			given(t).when(placeWith(func(c *PlaceOrder) { c.Lines = tc.lines })).thenErr(tc.want)
		})
	}
}

func TestPlaceEmptyOrderID(t *testing.T) {
	o := New("")
	if err := o.Place(validPlace(), t0); !errors.Is(err, ErrInvalidOrderID) {
		t.Fatalf("Place on New(\"\") = %v, want ErrInvalidOrderID", err)
	}
	if len(o.Changes()) != 0 || o.Status() != StatusNone {
		t.Fatalf("failed Place changed the order: %v, %q", o.Changes(), o.Status())
	}
}

func TestPay(t *testing.T) {
	paidThenCancelled := []Event{placed(), paid("p1"), cancelled("changed mind")}
	runScenarios(t, []scenario{
		{name: "placed order is paid", given: []Event{placed()}, when: pay("p1", twoLinesTotal, t1), then: []Event{paid("p1")}},
		{
			name: "time is stored in UTC", given: []Event{placed()},
			when: pay("p1", twoLinesTotal, t1.In(time.FixedZone("EST", -5*3600))), then: []Event{paid("p1")},
		},
		{name: "same reference again is a no-op", given: []Event{placed(), paid("p1")}, when: pay("p1", twoLinesTotal, t2)},
		{name: "same reference with another amount is still a no-op", given: []Event{placed(), paid("p1")}, when: pay("p1", 1, t2)},
		{name: "same reference after shipping is a no-op", given: []Event{placed(), paid("p1"), shipped()}, when: pay("p1", twoLinesTotal, t3)},
		{name: "same reference after cancelling a paid order is a no-op", given: paidThenCancelled, when: pay("p1", twoLinesTotal, t3)},
		{
			name: "same reference twice on one instance records once", given: []Event{placed()},
			before: cmds(pay("p1", twoLinesTotal, t1)), when: pay("p1", twoLinesTotal, t2), then: []Event{paid("p1")},
		},
		{name: "never placed", when: pay("p1", twoLinesTotal, t1), wantErr: ErrOrderNotFound},
		{name: "never placed, bad arguments too", when: pay("", 0, t1), wantErr: ErrOrderNotFound},
		{name: "cancelled", given: []Event{placed(), cancelled("")}, when: pay("p1", twoLinesTotal, t1), wantErr: ErrOrderCancelled},
		{name: "paid then cancelled, another reference", given: paidThenCancelled, when: pay("p2", twoLinesTotal, t3), wantErr: ErrOrderCancelled},
		{name: "another reference", given: []Event{placed(), paid("p1")}, when: pay("p2", twoLinesTotal, t2), wantErr: ErrAlreadyPaid},
		{name: "another reference after shipping", given: []Event{placed(), paid("p1"), shipped()}, when: pay("p2", twoLinesTotal, t3), wantErr: ErrAlreadyPaid},
		{name: "another reference on one instance", given: []Event{placed()}, before: cmds(pay("p1", twoLinesTotal, t1)), when: pay("p2", twoLinesTotal, t2), wantErr: ErrAlreadyPaid},
		{name: "empty reference", given: []Event{placed()}, when: pay("", twoLinesTotal, t1), wantErr: ErrInvalidPaymentRef},
		{name: "empty reference on a paid order", given: []Event{placed(), paid("p1")}, when: pay("", twoLinesTotal, t1), wantErr: ErrAlreadyPaid},
		{name: "zero amount", given: []Event{placed()}, when: pay("p1", 0, t1), wantErr: ErrInvalidAmount},
		{name: "negative amount", given: []Event{placed()}, when: pay("p1", -twoLinesTotal, t1), wantErr: ErrInvalidAmount},
		{name: "amount below total", given: []Event{placed()}, when: pay("p1", twoLinesTotal-1, t1), wantErr: ErrAmountMismatch},
		{name: "amount above total", given: []Event{placed()}, when: pay("p1", twoLinesTotal+1, t1), wantErr: ErrAmountMismatch},
	})
}

func TestShip(t *testing.T) {
	runScenarios(t, []scenario{
		{name: "paid order is shipped", given: []Event{placed(), paid("p1")}, when: ship(t2), then: []Event{shipped()}},
		{name: "never placed", when: ship(t2), wantErr: ErrOrderNotFound},
		{name: "not paid", given: []Event{placed()}, when: ship(t2), wantErr: ErrNotPaid},
		{name: "cancelled", given: []Event{placed(), cancelled("")}, when: ship(t2), wantErr: ErrOrderCancelled},
		{name: "paid then cancelled", given: []Event{placed(), paid("p1"), cancelled("")}, when: ship(t2), wantErr: ErrOrderCancelled},
		{name: "twice", given: []Event{placed(), paid("p1"), shipped()}, when: ship(t3), wantErr: ErrAlreadyShipped},
		{name: "twice on one instance", given: []Event{placed(), paid("p1")}, before: cmds(ship(t2)), when: ship(t3), wantErr: ErrAlreadyShipped},
	})
}

func TestCancel(t *testing.T) {
	runScenarios(t, []scenario{
		{name: "placed order is cancelled", given: []Event{placed()}, when: cancel("out of stock", t3), then: []Event{cancelled("out of stock")}},
		{name: "paid order is cancelled", given: []Event{placed(), paid("p1")}, when: cancel("refund", t3), then: []Event{cancelled("refund")}},
		{name: "reason is optional", given: []Event{placed()}, when: cancel("", t3), then: []Event{cancelled("")}},
		{name: "never placed", when: cancel("x", t3), wantErr: ErrOrderNotFound},
		{name: "twice", given: []Event{placed(), cancelled("x")}, when: cancel("x", t3), wantErr: ErrAlreadyCancelled},
		{name: "after shipping", given: []Event{placed(), paid("p1"), shipped()}, when: cancel("x", t3), wantErr: ErrAlreadyShipped},
	})
}

func TestCommandsOnOneInstance(t *testing.T) {
	runScenarios(t, []scenario{
		{
			name:   "place, pay, ship",
			before: cmds(place(validPlace(), t0), pay("p1", twoLinesTotal, t1)),
			when:   ship(t2),
			then:   []Event{placed(), paid("p1"), shipped()},
		},
		{
			name:   "place, pay, cancel",
			before: cmds(place(validPlace(), t0), pay("p1", twoLinesTotal, t1)),
			when:   cancel("why", t3),
			then:   []Event{placed(), paid("p1"), cancelled("why")},
		},
		{
			name:   "pay, ship and a repeated pay after loading",
			given:  []Event{placed()},
			before: cmds(pay("p1", twoLinesTotal, t1), ship(t2)),
			when:   pay("p1", twoLinesTotal, t3),
			then:   []Event{paid("p1"), shipped()},
		},
	})
}

func TestFailedCommandOnOneInstance(t *testing.T) {
	runScenarios(t, []scenario{
		{name: "ship before paying after place", before: cmds(place(validPlace(), t0)), when: ship(t1), wantErr: ErrNotPaid},
		{name: "pay after cancel", before: cmds(place(validPlace(), t0), cancel("", t1)), when: pay("p1", twoLinesTotal, t2), wantErr: ErrOrderCancelled},
		{name: "place twice", before: cmds(place(validPlace(), t0)), when: place(validPlace(), t1), wantErr: ErrOrderExists},
		{name: "cancel after ship", given: []Event{placed()}, before: cmds(pay("p1", twoLinesTotal, t1), ship(t2)), when: cancel("", t3), wantErr: ErrAlreadyShipped},
	})
}

// A failed command in the middle of a sequence records nothing of its own.
func TestFailedCommandKeepsEarlierChanges(t *testing.T) {
	o := New(orderID)
	if err := o.Place(validPlace(), t0); err != nil {
		t.Fatal(err)
	}
	if err := o.Ship(t1); !errors.Is(err, ErrNotPaid) {
		t.Fatalf("Ship = %v, want ErrNotPaid", err)
	}
	if got := o.Changes(); len(got) != 1 || got[0].EventType() != TypeOrderPlaced {
		t.Fatalf("Changes() = %#v, want only OrderPlaced", got)
	}
	if o.Status() != StatusPlaced {
		t.Fatalf("Status() = %q, want placed", o.Status())
	}
}
