package webui_test

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// chromiumPath is Debian's chromium; ORDERS_TEST_CHROMIUM overrides it.
func chromiumPath() string {
	if p := os.Getenv("ORDERS_TEST_CHROMIUM"); p != "" {
		return p
	}
	return "/usr/bin/chromium"
}

// screenshotDir is $ORDERS_TEST_OUTPUT/screenshots, else testout/screenshots
// at the repository root (the directory holding go.mod).
func screenshotDir(t *testing.T) string {
	t.Helper()
	root := os.Getenv("ORDERS_TEST_OUTPUT")
	if root == "" {
		dir, err := os.Getwd()
		if err != nil {
			t.Fatal(err)
		}
		for {
			if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
				break
			}
			parent := filepath.Dir(dir)
			if parent == dir {
				t.Fatal("no go.mod above the test's directory")
			}
			dir = parent
		}
		root = filepath.Join(dir, "testout")
	}
	out := filepath.Join(root, "screenshots")
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	return out
}

// browser starts headless Chromium with a fresh profile, sized like a
// phone, and returns a context for chromedp actions bounded by timeout.
// A missing Chromium fails the test: it is a required part.
func browser(t *testing.T, timeout time.Duration) context.Context {
	t.Helper()
	path := chromiumPath()
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("headless Chromium not found at %s (%v): install it with `apt-get install -y chromium` (.ci/run does), or set ORDERS_TEST_CHROMIUM", path, err)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.WindowSize(390, 844),
	}
	// Not t.Context(): it is cancelled before cleanups run, and the browser
	// must be shut down (and its profile released) before TempDir is removed.
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		_ = chromedp.Cancel(ctx)
		cancelCtx()
		cancelAlloc()
	})
	// Starts the browser; the viewport is a phone's.
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(390, 844)); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	tctx, cancel := context.WithTimeout(ctx, timeout)
	t.Cleanup(cancel)
	return tctx
}

// screenshot saves the full page as <dir>/<test>-<name>.png.
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	buf, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	file := filepath.Join(screenshotDir(t), strings.NewReplacer("/", "_", " ", "_").Replace(t.Name())+"-"+name+".png")
	if err := os.WriteFile(file, buf, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", file)
}

// run runs actions that return nothing, failing the test on error.
func run(t *testing.T, ctx context.Context, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, actions...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// value runs one action and returns its value, failing the test on error.
func value[T any](t *testing.T, ctx context.Context, what string, a chromedp.Action[T]) T {
	t.Helper()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return v
}

func css(sel string) chromedp.CSS { return chromedp.CSS(sel) }

// fitsPhone fails if the page scrolls sideways at the phone-sized window.
func fitsPhone(t *testing.T, ctx context.Context) {
	t.Helper()
	overflow := value(t, ctx, "measure width", chromedp.Evaluate[int](`document.documentElement.scrollWidth - window.innerWidth`))
	if overflow > 0 {
		t.Errorf("page is %dpx wider than the phone-sized window", overflow)
	}
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
