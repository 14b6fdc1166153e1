package statusweb_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/orderstore/orders/cmd/orders/statusweb"
	"github.com/orderstore/orders/eventstore/esdbnode/esdbnodetest/browsertest"
)

// fakeFigures is a Figures whose answer the test sets.
type fakeFigures struct {
	mu  sync.Mutex
	rm  statusweb.ReadModels
	err error
}

func (f *fakeFigures) Figures(context.Context) (statusweb.ReadModels, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.rm, f.err
}

func (f *fakeFigures) set(rm statusweb.ReadModels) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rm = rm
}

func twoDecimals(minor int64, cur string) string {
	return fmt.Sprintf("%d.%02d %s", minor/100, minor%100, cur)
}

func sampleFigures() statusweb.ReadModels {
	return statusweb.ReadModels{
		TopCustomers: []statusweb.CustomerFigures{
			{Customer: "bob@example.com", Currency: "EUR", Orders: 3, PaidOrders: 2, PaidAmount: 900000},
			{Customer: "ann@example.com", Currency: "USD", Orders: 1, PaidOrders: 1, PaidAmount: 1250},
		},
		Revenue: []statusweb.DayRevenue{
			{Day: "2026-11-21", Currency: "EUR", Payments: 1, Amount: 300000},
			{Day: "2026-11-22", Currency: "EUR", Payments: 1, Amount: 600000},
			{Day: "2026-11-22", Currency: "USD", Payments: 1, Amount: 1250},
			{Day: "2026-11-24", Currency: "EUR", Payments: 2, Amount: 150000},
		},
	}
}

// TestStatusJSONFigures: /status.json carries the figures as given, [] when there are none,
// the error when the source fails, and nothing of them without Options.Figures.
func TestStatusJSONFigures(t *testing.T) {
	type body struct {
		Healthy      bool                        `json:"healthy"`
		TopCustomers []statusweb.CustomerFigures `json:"topCustomers"`
		Revenue      []statusweb.DayRevenue      `json:"revenue"`
		FiguresError string                      `json:"figuresError"`
	}
	get := func(t *testing.T, f statusweb.Figures) (body, string) {
		_, ts := newServer(t, &fakeSource{subs: twoSubscribers()}, &clock{now: t0}, statusweb.Options{Figures: f})
		_, raw := getBody(t, ts.URL+"/status.json")
		var b body
		if err := json.Unmarshal([]byte(raw), &b); err != nil {
			t.Fatalf("%v: %s", err, raw)
		}
		return b, raw
	}
	b, _ := get(t, &fakeFigures{rm: sampleFigures()})
	want := sampleFigures()
	if !jsonSame(b.TopCustomers, want.TopCustomers) || !jsonSame(b.Revenue, want.Revenue) || b.FiguresError != "" {
		t.Errorf("figures %+v, want %+v", b, want)
	}
	_, raw := get(t, &fakeFigures{})
	if !strings.Contains(raw, `"topCustomers": []`) || !strings.Contains(raw, `"revenue": []`) {
		t.Errorf("no figures yet should be empty lists: %s", raw)
	}
	b, _ = get(t, &fakeFigures{err: errors.New("database is locked")})
	if b.FiguresError != "database is locked" || !b.Healthy {
		t.Errorf("failing figures: %+v, want the error and health untouched", b)
	}
	_, raw = get(t, nil)
	if strings.Contains(raw, "topCustomers") || strings.Contains(raw, "revenue") {
		t.Errorf("figures without Options.Figures: %s", raw)
	}
}

func jsonSame(a, b any) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return string(ja) == string(jb)
}

