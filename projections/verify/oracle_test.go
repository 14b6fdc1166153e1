package verify_test

import (
	"strings"
	"testing"
	"time"

	"github.com/orderstore/orders/aggregate"
	"github.com/orderstore/orders/projections/verify"
)

func enc(t *testing.T, e aggregate.Event) (string, []byte) {
	t.Helper()
	b, err := aggregate.EncodeEvent(e)
	if err != nil {
		t.Fatal(err)
	}
	return e.EventType(), b
}

// TestOracleRows: the rows of a paid-then-cancelled order and of an order with an event of
// an unknown type, and a stream the aggregate refuses.
func TestOracleRows(t *testing.T) {
	at := time.Date(2026, 3, 1, 23, 30, 0, 0, time.UTC)
	a := verify.NewOrder("a")
	for i, e := range []aggregate.Event{
		aggregate.OrderPlaced{OrderID: "a", Customer: "ann@example.com", Currency: "EUR", Lines: []aggregate.Line{{SKU: "x", Quantity: 2, UnitPrice: 150}}, Total: 300, PlacedAt: at},
		aggregate.OrderPaid{OrderID: "a", PaymentRef: "p1", Amount: 300, Currency: "EUR", PaidAt: at.Add(time.Hour)},
		aggregate.OrderCancelled{OrderID: "a", Reason: "late", CancelledAt: at.Add(2 * time.Hour)},
	} {
		typ, data := enc(t, e)
		a.Fold(uint64(i), uint64(10+i), typ, data)
	}
	a.Fold(1, 11, "OrderPaid", []byte(`{}`)) // a duplicate is ignored
	b := verify.NewOrder("b")
	typ, data := enc(t, aggregate.OrderPlaced{OrderID: "b", Customer: "bob@example.com", Currency: "USD", Lines: []aggregate.Line{{SKU: "y", Quantity: 1, UnitPrice: 5}}, Total: 5, PlacedAt: at})
	b.Fold(0, 20, typ, data)
	b.Fold(1, 21, "OrderRefunded", []byte(`{"amount":5}`))
	bad := verify.NewOrder("c")
	typ, data = enc(t, aggregate.OrderShipped{OrderID: "c", ShippedAt: at})
	bad.Fold(0, 30, typ, data)
	if bad.Err == nil {
		t.Fatal("a stream starting with OrderShipped was not refused")
	}
	orders := []*verify.Order{a, b, bad}

	sum, err := verify.Expected("order_summaries", orders)
	if err != nil {
		t.Fatal(err)
	}
	if len(sum) != 2 {
		t.Fatalf("%d summaries, want 2 (the refused stream left out)", len(sum))
	}
	ra := sum["a"]
	for col, want := range map[string]string{"status": "cancelled", "paid_amount": "300", "paid_at": "2026-03-02T00:30:00.000000Z",
		"cancel_reason": "late", "updated_at": "2026-03-02T01:30:00.000000Z", "applied_revision": "2", "applied_position": "12", "line_count": "1"} {
		if ra[col] != want {
			t.Errorf("order a %s = %q, want %q", col, ra[col], want)
		}
	}
	if _, ok := ra["shipped_at"]; ok {
		t.Errorf("order a shipped_at = %q, want NULL", ra["shipped_at"])
	}
	rb := sum["b"]
	if rb["applied_revision"] != "1" || rb["applied_position"] != "21" || rb["status"] != "placed" || rb["updated_at"] != "2026-03-01T23:30:00.000000Z" {
		t.Errorf("order b (unknown event at revision 1) = %v", rb)
	}
	cust, _ := verify.Expected("customer_orders", orders)
	if got := cust["ann@example.com/EUR"]; got["orders"] != "1" || got["paid_orders"] != "1" || got["cancelled_orders"] != "1" || got["paid_amount"] != "300" {
		t.Errorf("customer ann = %v", got)
	}
	rev, _ := verify.Expected("daily_revenue", orders)
	if got := rev["2026-03-02/EUR"]; got["payments"] != "1" || got["amount"] != "300" || len(rev) != 1 {
		t.Errorf("daily revenue = %v", rev)
	}

	// Compare reports changed, unexpected and missing rows.
	got := []verify.Row{{"order_id": "a", "status": "paid"}, {"order_id": "z"}}
	diffs := verify.Compare("order_summaries", sum, got)
	var keys []string
	for _, d := range diffs {
		keys = append(keys, d.Key+":"+strings.SplitN(d.String(), ": ", 2)[1][:7])
	}
	if want := "a:applied b:missing z:unexpec"; strings.Join(keys, " ") != want {
		t.Errorf("differences %q, want %q", strings.Join(keys, " "), want)
	}
}
