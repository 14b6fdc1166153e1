package main

import (
	"encoding/json"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/orderstore/orders/aggregate"
	"github.com/orderstore/orders/cmd/orders/statusweb"
	"github.com/orderstore/orders/eventstore/esdbnode/esdbnodetest/browsertest"
	"github.com/orderstore/orders/projections"
)

// pageRow is one row of the status page's customers or revenue table.
type pageRow struct {
	Key      string `json:"key"` // customer or day
	Currency string `json:"currency"`
	Amount   string `json:"amount"`
}

const pageRowsJS = `(sel, key) => Array.from(document.querySelectorAll(sel + ' tbody tr')).map(tr => ({
	key: tr.dataset[key], currency: tr.dataset.currency, amount: tr.querySelector('td.amount').textContent.trim()}))`

// TestBrowserServeFigures runs a real serve over a node holding payments on several UTC
// days, opens its status page in Chromium and waits for the projections to show up there:
// the top customers and the revenue by day (tables and a chart per currency) say what
// orders customers and orders revenue say, and /status.json and /status carry the same
// figures.
func TestBrowserServeFigures(t *testing.T) {
	n := startNode(t)
	seedDays(t, n)
	dir := t.TempDir()
	d := startDaemon(t, "serve", "--esdb", n.url, "--data", dir, "--http", "127.0.0.1:0")
	base := "http://" + d.httpAddr(t)
	db := filepath.Join(dir, defaultDBFile)

	ctx := browsertest.Open(t, browsertest.Desktop, 90*time.Second)
	browsertest.Run(t, ctx, "open the status page", chromedp.Navigate(base+"/"))
	// The page refreshes itself until the projections have applied everything: five
	// customer rows, and in EUR the two days with payments.
	caughtUp := `document.querySelectorAll('table.customers tbody tr').length === 5 &&
		document.querySelectorAll('figure[data-currency="EUR"] rect.bar').length === 2 &&
		document.querySelectorAll('table.revenue tbody tr').length === 4 &&
		!!document.querySelector('tr[data-customer="ann@example.com"] td.amount') &&
		document.querySelector('tr[data-customer="ann@example.com"] td.amount').textContent.trim() !== ''`
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](caughtUp, chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(60*time.Second))); err != nil {
		t.Fatalf("the page never showed the figures: %v", err)
	}
	// Once caught up, the commands read the same tables.
	var cs struct {
		Customers []projections.CustomerTotals `json:"customers"`
	}
	var rv struct {
		Revenue []projections.Revenue `json:"revenue"`
	}
	ok(t, &cs, "customers", "--db", db)
	ok(t, &rv, "revenue", "--db", db)
	require.Len(t, cs.Customers, 5)
	require.Len(t, rv.Revenue, 4)

	customers := browsertest.Value(t, ctx, "read the customers", chromedp.Evaluate[[]pageRow](`(`+pageRowsJS+`)('table.customers', 'customer')`))
	want := map[[2]string]string{}
	for _, c := range cs.Customers {
		want[[2]string{c.Customer, c.Currency}] = aggregate.FormatMoney(c.PaidAmount, c.Currency)
	}
	require.Len(t, customers, len(want))
	for _, row := range customers {
		require.Equal(t, want[[2]string{row.Key, row.Currency}], row.Amount, "paid amount of %s %s", row.Key, row.Currency)
	}
	require.Equal(t, "bob@example.com", customers[0].Key, "the largest payment first")

	revenue := browsertest.Value(t, ctx, "read the revenue", chromedp.Evaluate[[]pageRow](`(`+pageRowsJS+`)('table.revenue', 'day')`))
	require.Len(t, revenue, len(rv.Revenue))
	for i, row := range revenue { // newest day first on the page
		r := rv.Revenue[len(rv.Revenue)-1-i]
		require.Equal(t, pageRow{Key: r.Day, Currency: r.Currency, Amount: aggregate.FormatMoney(r.Amount, r.Currency)}, row)
	}
	browsertest.Screenshot(t, ctx, "figures")

	// The JSON endpoints carry the same figures.
	for _, path := range []string{"/status.json", "/status"} {
		resp, err := http.Get(base + path)
		require.NoError(t, err)
		var body struct {
			TopCustomers []statusweb.CustomerFigures `json:"topCustomers"`
			Revenue      []statusweb.DayRevenue      `json:"revenue"`
		}
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
		resp.Body.Close()
		require.Len(t, body.TopCustomers, len(cs.Customers), path)
		for _, c := range body.TopCustomers {
			found := false
			for _, w := range cs.Customers {
				if w.Customer == c.Customer && w.Currency == c.Currency {
					found = true
					require.Equal(t, statusweb.CustomerFigures{Customer: w.Customer, Currency: w.Currency, Orders: w.Orders, PaidOrders: w.PaidOrders, PaidAmount: w.PaidAmount}, c, path)
				}
			}
			require.True(t, found, "%s: %+v not among the customers", path, c)
		}
		require.Len(t, body.Revenue, len(rv.Revenue), path)
		for i, r := range rv.Revenue {
			require.Equal(t, statusweb.DayRevenue{Day: r.Day, Currency: r.Currency, Payments: r.Payments, Amount: r.Amount}, body.Revenue[i], path)
		}
	}
}
