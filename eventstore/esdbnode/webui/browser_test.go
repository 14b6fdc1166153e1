package webui_test

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/orderstore/orders/eventstore/esdbnode/webui/browsertest"
)

// The browser helpers live in package browsertest; these names keep the tests short.
func browser(t *testing.T, timeout time.Duration) context.Context {
	return browsertest.Open(t, browsertest.Phone, timeout)
}

func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	browsertest.Screenshot(t, ctx, name)
}

func run(t *testing.T, ctx context.Context, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	browsertest.Run(t, ctx, what, actions...)
}

func value[T any](t *testing.T, ctx context.Context, what string, a chromedp.Action[T]) T {
	t.Helper()
	return browsertest.Value(t, ctx, what, a)
}

func css(sel string) chromedp.CSS { return chromedp.CSS(sel) }

func fitsPhone(t *testing.T, ctx context.Context) {
	t.Helper()
	browsertest.FitsPhone(t, ctx)
}

// noXSS fails if any injected payload ran.
func noXSS(t *testing.T, ctx context.Context) {
	t.Helper()
	typ := value(t, ctx, "check window.__xss", chromedp.Evaluate[string](`typeof window.__xss`))
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
	if got := value(t, ctx, "read the location", chromedp.Evaluate[string](`location.pathname + location.search`)); got != want {
		t.Fatalf("at %s, want %s", got, want)
	}
}

func TestBrowserStreamBrowser(t *testing.T) {
	f := newFixture(t)
	ctx := browser(t, 60*time.Second)

	t.Run("find an order and see its JSON", func(t *testing.T) {
		run(t, ctx, "open the UI and type", chromedp.Navigate(f.base+"/"), chromedp.SendKeys(css(`#q`), f.order[:12]))
		follow(t, ctx, "/web/streams?q="+f.order[:12], chromedp.Submit(css(`#q`)))
		fitsPhone(t, ctx)
		screenshot(t, ctx, "search")
		follow(t, ctx, streamPath(f.order), chromedp.Click(css(`table.streams a.stream`)))
		run(t, ctx, "see its events", chromedp.WaitVisible(css(`details.ev`)))
		fitsPhone(t, ctx)
		screenshot(t, ctx, "stream")
		follow(t, ctx, streamPath(f.order)+"/0", chromedp.Click(css(`details.ev summary a[href$="/0"]`)))
		data := value(t, ctx, "read the event's JSON", chromedp.Text(css(`.data pre.json`)))
		for _, s := range []string{`"orderId": "o-1"`, `"sku": "SKU-1"`} {
			if !strings.Contains(data, s) {
				t.Errorf("event JSON lacks %q:\n%s", s, data)
			}
		}
		fitsPhone(t, ctx)
		screenshot(t, ctx, "event")
	})

	t.Run("follow a link", func(t *testing.T) {
		run(t, ctx, "open the link", chromedp.Navigate(f.base+streamPath(f.links)+"/0"))
		follow(t, ctx, streamPath(f.order)+"/0", chromedp.Click(css(`a.link-target`)))
		if typ := value(t, ctx, "read the type", chromedp.Text(css(`dd.type`))); typ != "OrderPlaced" {
			t.Fatalf("the link led to a %q event, want OrderPlaced", typ)
		}
	})

	t.Run("markup in events stays inert", func(t *testing.T) {
		run(t, ctx, "open the event", chromedp.Navigate(f.base+streamPath(f.xss)+"/0"))
		data := value(t, ctx, "read data", chromedp.Text(css(`.data pre.json`)))
		typ := value(t, ctx, "read type", chromedp.Text(css(`dd.type`)))
		noXSS(t, ctx)
		if !strings.Contains(data, `<script>window.__xss=1</script>`) {
			t.Errorf("the payload is not shown as text: %q", data)
		}
		if typ != xssType {
			t.Errorf("event type shown as %q, want %q", typ, xssType)
		}
		screenshot(t, ctx, "xss")
		run(t, ctx, "open the broken UTF-8 event", chromedp.Navigate(f.base+streamPath(f.binary)+"/0"))
		text := value(t, ctx, "read data", chromedp.Text(css(`.data pre.text`)))
		noXSS(t, ctx)
		if !strings.Contains(text, "\uFFFD<script>window.__xss=4</script>") {
			t.Errorf("broken UTF-8 shown as %q", text)
		}
		screenshot(t, ctx, "broken-utf8")
		for _, page := range []string{streamPath(f.xss), "/web/streams", "/web/all"} {
			run(t, ctx, "open "+page, chromedp.Navigate(f.base+page), chromedp.WaitReady(css(`main`)))
			noXSS(t, ctx)
		}
	})

	t.Run("deleted and tombstoned streams", func(t *testing.T) {
		for _, tc := range []struct{ stream, want string }{{f.soft, "deleted"}, {f.hard, "tombstoned"}} {
			run(t, ctx, "open "+tc.stream, chromedp.Navigate(f.base+streamPath(tc.stream)))
			if state := value(t, ctx, "read the banner", chromedp.Text(css(`#state`))); !strings.Contains(state, tc.want) {
				t.Errorf("%s: banner %q, want it to say %s", tc.stream, state, tc.want)
			}
		}
		screenshot(t, ctx, "tombstoned")
	})
}

func TestBrowserReplayParked(t *testing.T) {
	f := newFixture(t)
	f.park(t) // the consumer acks from now on
	ctx := browser(t, 60*time.Second)
	groupPath := "/web/subscriptions/parking-1/" + url.PathEscape(f.group)

	run(t, ctx, "open the list", chromedp.Navigate(f.base+"/web/subscriptions"))
	follow(t, ctx, groupPath, chromedp.Click(css(`a.group`)))
	if count := value(t, ctx, "read the parked count", chromedp.Text(css(`#parked-count`))); count != fmt.Sprint(f.parked) {
		t.Fatalf("parked count shown %q, want %d", count, f.parked)
	}
	if items := value(t, ctx, "count the parked list", chromedp.Evaluate[int](`document.querySelectorAll('ol.parked-list > li').length`)); items != f.parked {
		t.Fatalf("%d parked messages listed, want %d", items, f.parked)
	}
	fitsPhone(t, ctx)
	screenshot(t, ctx, "parked")

	follow(t, ctx, groupPath+"?replay=started", chromedp.Click(css(`#replay`)))
	run(t, ctx, "see the flash", chromedp.WaitVisible(css(`#flash`)))
	// The page refreshes its live parts by itself: wait for it to show 0.
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`document.getElementById('parked-count').textContent === '0'`,
		chromedp.WithPollingInterval(100*time.Millisecond))); err != nil {
		t.Fatalf("the parked count never dropped to 0: %v", err)
	}
	if items := value(t, ctx, "count the parked list", chromedp.Evaluate[int](`document.querySelectorAll('ol.parked-list > li').length`)); items != 0 {
		t.Fatalf("%d parked messages still listed", items)
	}
	screenshot(t, ctx, "replayed")
}
