package webui_test

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/orderstore/orders/eventstore/esdbnode/esdbnodetest/browsertest"
)

// css names a CSS selector for chromedp queries.
func css(sel string) chromedp.CSS { return chromedp.CSS(sel) }

// noXSS fails if any injected payload ran.
func noXSS(t *testing.T, ctx context.Context) {
	t.Helper()
	typ := browsertest.Value(t, ctx, "check window.__xss", chromedp.Evaluate[string](`typeof window.__xss`))
	if typ != "undefined" {
		t.Fatalf("an event's payload ran in the page: typeof window.__xss = %s", typ)
	}
}

// follow runs actions that navigate (a click, a submit), waits for the new
// page to load and checks it is want (path and query) and loaded with 200.
func follow(t *testing.T, ctx context.Context, want string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	resp, err := chromedp.RunResponse(ctx, actions...)
	if err != nil {
		t.Fatalf("navigating to %s: %v", want, err)
	}
	if resp.Status != 200 {
		t.Fatalf("navigating to %s: status %d", want, resp.Status)
	}
	if got := browsertest.Value(t, ctx, "read the location", chromedp.Evaluate[string](`location.pathname + location.search`)); got != want {
		t.Fatalf("at %s, want %s", got, want)
	}
}

func TestBrowserStreamBrowser(t *testing.T) {
	f := newFixture(t)
	ctx := browsertest.Open(t, browsertest.Phone, 60*time.Second)

	t.Run("find an order and see its JSON", func(t *testing.T) {
		browsertest.Run(t, ctx, "open the UI and type", chromedp.Navigate(f.base+"/"), chromedp.SendKeys(css(`#q`), f.order[:12]))
		follow(t, ctx, "/web/streams?q="+f.order[:12], chromedp.Submit(css(`#q`)))
		browsertest.FitsPhone(t, ctx)
		browsertest.Screenshot(t, ctx, "search")
		follow(t, ctx, streamPath(f.order), chromedp.Click(css(`table.streams a.stream`)))
		browsertest.Run(t, ctx, "see its events", chromedp.WaitVisible(css(`details.ev`)))
		browsertest.FitsPhone(t, ctx)
		browsertest.Screenshot(t, ctx, "stream")
		follow(t, ctx, streamPath(f.order)+"/0", chromedp.Click(css(`details.ev summary a[href$="/0"]`)))
		data := browsertest.Value(t, ctx, "read the event's JSON", chromedp.Text(css(`.data pre.json`)))
		for _, s := range []string{`"orderId": "o-1"`, `"sku": "SKU-1"`} {
			if !strings.Contains(data, s) {
				t.Errorf("event JSON lacks %q:\n%s", s, data)
			}
		}
		browsertest.FitsPhone(t, ctx)
		browsertest.Screenshot(t, ctx, "event")
	})

	t.Run("follow a link", func(t *testing.T) {
		browsertest.Run(t, ctx, "open the link", chromedp.Navigate(f.base+streamPath(f.links)+"/0"))
		follow(t, ctx, streamPath(f.order)+"/0", chromedp.Click(css(`a.link-target`)))
		if typ := browsertest.Value(t, ctx, "read the type", chromedp.Text(css(`dd.type`))); typ != "OrderPlaced" {
			t.Fatalf("the link led to a %q event, want OrderPlaced", typ)
		}
	})

	t.Run("markup in events stays inert", func(t *testing.T) {
		browsertest.Run(t, ctx, "open the event", chromedp.Navigate(f.base+streamPath(f.xss)+"/0"))
		data := browsertest.Value(t, ctx, "read data", chromedp.Text(css(`.data pre.json`)))
		typ := browsertest.Value(t, ctx, "read type", chromedp.Text(css(`dd.type`)))
		noXSS(t, ctx)
		if !strings.Contains(data, `<script>window.__xss=1</script>`) {
			t.Errorf("the payload is not shown as text: %q", data)
		}
		if typ != xssType {
			t.Errorf("event type shown as %q, want %q", typ, xssType)
		}
		browsertest.Screenshot(t, ctx, "xss")
		browsertest.Run(t, ctx, "open the broken UTF-8 event", chromedp.Navigate(f.base+streamPath(f.binary)+"/0"))
		text := browsertest.Value(t, ctx, "read data", chromedp.Text(css(`.data pre.text`)))
		noXSS(t, ctx)
		if !strings.Contains(text, "\uFFFD<script>window.__xss=4</script>") {
			t.Errorf("broken UTF-8 shown as %q", text)
		}
		browsertest.Screenshot(t, ctx, "broken-utf8")
		for _, page := range []string{streamPath(f.xss), "/web/streams", "/web/all"} {
			browsertest.Run(t, ctx, "open "+page, chromedp.Navigate(f.base+page), chromedp.WaitReady(css(`main`)))
			noXSS(t, ctx)
		}
	})

	t.Run("deleted and tombstoned streams", func(t *testing.T) {
		for _, tc := range []struct{ stream, want string }{{f.soft, "deleted"}, {f.hard, "tombstoned"}} {
			browsertest.Run(t, ctx, "open "+tc.stream, chromedp.Navigate(f.base+streamPath(tc.stream)))
			if state := browsertest.Value(t, ctx, "read the banner", chromedp.Text(css(`#state`))); !strings.Contains(state, tc.want) {
				t.Errorf("%s: banner %q, want it to say %s", tc.stream, state, tc.want)
			}
		}
		browsertest.Screenshot(t, ctx, "tombstoned")
	})
}

func TestBrowserReplayParked(t *testing.T) {
	f := newFixture(t)
	f.park(t) // the consumer acks from now on
	ctx := browsertest.Open(t, browsertest.Phone, 60*time.Second)
	groupPath := "/web/subscriptions/parking-1/" + url.PathEscape(f.group)

	browsertest.Run(t, ctx, "open the list", chromedp.Navigate(f.base+"/web/subscriptions"))
	follow(t, ctx, groupPath, chromedp.Click(css(`a.group`)))
	if count := browsertest.Value(t, ctx, "read the parked count", chromedp.Text(css(`#parked-count`))); count != fmt.Sprint(f.parked) {
		t.Fatalf("parked count shown %q, want %d", count, f.parked)
	}
	if items := browsertest.Value(t, ctx, "count the parked list", chromedp.Evaluate[int](`document.querySelectorAll('ol.parked-list > li').length`)); items != f.parked {
		t.Fatalf("%d parked messages listed, want %d", items, f.parked)
	}
	browsertest.FitsPhone(t, ctx)
	browsertest.Screenshot(t, ctx, "parked")

	follow(t, ctx, groupPath+"?replay=started", chromedp.Click(css(`#replay`)))
	browsertest.Run(t, ctx, "see the flash", chromedp.WaitVisible(css(`#flash`)))
	// The page refreshes its live parts by itself: wait for it to show 0.
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`document.getElementById('parked-count').textContent === '0'`,
		chromedp.WithPollingInterval(100*time.Millisecond))); err != nil {
		t.Fatalf("the parked count never dropped to 0: %v", err)
	}
	if items := browsertest.Value(t, ctx, "count the parked list", chromedp.Evaluate[int](`document.querySelectorAll('ol.parked-list > li').length`)); items != 0 {
		t.Fatalf("%d parked messages still listed", items)
	}
	browsertest.Screenshot(t, ctx, "replayed")
}
