package browsertest

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// recorder is a testing.TB that records Skip and Fatalf instead of stopping the goroutine.
type recorder struct {
	testing.TB
	skipped, failed string
}

func (r *recorder) Helper()                      {}
func (r *recorder) Skip(args ...any)             { r.skipped = fmt.Sprint(args...) }
func (r *recorder) Fatalf(f string, args ...any) { r.failed = fmt.Sprintf(f, args...) }

// TestMissingChromium: skipped with one line saying how to install it; a failure with
// ORDERS_TEST_REQUIRE_ALL set.
func TestMissingChromium(t *testing.T) {
	t.Setenv("ORDERS_TEST_CHROMIUM", filepath.Join(t.TempDir(), "no-chromium"))

	t.Setenv(RequireEnv, "")
	r := &recorder{TB: t}
	if ctx := Open(r, Phone, time.Second); ctx != nil {
		t.Fatal("Open returned a browser without Chromium")
	}
	if r.failed != "" || !strings.Contains(r.skipped, "apt-get install -y chromium") || strings.Contains(r.skipped, "\n") {
		t.Fatalf("skipped %q, failed %q", r.skipped, r.failed)
	}

	t.Setenv(RequireEnv, "1")
	r = &recorder{TB: t}
	if ctx := Open(r, Phone, time.Second); ctx != nil {
		t.Fatal("Open returned a browser without Chromium")
	}
	if r.skipped != "" || !strings.Contains(r.failed, RequireEnv+" is set") {
		t.Fatalf("skipped %q, failed %q", r.skipped, r.failed)
	}
}
