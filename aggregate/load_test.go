package aggregate

import (
	"errors"
	"reflect"
	"testing"
	"time"
)

func TestNew(t *testing.T) {
	o := New(orderID)
	if o.ID() != orderID || o.Version() != -1 || o.Status() != StatusNone {
		t.Fatalf("New: id %q version %d status %q", o.ID(), o.Version(), o.Status())
	}
	if len(o.Changes()) != 0 || o.Lines() != nil || o.Total() != 0 || !o.PlacedAt().IsZero() {
		t.Fatalf("New: not empty: %+v", o.st)
	}
}

func TestLoadAccessors(t *testing.T) {
	tests := []struct {
		name    string
		history []Event
		check   func(t *testing.T, o *Order)
	}{
		{"empty history", nil, func(t *testing.T, o *Order) {
			if o.Status() != StatusNone || o.Version() != -1 {
				t.Errorf("status %q version %d", o.Status(), o.Version())
			}
		}},
		{"placed", []Event{placed()}, func(t *testing.T, o *Order) {
			if o.Status() != StatusPlaced || o.Version() != 0 || o.Customer() != "ann@example.com" ||
				o.Currency() != "EUR" || o.Total() != twoLinesTotal || !reflect.DeepEqual(o.Lines(), twoLines()) ||
				!o.PlacedAt().Equal(t0) || o.PaymentRef() != "" || !o.PaidAt().IsZero() {
				t.Errorf("state %+v version %d", o.st, o.Version())
			}
		}},
		{"shipped", []Event{placed(), paid("p1"), shipped()}, func(t *testing.T, o *Order) {
			if o.Status() != StatusShipped || o.Version() != 2 || o.PaymentRef() != "p1" ||
				!o.PaidAt().Equal(t1) || !o.ShippedAt().Equal(t2) || !o.CancelledAt().IsZero() {
				t.Errorf("state %+v version %d", o.st, o.Version())
			}
		}},
		{"cancelled after payment", []Event{placed(), paid("p1"), cancelled("late")}, func(t *testing.T, o *Order) {
			if o.Status() != StatusCancelled || o.Version() != 2 || o.CancelReason() != "late" ||
				!o.CancelledAt().Equal(t3) || o.PaymentRef() != "p1" {
				t.Errorf("state %+v version %d", o.st, o.Version())
			}
		}},
		{"pointer events", []Event{new(placed()), new(paid("p1"))}, func(t *testing.T, o *Order) {
			if o.Status() != StatusPaid || o.Version() != 1 {
				t.Errorf("status %q version %d", o.Status(), o.Version())
			}
		}},
		{"times from other zones are folded to UTC", []Event{func() Event {
			e := placed()
			e.PlacedAt = t0.In(time.FixedZone("X", 7200))
			return e
		}()}, func(t *testing.T, o *Order) {
			if o.PlacedAt() != t0 {
				t.Errorf("PlacedAt() = %v, want %v (UTC)", o.PlacedAt(), t0)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o, err := Load(orderID, tc.history)
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, o)
		})
	}
}

type foreignEvent struct{}

func (foreignEvent) EventType() string { return "Foreign" }

func TestLoadRejectsCorruptHistory(t *testing.T) {
	other := placed()
	other.OrderID = "order-2"
	otherPaid := paid("p1")
	otherPaid.OrderID = "order-2"
	tests := []struct {
		name    string
		history []Event
	}{
		{"paid before placed", []Event{paid("p1")}},
		{"shipped before placed", []Event{shipped()}},
		{"cancelled before placed", []Event{cancelled("")}},
		{"placed twice", []Event{placed(), placed()}},
		{"paid twice", []Event{placed(), paid("p1"), paid("p2")}},
		{"shipped unpaid", []Event{placed(), shipped()}},
		{"shipped twice", []Event{placed(), paid("p1"), shipped(), shipped()}},
		{"cancelled after shipping", []Event{placed(), paid("p1"), shipped(), cancelled("")}},
		{"cancelled twice", []Event{placed(), cancelled(""), cancelled("")}},
		{"paid after cancel", []Event{placed(), cancelled(""), paid("p1")}},
		{"placed after cancel", []Event{placed(), cancelled(""), placed()}},
		{"another order's placed", []Event{other}},
		{"another order's paid", []Event{placed(), otherPaid}},
		{"nil event", []Event{placed(), nil}},
		{"nil pointer event", []Event{(*OrderPlaced)(nil)}},
		{"foreign event type", []Event{placed(), foreignEvent{}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o, err := Load(orderID, tc.history)
			if !errors.Is(err, ErrCorruptHistory) {
				t.Fatalf("Load = %v, want ErrCorruptHistory", err)
			}
			if o != nil {
				t.Fatalf("Load returned an order with an error: %+v", o)
			}
		})
	}
}

