package main

import (
	"database/sql"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/orderstore/orders/aggregate"
	"github.com/orderstore/orders/eventstore"
	"github.com/orderstore/orders/projections"
)

// seedDays records, through the repository and a scripted clock, orders paid on three UTC
// days in two currencies, one of them cancelled after payment, one never paid.
func seedDays(t *testing.T, n node) {
	t.Helper()
	repo, err := eventstore.NewRepository(n.client, eventstore.RepositoryConfig{})
	require.NoError(t, err)
	day := func(d, h int) time.Time { return time.Date(2026, 5, d, h, 0, 0, 0, time.UTC) }
	for _, o := range []struct {
		customer, currency string
		total              int64
		paid               time.Time // zero: not paid
		cancel             bool
	}{
		{"ann@example.com", "EUR", 1250, day(1, 10), false},
		{"ann@example.com", "EUR", 99, day(1, 23), false},
		{"bob@example.com", "EUR", 5000, day(2, 0), true},
		{"bob@example.com", "USD", 700, day(2, 12), false},
		{"cy@example.com", "JPY", 300, day(4, 9), false},
		{"dee@example.com", "EUR", 10, time.Time{}, false},
	} {
		id := uuid.NewString()
		steps := []func(*aggregate.Order) error{func(ord *aggregate.Order) error {
			return ord.Place(aggregate.PlaceOrder{Customer: o.customer, Currency: o.currency, Lines: []aggregate.Line{{SKU: "S", Quantity: 1, UnitPrice: o.total}}}, day(1, 0))
		}}
		if !o.paid.IsZero() {
			steps = append(steps, func(ord *aggregate.Order) error { return ord.Pay("r-"+id, o.total, o.paid) })
		}
		if o.cancel {
			steps = append(steps, func(ord *aggregate.Order) error { return ord.Cancel("", o.paid.Add(time.Hour)) })
		}
		for _, step := range steps {
			_, err := repo.Execute(t.Context(), id, eventstore.Metadata{}, step)
			require.NoError(t, err)
		}
	}
}

// TestCustomersAndRevenueCommands: customers and revenue print what the customer_orders and
// daily_revenue tables hold, read straight from the database, with and without filters.
func TestCustomersAndRevenueCommands(t *testing.T) {
	n := startNode(t)
	seedDays(t, n)
	db := filepath.Join(t.TempDir(), "readmodels.db")
	s, err := projections.Open(t.Context(), db) // only serve creates the database
	require.NoError(t, err)
	require.NoError(t, s.Close())
	r := cli(t, "--esdb", n.url, "projections", "rebuild", "--all", "--db", db)
	require.Equal(t, 0, r.code, r.stderr)

	raw, err := sql.Open("sqlite", "file:"+db+"?mode=ro")
	require.NoError(t, err)
	t.Cleanup(func() { _ = raw.Close() })
	tableRevenue := func(where string, args ...any) []projections.Revenue {
		rows, err := raw.QueryContext(t.Context(), "SELECT day, currency, payments, amount FROM daily_revenue WHERE "+where+" ORDER BY day, currency", args...)
		require.NoError(t, err)
		defer rows.Close()
		out := []projections.Revenue{}
		for rows.Next() {
			var r projections.Revenue
			require.NoError(t, rows.Scan(&r.Day, &r.Currency, &r.Payments, &r.Amount))
			out = append(out, r)
		}
		require.NoError(t, rows.Err())
		return out
	}
	tableCustomers := func(where string, args ...any) []projections.CustomerTotals {
		rows, err := raw.QueryContext(t.Context(), "SELECT customer, currency, orders, paid_orders, shipped_orders, cancelled_orders, ordered_amount, paid_amount FROM customer_orders WHERE "+where+" ORDER BY customer, currency", args...)
		require.NoError(t, err)
		defer rows.Close()
		out := []projections.CustomerTotals{}
		for rows.Next() {
			var c projections.CustomerTotals
			require.NoError(t, rows.Scan(&c.Customer, &c.Currency, &c.Orders, &c.PaidOrders, &c.ShippedOrders, &c.CancelledOrders, &c.OrderedAmount, &c.PaidAmount))
			out = append(out, c)
		}
		require.NoError(t, rows.Err())
		return out
	}

	type revenueOut struct {
		Revenue []projections.Revenue `json:"revenue"`
		Totals  []revenueTotal        `json:"totals"`
	}
	for _, tc := range []struct {
		args  []string
		where string
		arg   []any
	}{
		{nil, "1 = 1", nil},
		{[]string{"--from", "2026-05-02"}, "day >= ?", []any{"2026-05-02"}},
		{[]string{"--from", "2026-05-01", "--to", "2026-05-02"}, "day BETWEEN ? AND ?", []any{"2026-05-01", "2026-05-02"}},
		{[]string{"--currency", "EUR"}, "currency = ?", []any{"EUR"}},
		{[]string{"--from", "2026-05-03", "--to", "2026-05-03"}, "day = ?", []any{"2026-05-03"}},
	} {
		var got revenueOut
		ok(t, &got, append([]string{"revenue", "--db", db}, tc.args...)...)
		want := tableRevenue(tc.where, tc.arg...)
		require.Equal(t, want, got.Revenue, "revenue %v", tc.args)
		require.Equal(t, revenueTotals(want), got.Totals)
	}
	all := tableRevenue("1 = 1")
	require.Len(t, all, 4, "three days, two currencies on the second: %+v", all)

	var cs struct {
		Customers []projections.CustomerTotals `json:"customers"`
	}
	ok(t, &cs, "customers", "--db", db)
	require.Equal(t, tableCustomers("1 = 1"), cs.Customers)
	require.Len(t, cs.Customers, 5)
	ok(t, &cs, "customers", "--db", db, "--customer", "bob@example.com")
	require.Equal(t, tableCustomers("customer = ?", "bob@example.com"), cs.Customers)
	require.Len(t, cs.Customers, 2)

	// Human output: the same figures, money formatted like list's.
	r = cli(t, "revenue", "--db", db, "--currency", "EUR")
	require.Equal(t, 0, r.code, r.stderr)
	require.Regexp(t, `2026-05-01\s+EUR\s+2\s+13\.49 EUR`, r.stdout)
	require.Regexp(t, `2026-05-02\s+EUR\s+1\s+50\.00 EUR`, r.stdout)
	require.Regexp(t, `total\s+EUR\s+3\s+63\.49 EUR`, r.stdout)
	r = cli(t, "customers", "--db", db, "--customer", "ann@example.com")
	require.Equal(t, 0, r.code, r.stderr)
	require.Regexp(t, `ann@example\.com\s+EUR\s+2\s+2\s+0\s+0\s+13\.49 EUR\s+13\.49 EUR`, r.stdout)

	for _, args := range [][]string{
		{"revenue", "--from", "May 1"},
		{"revenue", "--to", "2026-13-01"},
		{"revenue", "--from", "2026-05-03", "--to", "2026-05-01"},
		{"revenue", "--currency", "eur"},
		{"customers", "extra"},
	} {
		r := cli(t, append(args, "--db", db)...)
		require.Equal(t, 2, r.code, "%v: %s", args, r.stderr)
		require.Equal(t, 1, strings.Count(r.stderr, "\n"), r.stderr)
	}
	r = cli(t, "revenue", "--db", filepath.Join(t.TempDir(), "missing.db"))
	require.Equal(t, 1, r.code, r.stderr)
	require.Contains(t, r.stderr, "no read-model database")
}