// TestStatusPageFiguresHTML: the page shows the tables with formatted money and one chart
// per currency whose bars are as tall as their amounts say.
func TestStatusPageFiguresHTML(t *testing.T) {
	_, ts := newServer(t, &fakeSource{subs: twoSubscribers()}, &clock{now: t0}, statusweb.Options{Figures: &fakeFigures{rm: sampleFigures()}, Money: twoDecimals})
	_, page := getBody(t, ts.URL+"/")
	for _, want := range []string{
		`<tr data-customer="bob@example.com" data-currency="EUR"><td class="name">bob@example.com</td><td>EUR</td><td class="num">3</td><td class="num">2</td><td class="num amount">9000.00 EUR</td></tr>`,
		`<tr data-day="2026-11-24" data-currency="EUR"><td>2026-11-24</td><td>EUR</td><td class="num">2</td><td class="num amount">1500.00 EUR</td></tr>`,
		`<figure class="chart" data-currency="EUR">`,
		`<figure class="chart" data-currency="USD">`,
		`<title>2026-11-22: 6000.00 EUR, 1 payment(s)</title>`,
		`total 10500.00 EUR`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %s", want)
		}
	}
	if strings.Contains(page, "<script>") || strings.Contains(page, "https://") {
		t.Errorf("the page must load nothing from elsewhere and run no inline script")
	}
	// Newest day first in the table.
	if strings.Index(page, `data-day="2026-11-24"`) > strings.Index(page, `data-day="2026-11-21"`) {
		t.Errorf("revenue table not newest first")
	}
}

// TestBrowserStatusFigures opens the status page in Chromium: the top customers and the
// revenue chart are there, drawn (bars' rendered heights in the ratio of their amounts), fit
// a phone, and a new day of payments appears by itself when the page refreshes.
func TestBrowserStatusFigures(t *testing.T) {
	figs := &fakeFigures{rm: sampleFigures()}
	s, err := statusweb.New(&fakeSource{subs: twoSubscribers()}, statusweb.Options{Refresh: 200 * time.Millisecond, Figures: figs, Money: twoDecimals})
	if err != nil {
		t.Fatal(err)
	}
	ts := newHTTPServer(t, s)
	ctx := browsertest.Open(t, browsertest.Phone, 60*time.Second)
	browsertest.Run(t, ctx, "open the status page", chromedp.Navigate(ts+"/"))

	first := browsertest.Value(t, ctx, "read the top customer", chromedp.Evaluate[string](
		`document.querySelector('table.customers tbody tr').textContent`))
	if !strings.Contains(first, "bob@example.com") || !strings.Contains(first, "9000.00 EUR") {
		t.Errorf("first customer row %q, want bob with 9000.00 EUR", first)
	}
	// Rendered bar heights, in the EUR chart, left to right: 3000, 6000, 1500 EUR.
	heights := `Array.from(document.querySelectorAll('figure[data-currency="EUR"] rect.bar')).map(r => r.getBoundingClientRect().height)`
	hs := browsertest.Value(t, ctx, "measure the bars", chromedp.Evaluate[[]float64](heights))
	if len(hs) != 3 {
		t.Fatalf("EUR bars %v, want 3", hs)
	}
	if hs[1] <= 0 || abs(hs[0]/hs[1]-0.5) > 0.05 || abs(hs[2]/hs[1]-0.25) > 0.05 {
		t.Errorf("bar heights %v not in the ratio 2:4:1 of the amounts", hs)
	}
	usd := browsertest.Value(t, ctx, "count USD bars", chromedp.Evaluate[int](`document.querySelectorAll('figure[data-currency="USD"] rect.bar').length`))
	if usd != 1 {
		t.Errorf("USD bars %d, want 1", usd)
	}
	browsertest.FitsPhone(t, ctx)
	browsertest.Screenshot(t, ctx, "figures")

	// A payment on a new day: the refreshing page draws a fourth EUR bar and lists the day.
	rm := sampleFigures()
	rm.Revenue = append(rm.Revenue, statusweb.DayRevenue{Day: "2026-11-25", Currency: "EUR", Payments: 1, Amount: 1200000})
	figs.set(rm)
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](
		`document.querySelectorAll('figure[data-currency="EUR"] rect.bar').length === 4 && !!document.querySelector('tr[data-day="2026-11-25"]')`,
		chromedp.WithPollingInterval(50*time.Millisecond))); err != nil {
		t.Fatalf("the new day never appeared: %v", err)
	}
	browsertest.Screenshot(t, ctx, "figures-new-day")
}

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}