func TestApplyFailureChangesNothing(t *testing.T) {
	o, err := Load(orderID, []Event{placed()})
	if err != nil {
		t.Fatal(err)
	}
	before := *o
	if err := o.Apply(shipped()); !errors.Is(err, ErrCorruptHistory) {
		t.Fatalf("Apply(shipped) on a placed order = %v, want ErrCorruptHistory", err)
	}
	if !reflect.DeepEqual(*o, before) {
		t.Fatalf("failed Apply changed the order: %+v, was %+v", *o, before)
	}
}

func TestVersion(t *testing.T) {
	o := New(orderID)
	for i, e := range []Event{placed(), paid("p1")} {
		if err := o.Apply(e); err != nil {
			t.Fatal(err)
		}
		if o.Version() != int64(i) {
			t.Fatalf("after applying event %d: Version() = %d, want %d", i, o.Version(), i)
		}
	}
	if err := o.Ship(t2); err != nil {
		t.Fatal(err)
	}
	if o.Version() != 1 {
		t.Fatalf("a command moved Version() to %d, want 1", o.Version())
	}
	if err := o.Apply(shipped()); !errors.Is(err, ErrPendingChanges) {
		t.Fatalf("Apply with pending changes = %v, want ErrPendingChanges", err)
	}
	o.MarkCommitted()
	if o.Version() != 2 || len(o.Changes()) != 0 || o.Status() != StatusShipped {
		t.Fatalf("after MarkCommitted: version %d changes %v status %q", o.Version(), o.Changes(), o.Status())
	}
	reloaded, err := Load(orderID, []Event{placed(), paid("p1"), shipped()})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(reloaded, o) {
		t.Fatalf("committed order differs from a reload\n got %+v\nwant %+v", o, reloaded)
	}
	o.MarkCommitted() // nothing pending: no change
	if o.Version() != 2 {
		t.Fatalf("MarkCommitted with nothing pending moved Version() to %d", o.Version())
	}
}

// The state the commands leave in memory is the state a load of their events gives, seen
// through the accessors (the scenario tests check the same on the unexported state).
func TestFoldEqualsCommands(t *testing.T) {
	now := time.Now() // carries a monotonic reading and a local zone, both must be dropped
	o := New(orderID)
	for _, cmd := range cmds(place(validPlace(), now), pay("p1", twoLinesTotal, now), ship(now)) {
		if err := cmd(o); err != nil {
			t.Fatal(err)
		}
	}
	var history []Event
	for _, e := range o.Changes() {
		data, err := EncodeEvent(e)
		if err != nil {
			t.Fatal(err)
		}
		d, err := DecodeEvent(e.EventType(), data)
		if err != nil {
			t.Fatal(err)
		}
		history = append(history, d)
	}
	loaded, err := Load(orderID, history)
	if err != nil {
		t.Fatal(err)
	}
	type view struct {
		ID, Customer, Currency, PaymentRef, CancelReason string
		Status                                           Status
		Lines                                            []Line
		Total                                            int64
		PlacedAt, PaidAt, ShippedAt, CancelledAt         time.Time
	}
	see := func(o *Order) view {
		return view{o.ID(), o.Customer(), o.Currency(), o.PaymentRef(), o.CancelReason(), o.Status(), o.Lines(),
			o.Total(), o.PlacedAt(), o.PaidAt(), o.ShippedAt(), o.CancelledAt()}
	}
	if got, want := see(loaded), see(o); !reflect.DeepEqual(got, want) {
		t.Fatalf("loaded from stored events\n got %+v\nwant %+v", got, want)
	}
	if loaded.Version() != 2 || o.Version() != -1 {
		t.Fatalf("versions: loaded %d (want 2), commanded %d (want -1)", loaded.Version(), o.Version())
	}
}

func TestNoAliasing(t *testing.T) {
	cmd := validPlace()
	o := New(orderID)
	if err := o.Place(cmd, t0); err != nil {
		t.Fatal(err)
	}
	cmd.Lines[0].Quantity = 99 // the caller's slice
	lines := o.Lines()
	lines[1].SKU = "CHANGED" // the accessor's copy
	changes := o.Changes()
	changes[0].(OrderPlaced).Lines[0].UnitPrice = 1 // the pending event's copy
	if !reflect.DeepEqual(o.Lines(), twoLines()) {
		t.Fatalf("Lines() = %v after mutating caller's data, want %v", o.Lines(), twoLines())
	}
	if got := o.Changes(); !reflect.DeepEqual(got, []Event{placed()}) {
		t.Fatalf("Changes() = %#v after mutating caller's data", got)
	}
	history := []Event{placed()}
	loaded, err := Load(orderID, history)
	if err != nil {
		t.Fatal(err)
	}
	history[0].(OrderPlaced).Lines[0].SKU = "CHANGED" // the history's event
	if !reflect.DeepEqual(loaded.Lines(), twoLines()) {
		t.Fatalf("Lines() = %v after mutating history, want %v", loaded.Lines(), twoLines())
	}
}
