package statusweb_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/orderstore/orders/cmd/orders/statusweb"
	"github.com/orderstore/orders/eventstore/esdbnode/esdbnodetest/browsertest"
)

// css names a CSS selector for chromedp queries.
func css(sel string) chromedp.CSS { return chromedp.CSS(sel) }

func newHTTPServer(t *testing.T, h http.Handler) string {
	t.Helper()
	ts := httptest.NewServer(h)
	t.Cleanup(ts.Close)
	return ts.URL
}

// TestBrowserStatusPage opens the status page on a projection whose handler
// is stopped: the page turns unhealthy by itself; then a burst of handling
// brings its lag to zero and the page, refreshing itself, shows it.
func TestBrowserStatusPage(t *testing.T) {
	src := &fakeSource{subs: []statusweb.SubscriberStatus{
		{Name: "order-summaries", Kind: statusweb.KindProjection, Position: 400, Head: 500, Lag: 100, Handled: 400, Connected: true, LastHandledAt: time.Now()},
		{Name: "paid-mail", Kind: statusweb.KindSender, Position: 500, Head: 500, Lag: 0, Handled: 20, Parked: 1, Connected: true, LastHandledAt: time.Now()},
	}}
	s, err := statusweb.New(src, statusweb.Options{StallAfter: time.Second, Refresh: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ts := newHTTPServer(t, s)
	ctx := browsertest.Open(t, browsertest.Phone, 60*time.Second)
	lag := `document.querySelector('tr[data-name="order-summaries"] td.lag').textContent`

	browsertest.Run(t, ctx, "open the status page", chromedp.Navigate(ts+"/"))
	if got := browsertest.Value(t, ctx, "read the lag", chromedp.Evaluate[string](lag)); got != "100" {
		t.Fatalf("lag shown %q, want 100", got)
	}
	browsertest.FitsPhone(t, ctx)
	browsertest.Screenshot(t, ctx, "lagging")

	// Nothing is handled: within StallAfter (plus a refresh) the page says so.
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`document.getElementById('health').dataset.healthy === 'false'`,
		chromedp.WithPollingInterval(50*time.Millisecond))); err != nil {
		t.Fatalf("the page never turned unhealthy: %v", err)
	}
	if state := browsertest.Value(t, ctx, "read the state", chromedp.Evaluate[string](`document.querySelector('tr[data-name="order-summaries"] td.state').textContent`)); !strings.Contains(state, "stalled") {
		t.Fatalf("state shown %q, want stalled", state)
	}
	browsertest.Screenshot(t, ctx, "stalled")

	// The burst: each read of the source finds 25 more events handled.
	src.mu.Lock()
	src.hook = func(subs []statusweb.SubscriberStatus) {
		p := &subs[0]
		if p.Lag == 0 {
			return
		}
		n := min(p.Lag, 25)
		p.Lag -= n
		p.Position += n
		p.Handled += n
		p.LastHandledAt = time.Now()
	}
	src.mu.Unlock()
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](lag+` === '0' && document.getElementById('health').dataset.healthy === 'true'`,
		chromedp.WithPollingInterval(50*time.Millisecond))); err != nil {
		t.Fatalf("the page never showed lag 0 and healthy: %v", err)
	}
	if title := browsertest.Value(t, ctx, "read the title", chromedp.Title()); !strings.HasPrefix(title, "OK") {
		t.Errorf("title %q, want it to start with OK", title)
	}
	browsertest.Screenshot(t, ctx, "caught-up")
}
