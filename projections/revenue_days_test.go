package projections_test

import (
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/orderstore/orders/aggregate"
	"github.com/orderstore/orders/eventstore"
	"github.com/orderstore/orders/eventstore/esdbnode/esdbnodetest"
	"github.com/orderstore/orders/projections"
)

// TestRevenueOnSeveralUTCDays runs real commands through the repository with a scripted
// clock, so that payments fall on several UTC days (one a millisecond before midnight, one at
// midnight, one given in another time zone whose local day differs from its UTC day), then
// rebuilds the read models from the node's log and reads them back through the queries the
// CLI and the status page use.
func TestRevenueOnSeveralUTCDays(t *testing.T) {
	srv := esdbnodetest.Start(t)
	client := esdbnodetest.Client(t, srv)
	repo, err := eventstore.NewRepository(client, eventstore.RepositoryConfig{})
	if err != nil {
		t.Fatal(err)
	}
	plus2 := time.FixedZone("UTC+2", 2*60*60)
	// The clock the commands read, one instant per command, in the order below.
	clock := []time.Time{
		time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC),              // place ann EUR
		time.Date(2026, 3, 1, 23, 59, 59, 999_000_000, time.UTC), // pay: 2026-03-01
		time.Date(2026, 3, 1, 20, 0, 0, 0, time.UTC),             // place bob EUR
		time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC),              // pay: 2026-03-02
		time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC),             // place ann USD
		time.Date(2026, 3, 2, 1, 30, 0, 0, plus2),                // pay: 2026-03-01 in UTC (23:30Z)
		time.Date(2026, 3, 4, 8, 0, 0, 0, time.UTC),              // place bob USD
		time.Date(2026, 3, 4, 12, 0, 0, 0, time.UTC),             // pay: 2026-03-04
		time.Date(2026, 3, 5, 12, 0, 0, 0, time.UTC),             // cancel: the payment stays
		time.Date(2026, 3, 3, 8, 0, 0, 0, time.UTC),              // place cy EUR, never paid
	}
	now := func() time.Time {
		if len(clock) == 0 {
			t.Fatal("the scripted clock ran out")
		}
		c := clock[0]
		clock = clock[1:]
		return c
	}
	run := func(id string, decide func(o *aggregate.Order, now time.Time) error) {
		t.Helper()
		at := now()
		if _, err := repo.Execute(t.Context(), id, eventstore.Metadata{}, func(o *aggregate.Order) error { return decide(o, at) }); err != nil {
			t.Fatal(err)
		}
	}
	order := func(customer, currency string, total int64) string {
		t.Helper()
		id := uuid.NewString()
		run(id, func(o *aggregate.Order, now time.Time) error {
			return o.Place(aggregate.PlaceOrder{Customer: customer, Currency: currency, Lines: []aggregate.Line{{SKU: "X", Quantity: 1, UnitPrice: total}}}, now)
		})
		return id
	}
	pay := func(id string, amount int64) {
		t.Helper()
		run(id, func(o *aggregate.Order, now time.Time) error { return o.Pay("ref-"+id, amount, now) })
	}
	a := order("ann@example.com", "EUR", 1000)
	pay(a, 1000)
	b := order("bob@example.com", "EUR", 2000)
	pay(b, 2000)
	c := order("ann@example.com", "USD", 500)
	pay(c, 500)
	d := order("bob@example.com", "USD", 700)
	pay(d, 700)
	run(d, func(o *aggregate.Order, now time.Time) error { return o.Cancel("late", now) })
	order("cy@example.com", "EUR", 300)
	if len(clock) != 0 {
		t.Fatalf("%d clock readings unused", len(clock))
	}

	for _, be := range backends() {
		t.Run(be.name, func(t *testing.T) {
			s := rebuildInto(t, be.newURL(t), dialer(srv.ConnectionString()))
			ctx := t.Context()
			revenue := []struct {
				name string
				f    projections.RevenueFilter
				want []projections.Revenue
			}{
				{"all", projections.RevenueFilter{}, []projections.Revenue{
					{Day: "2026-03-01", Currency: "EUR", Payments: 1, Amount: 1000},
					{Day: "2026-03-01", Currency: "USD", Payments: 1, Amount: 500},
					{Day: "2026-03-02", Currency: "EUR", Payments: 1, Amount: 2000},
					{Day: "2026-03-04", Currency: "USD", Payments: 1, Amount: 700},
				}},
				{"from and to inclusive", projections.RevenueFilter{From: "2026-03-02", To: "2026-03-04"}, []projections.Revenue{
					{Day: "2026-03-02", Currency: "EUR", Payments: 1, Amount: 2000},
					{Day: "2026-03-04", Currency: "USD", Payments: 1, Amount: 700},
				}},
				{"one day", projections.RevenueFilter{From: "2026-03-01", To: "2026-03-01"}, []projections.Revenue{
					{Day: "2026-03-01", Currency: "EUR", Payments: 1, Amount: 1000},
					{Day: "2026-03-01", Currency: "USD", Payments: 1, Amount: 500},
				}},
				{"currency", projections.RevenueFilter{Currency: "USD"}, []projections.Revenue{
					{Day: "2026-03-01", Currency: "USD", Payments: 1, Amount: 500},
					{Day: "2026-03-04", Currency: "USD", Payments: 1, Amount: 700},
				}},
				{"a day without payments", projections.RevenueFilter{From: "2026-03-03", To: "2026-03-03"}, []projections.Revenue{}},
			}
			for _, tc := range revenue {
				got, err := s.Revenue(ctx, tc.f)
				if err != nil {
					t.Fatal(err)
				}
				if !jsonEqual(got, tc.want) {
					t.Errorf("revenue %s:\n got %+v\nwant %+v", tc.name, got, tc.want)
				}
			}

			top, err := s.TopCustomers(ctx, 3)
			if err != nil {
				t.Fatal(err)
			}
			wantTop := []projections.CustomerTotals{
				{Customer: "bob@example.com", Currency: "EUR", Orders: 1, PaidOrders: 1, OrderedAmount: 2000, PaidAmount: 2000},
				{Customer: "ann@example.com", Currency: "EUR", Orders: 1, PaidOrders: 1, OrderedAmount: 1000, PaidAmount: 1000},
				{Customer: "bob@example.com", Currency: "USD", Orders: 1, PaidOrders: 1, CancelledOrders: 1, OrderedAmount: 700, PaidAmount: 700},
			}
			if !jsonEqual(top, wantTop) {
				t.Errorf("top customers:\n got %+v\nwant %+v", top, wantTop)
			}
			all, err := s.TopCustomers(ctx, 0)
			if err != nil {
				t.Fatal(err)
			}
			if len(all) != 5 || all[4].Customer != "cy@example.com" || all[4].PaidAmount != 0 || all[4].Orders != 1 {
				t.Errorf("all customers by payments: %+v, want 5 rows ending with cy's unpaid order", all)
			}
			ann, err := s.Customers(ctx, "ann@example.com")
			if err != nil {
				t.Fatal(err)
			}
			if len(ann) != 2 || ann[0].Currency != "EUR" || ann[1].Currency != "USD" || ann[1].PaidAmount != 500 {
				t.Errorf("ann's rows: %+v", ann)
			}
		})
	}
}
