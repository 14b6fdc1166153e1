package aggregate

import (
	"errors"
	"reflect"
	"slices"
	"testing"
	"time"
)

// The fixture: one order, its events, and command shorthands.

const orderID = "order-1"

var (
	t0 = time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)
	t1 = t0.Add(time.Hour)
	t2 = t0.Add(2 * time.Hour)
	t3 = t0.Add(3 * time.Hour)
)

func twoLines() []Line {
	return []Line{{SKU: "BOOK-1", Quantity: 2, UnitPrice: 1250}, {SKU: "PEN-7", Quantity: 3, UnitPrice: 199}}
}

const twoLinesTotal = 2*1250 + 3*199

func placed() OrderPlaced {
	return OrderPlaced{OrderID: orderID, Customer: "ann@example.com", Lines: twoLines(), Currency: "EUR", Total: twoLinesTotal, PlacedAt: t0}
}
func paid(ref string) OrderPaid {
	return OrderPaid{OrderID: orderID, PaymentRef: ref, Amount: twoLinesTotal, Currency: "EUR", PaidAt: t1}
}
func shipped() OrderShipped { return OrderShipped{OrderID: orderID, ShippedAt: t2} }
func cancelled(reason string) OrderCancelled {
	return OrderCancelled{OrderID: orderID, Reason: reason, CancelledAt: t3}
}

func place(cmd PlaceOrder, now time.Time) func(*Order) error {
	return func(o *Order) error { return o.Place(cmd, now) }
}
func pay(ref string, amount int64, now time.Time) func(*Order) error {
	return func(o *Order) error { return o.Pay(ref, amount, now) }
}
func ship(now time.Time) func(*Order) error {
	return func(o *Order) error { return o.Ship(now) }
}
func cancel(reason string, now time.Time) func(*Order) error {
	return func(o *Order) error { return o.Cancel(reason, now) }
}

// given/when/then: load the order from history, run a command, check what it recorded.

type spec struct {
	t       *testing.T
	history []Event
	cmds    []func(*Order) error
}

func given(t *testing.T, history ...Event) *spec {
	t.Helper()
	return &spec{t: t, history: history}
}

// when sets the commands run, in order, on the one instance loaded from history.
func (s *spec) when(cmds ...func(*Order) error) *spec {
	s.cmds = cmds
	return s
}

func (s *spec) load() *Order {
	s.t.Helper()
	o, err := Load(orderID, s.history)
	if err != nil {
		s.t.Fatalf("given: Load: %v", err)
	}
	return o
}

// then checks that the command succeeded and recorded exactly want; that Version did not
// move; and that folding history+want gives the state the command left in memory.
func (s *spec) then(want ...Event) {
	t := s.t
	t.Helper()
	o := s.load()
	for i, cmd := range s.cmds {
		if err := cmd(o); err != nil {
			t.Fatalf("when: command %d: unexpected error %v", i, err)
		}
	}
	got := o.Changes()
	if len(want) == 0 {
		want = []Event{}
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("then: changes\n got %#v\nwant %#v", got, want)
	}
	if v, wantV := o.Version(), int64(len(s.history)-1); v != wantV {
		t.Fatalf("then: Version() = %d after commands, want %d (unchanged)", v, wantV)
	}
	folded, err := Load(orderID, append(slices.Clone(s.history), want...))
	if err != nil {
		t.Fatalf("then: folding history+changes: %v", err)
	}
	if !reflect.DeepEqual(folded.st, o.st) {
		t.Fatalf("then: state after commands differs from fold\ncommands %+v\n    fold %+v", o.st, folded.st)
	}
}

// thenErr checks that the commands before the last succeed and the last fails with want
// (errors.Is), recording nothing and leaving the state and Version as they were.
func (s *spec) thenErr(want error) {
	t := s.t
	t.Helper()
	if len(s.cmds) == 0 {
		t.Fatal("bad test: thenErr without a command")
	}
	o := s.load()
	last := len(s.cmds) - 1
	for i, cmd := range s.cmds[:last] {
		if err := cmd(o); err != nil {
			t.Fatalf("when: command %d: unexpected error %v", i, err)
		}
	}
	st, version, changes := o.st, o.version, o.Changes()
	err := s.cmds[last](o)
	if !errors.Is(err, want) {
		t.Fatalf("when: error = %v, want %v", err, want)
	}
	if got := o.Changes(); !reflect.DeepEqual(got, changes) {
		t.Fatalf("thenErr: changes\n got %#v\nwant %#v", got, changes)
	}
	if !reflect.DeepEqual(o.st, st) || o.version != version {
		t.Fatalf("thenErr: state changed\n got %+v v%d\nwant %+v v%d", o.st, o.version, st, version)
	}
}

// scenario is one row of a command table.
type scenario struct {
	name    string
	given   []Event
	before  []func(*Order) error // commands run first on the same instance, must succeed
	when    func(*Order) error
	then    []Event // expected changes when err is nil
	wantErr error
}

func runScenarios(t *testing.T, tests []scenario) {
	t.Helper()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := given(t, tc.given...).when(append(tc.before, tc.when)...)
			if tc.wantErr != nil {
				if tc.then != nil {
					t.Fatal("bad test: both then and wantErr")
				}
				s.thenErr(tc.wantErr)
				return
			}
			s.then(tc.then...)
		})
	}
}
