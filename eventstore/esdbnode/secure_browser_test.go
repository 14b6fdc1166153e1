package esdbnode_test

import (
	"strings"
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/chromedp/chromedp"

	"github.com/orderstore/orders/eventstore/esdbnode/esdbnodetest"
	"github.com/orderstore/orders/eventstore/esdbnode/esdbnodetest/browsertest"
)

// A real browser is refused the secure node's UI without credentials and
// logs in with admin:changeit (Basic, as the browser's login prompt sends it).
func TestBrowserSecureUILogin(t *testing.T) {
	certs := esdbnodetest.NewCerts(t)
	srv := esdbnodetest.StartSecure(t, certs)
	c := esdbnodetest.Dial(t, esdbnodetest.SecureURL(srv, certs, "admin", "changeit"))
	_, err := c.AppendToStream(t.Context(), "order-browser-1", esdb.AppendToStreamOptions{}, jsonEvent("OrderPlaced", 1))
	if err != nil {
		t.Fatal(err)
	}
	// The test CA is not in the browser's trust store.
	ctx := browsertest.Open(t, browsertest.Desktop, 60*time.Second, chromedp.Flag("ignore-certificate-errors", true))

	// Headless Chromium answers the Basic challenge by cancelling the
	// login prompt, so a refused visit ends in ERR_INVALID_AUTH_CREDENTIALS
	// (or shows the 401 page).
	refused := func(what, url string) {
		t.Helper()
		resp, err := chromedp.RunResponse(ctx, chromedp.Navigate(url))
		switch {
		case err != nil && strings.Contains(err.Error(), "ERR_INVALID_AUTH_CREDENTIALS"):
		case err != nil:
			t.Fatalf("%s: %v", what, err)
		case resp.Status != 401:
			t.Fatalf("%s: status %d, want 401", what, resp.Status)
		}
		body, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
		if strings.Contains(body, "order-browser-1") {
			t.Fatalf("%s: the visitor saw a stream: %q", what, body)
		}
	}
	refused("anonymous visit", "https://"+srv.Addr()+"/web/streams")
	refused("wrong password", "https://admin:wrong@"+srv.Addr()+"/web/streams")

	resp, err := chromedp.RunResponse(ctx, chromedp.Navigate("https://admin:changeit@"+srv.Addr()+"/web/streams"))
	if err != nil {
		t.Fatalf("log in: %v", err)
	}
	if resp.Status != 200 {
		t.Fatalf("log in: status %d, want 200", resp.Status)
	}
	browsertest.Run(t, ctx, "see the stream", chromedp.WaitVisible(chromedp.CSS(`a[href$="order-browser-1"]`)))
	browsertest.Screenshot(t, ctx, "logged-in")
}
