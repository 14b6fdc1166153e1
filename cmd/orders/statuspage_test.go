package main

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/orderstore/orders/aggregate"
	"github.com/orderstore/orders/eventstore"
	"github.com/orderstore/orders/eventstore/esdbnode/esdbnodetest/browsertest"
	"github.com/orderstore/orders/projections"
	"github.com/orderstore/orders/subscribers/notify"
)

// spRow is one subscriber row of the status page, as the DOM shows it.
type spRow struct {
	Kind     string `json:"kind"`
	State    string `json:"state"`
	Lag      string `json:"lag"`
	Position string `json:"position"`
}

// spRowsJS evaluates to the page's subscriber rows by name (cells per templates/status.html:
// name, kind, state, lag, position, head, ...).
const spRowsJS = `(() => {
	const rows = {};
	document.querySelectorAll('table.subs tbody tr[data-name]').forEach(tr => {
		const td = tr.querySelectorAll('td');
		rows[tr.dataset.name] = {
			kind: td[1].textContent.trim(),
			state: td[2].textContent.trim(),
			lag: tr.querySelector('td.lag').textContent.trim(),
			position: td[4].textContent.trim(),
		};
	});
	return rows;
})()`

// spCaughtUpJS is true when every named row shows lag 0 and a position beyond before's (as
// BigInt: positions are uint64).
func spCaughtUpJS(names []string, before map[string]uint64) string {
	var conds []string
	for _, n := range names {
		conds = append(conds, fmt.Sprintf(`(r[%q] !== undefined && r[%q].lag === '0' && BigInt(r[%q].position) > %dn)`, n, n, n, before[n]))
	}
	return `((r) => ` + strings.Join(conds, " && ") + `)(` + spRowsJS + `)`
}

