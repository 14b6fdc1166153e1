package statusweb_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/orderstore/orders/cmd/orders/statusweb"
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
	ctx := browser(t, 60*time.Second)
	lag := `document.querySelector('tr[data-name="order-summaries"] td.lag').textContent`

	run(t, ctx, "open the status page", chromedp.Navigate(ts+"/"))
	if got := value(t, ctx, "read the lag", chromedp.Evaluate[string](lag)); got != "100" {
		t.Fatalf("lag shown %q, want 100", got)
	}
	fitsPhone(t, ctx)
	screenshot(t, ctx, "lagging")

	// Nothing is handled: within StallAfter (plus a refresh) the page says so.
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`document.getElementById('health').dataset.healthy === 'false'`,
		chromedp.WithPollingInterval(50*time.Millisecond))); err != nil {
		t.Fatalf("the page never turned unhealthy: %v", err)
	}
	if state := value(t, ctx, "read the state", chromedp.Evaluate[string](`document.querySelector('tr[data-name="order-summaries"] td.state').textContent`)); !strings.Contains(state, "stalled") {
		t.Fatalf("state shown %q, want stalled", state)
	}
	screenshot(t, ctx, "stalled")

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
	if title := value(t, ctx, "read the title", chromedp.Title()); !strings.HasPrefix(title, "OK") {
		t.Errorf("title %q, want it to start with OK", title)
	}
	screenshot(t, ctx, "caught-up")
}
