// Package browsertest drives Debian's headless Chromium for the browser tests of
// the project's web pages (the node's UI and the app's status page).
//
// Contract: Open starts a fresh Chromium (new profile, the flags this closed
// network needs) sized as asked and returns a chromedp context bounded by a
// timeout; the browser is shut down at the test's cleanup. A missing Chromium
// SKIPS the test with one line saying how to install it, unless
// ORDERS_TEST_REQUIRE_ALL is set (.ci/run sets it): then it FAILS, so CI can
// never pass by skipping. Screenshots go to $ORDERS_TEST_OUTPUT/screenshots, else
// testout/screenshots at the repository root.
package browsertest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// RequireEnv names the variable that turns a skip for a missing Chromium into a failure.
const RequireEnv = "ORDERS_TEST_REQUIRE_ALL"

// Phone is a phone-sized viewport; Desktop a desktop one.
var (
	Phone   = Size{390, 844}
	Desktop = Size{1280, 800}
)

// Size is a viewport in CSS pixels.
type Size struct{ Width, Height int64 }

// ChromiumPath is Debian's chromium; ORDERS_TEST_CHROMIUM overrides it.
func ChromiumPath() string {
	if p := os.Getenv("ORDERS_TEST_CHROMIUM"); p != "" {
		return p
	}
	return "/usr/bin/chromium"
}

// ScreenshotDir is $ORDERS_TEST_OUTPUT/screenshots, else testout/screenshots at
// the repository root (the directory holding go.mod), created if missing.
func ScreenshotDir(t testing.TB) string {
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

// Open starts headless Chromium with a fresh profile and the given viewport,
// and returns a context for chromedp actions bounded by timeout. extra adds
// allocator options (e.g. chromedp.Flag("ignore-certificate-errors", true)
// for a node whose certificate a test made).
func Open(t testing.TB, size Size, timeout time.Duration, extra ...chromedp.ExecAllocatorOption) context.Context {
	t.Helper()
	path := ChromiumPath()
	if _, err := os.Stat(path); err != nil {
		msg := fmt.Sprintf("headless Chromium not found at %s: install it with `apt-get install -y chromium` (bash .ci/run does), or set ORDERS_TEST_CHROMIUM", path)
		if os.Getenv(RequireEnv) != "" {
			t.Fatalf("%s; %s is set, so this is a failure", msg, RequireEnv)
		} else {
			t.Skip(msg)
		}
		return nil
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
		chromedp.WindowSize(int(size.Width), int(size.Height)),
	}
	opts = append(opts, extra...)
	// Not t.Context(): it is cancelled before cleanups run, and the browser
	// must be shut down (and its profile released) before TempDir is removed.
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		_ = chromedp.Cancel(ctx)
		cancelCtx()
		cancelAlloc()
	})
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(size.Width, size.Height)); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	tctx, cancel := context.WithTimeout(ctx, timeout)
	t.Cleanup(cancel)
	return tctx
}

// Screenshot saves the full page as <ScreenshotDir>/<test>-<name>.png.
func Screenshot(t testing.TB, ctx context.Context, name string) {
	t.Helper()
	buf, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	file := filepath.Join(ScreenshotDir(t), strings.NewReplacer("/", "_", " ", "_").Replace(t.Name())+"-"+name+".png")
	if err := os.WriteFile(file, buf, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", file)
}

// Run runs actions that return nothing, failing the test on error.
func Run(t testing.TB, ctx context.Context, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, actions...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// Value runs one action and returns its value, failing the test on error.
func Value[T any](t testing.TB, ctx context.Context, what string, a chromedp.Action[T]) T {
	t.Helper()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return v
}

// FitsPhone fails the test if the page scrolls sideways at its window's width.
func FitsPhone(t testing.TB, ctx context.Context) {
	t.Helper()
	overflow := Value(t, ctx, "measure width", chromedp.Evaluate[int](`document.documentElement.scrollWidth - window.innerWidth`))
	if overflow > 0 {
		t.Errorf("page is %dpx wider than the phone-sized window", overflow)
	}
}