// TestBrowserServeStatusPageLagFallsToZero opens the status page of a real `orders serve`
// (embedded node, the three projections, the e-mail sender on a real SMTP server) in headless
// Chromium, makes a burst of orders placed and paid while the SMTP server refuses every
// connection, watches the page show the sender lagging, lets the SMTP server accept again,
// and watches the page, refreshing itself, show every projection and the sender caught up
// (lag 0) at a position beyond the one before the burst.
func TestBrowserServeStatusPageLagFallsToZero(t *testing.T) {
	const orders = 30
	mail := startMailServer(t, false)
	d := startDaemon(t, "serve", "--addr", "127.0.0.1:0", "--data", t.TempDir(), "--http", "127.0.0.1:0", "--smtp", mail.URL())

	base := "http://" + d.httpAddr(t)

	names := []string{projections.CustomerOrders, projections.DailyRevenue, projections.OrderSummaries, notify.DefaultGroup}

	// One paid order before the page opens, so every row has a position to advance from.
	p := place(t, d.url)
	r := cli(t, "--esdb", d.url, "pay", p.ID)
	require.Equal(t, 0, r.code, r.stderr)

	ctx := browsertest.Open(t, browsertest.Desktop, 120*time.Second)
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(base+"/")), "open the status page")

	// Before: all four rows caught up (the page refreshes itself until they are).
	zero := map[string]uint64{}
	for _, n := range names {
		zero[n] = 0
	}
	pollOpts := []chromedp.PollOption{chromedp.WithPollingInterval(50 * time.Millisecond), chromedp.WithPollingTimeout(60 * time.Second)}
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](spCaughtUpJS(names, zero), pollOpts...)); err != nil {
		rows, _ := chromedp.Run(ctx, chromedp.Evaluate[map[string]spRow](spRowsJS))
		t.Fatalf("the page never showed every subscriber caught up before the burst: %v; rows %+v", err, rows)
	}
	rows, err := chromedp.Run(ctx, chromedp.Evaluate[map[string]spRow](spRowsJS))
	require.NoError(t, err)
	require.Len(t, rows, len(names), "rows %+v", rows)
	before := map[string]uint64{}
	for _, n := range names {
		row, ok := rows[n]
		require.True(t, ok, "no row %s in %+v", n, rows)
		want := "projection"
		if n == notify.DefaultGroup {
			want = "sender"
		}
		require.Equal(t, want, row.Kind, "kind of %s", n)
		require.Equal(t, "0", row.Lag, "lag of %s", n)
		before[n], err = strconv.ParseUint(row.Position, 10, 64)
		require.NoError(t, err, "position of %s", n)
	}
	t.Logf("before the burst: %+v", rows)
	browsertest.Screenshot(t, ctx, "before-burst")

	// The burst: orders placed and paid concurrently through the repository, while the SMTP
	// server refuses: the sender cannot finish any payment confirmation, so it must lag.
	mail.SetTempFail(true)
	client, err := eventstore.Connect(d.url)
	require.NoError(t, err)
	t.Cleanup(func() { _ = client.Close() })
	repo, err := eventstore.NewRepository(client, eventstore.RepositoryConfig{})
	require.NoError(t, err)
	burst := make(chan error, 1)
	go func() {
		var wg sync.WaitGroup
		errs := make([]error, orders)
		for i := range orders {
			wg.Go(func() {
				id, now := uuid.NewString(), time.Now()
				md := eventstore.CommandMetadata(uuid.NewString(), "statuspage-test")
				place := aggregate.PlaceOrder{
					Customer: fmt.Sprintf("burst%d@example.com", i),
					Lines:    []aggregate.Line{{SKU: "BOOK-1", Quantity: 1, UnitPrice: 1000 + int64(i)}},
					Currency: "EUR",
				}
				if _, err := repo.Execute(t.Context(), id, md, func(o *aggregate.Order) error { return o.Place(place, now) }); err != nil {
					errs[i] = fmt.Errorf("place %d: %w", i, err)
					return
				}
				md = eventstore.CommandMetadata(uuid.NewString(), "statuspage-test")
				if _, err := repo.Execute(t.Context(), id, md, func(o *aggregate.Order) error { return o.Pay("burst-"+id, o.Total(), now) }); err != nil {
					errs[i] = fmt.Errorf("pay %d: %w", i, err)
				}
			})
		}
		wg.Wait()
		burst <- errors.Join(errs...)
	}()

	require.NoError(t, <-burst, "the burst")
	senderLagging := fmt.Sprintf(`((r) => r[%q] !== undefined && r[%q].lag !== '0')(`+spRowsJS+`)`, notify.DefaultGroup, notify.DefaultGroup)
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](senderLagging, pollOpts...)); err != nil {
		rows, _ := chromedp.Run(ctx, chromedp.Evaluate[map[string]spRow](spRowsJS))
		t.Fatalf("the page never showed the sender lagging while SMTP refused: %v; rows %+v", err, rows)
	}
	rows, err = chromedp.Run(ctx, chromedp.Evaluate[map[string]spRow](spRowsJS))
	require.NoError(t, err)
	t.Logf("while SMTP refuses: %+v", rows)
	browsertest.Screenshot(t, ctx, "lagging")
	mail.SetTempFail(false)
	caughtUp := spCaughtUpJS(names, before)

	// After: every row at lag 0, beyond its position before the burst.
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](caughtUp, pollOpts...)); err != nil {
		rows, _ := chromedp.Run(ctx, chromedp.Evaluate[map[string]spRow](spRowsJS))
		t.Fatalf("the page never showed every subscriber caught up after the burst: %v; rows %+v", err, rows)
	}
	rows, err = chromedp.Run(ctx, chromedp.Evaluate[map[string]spRow](spRowsJS))
	require.NoError(t, err)
	for _, n := range names {
		require.Equal(t, "0", rows[n].Lag, "lag of %s", n)
		pos, err := strconv.ParseUint(rows[n].Position, 10, 64)
		require.NoError(t, err, "position of %s", n)
		require.Greater(t, pos, before[n], "position of %s", n)
	}
	t.Logf("after the burst: %+v", rows)
	msgs := mail.Messages()
	sentTo := map[string]int{}
	for _, m := range msgs {
		sentTo[m.OrderID]++
	}
	require.Len(t, sentTo, orders+1, "one payment confirmation per paid order: %+v", msgs)
	require.Len(t, msgs, orders+1, "no order mailed twice: %+v", sentTo)
	healthy, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById('health').dataset.healthy`))
	require.NoError(t, err)
	require.Equal(t, "true", healthy)
	browsertest.Screenshot(t, ctx, "caught-up")

	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, base+"/healthz", nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)

	// /metrics has seen the burst: the node's appends and the handler calls of every
	// projection and of the e-mail sender (caught up on the page, so its calls are done).
	req, err = http.NewRequestWithContext(t.Context(), http.MethodGet, base+"/metrics", nil)
	require.NoError(t, err)
	resp, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	metrics, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	appends := regexp.MustCompile(`(?m)^orders_append_seconds_count (\d+)$`).FindSubmatch(metrics)
	require.NotNil(t, appends, "no orders_append_seconds_count in /metrics")
	n, err := strconv.Atoi(string(appends[1]))
	require.NoError(t, err)
	require.GreaterOrEqual(t, n, 2*orders, "appends observed")
	for _, name := range []string{"order_summaries", "customer_orders", "daily_revenue", notify.DefaultGroup} {
		require.Regexp(t, `(?m)^orders_handle_seconds_count\{name="`+name+`"\} [1-9]`, string(metrics))
	}

	require.Equal(t, 0, d.stop(t, syscall.SIGTERM), "stderr: %s", d.stderr)
}
